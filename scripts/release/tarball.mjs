// A gzip-compressed POSIX ustar archive written by Node alone, so a release tarball is the same bytes on a Linux or
// macOS build host (no GNU/BSD tar flag differences) and carries no builder's user name, uid or file times: every
// entry is owned by 0:0, has the mode it is given and the one mtime the caller passes.
import { Buffer } from 'node:buffer';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';

const BLOCK = 512;

/**
 * Writes `entries` to `outFile` as .tar.gz. An entry is `{ name, mode, dir: true }`, `{ name, mode, file: path }`
 * (contents streamed from disk) or `{ name, mode, text: string }`. Names must fit ustar's 100-byte name field.
 */
export async function writeTarGz(outFile, entries, { mtime, level = 6 }) {
  await pipeline(Readable.from(blocks(entries, mtime)), createGzip({ level }), createWriteStream(outFile));
}

async function* blocks(entries, mtime) {
  for (const entry of entries) {
    if (entry.dir) {
      yield header(entry.name.endsWith('/') ? entry.name : `${entry.name}/`, entry.mode, 0, mtime, '5');
      continue;
    }
    const size = entry.file !== undefined ? statSync(entry.file).size : Buffer.byteLength(entry.text);
    yield header(entry.name, entry.mode, size, mtime, '0');
    if (entry.file !== undefined) {
      let streamed = 0;
      for await (const chunk of createReadStream(entry.file)) {
        streamed += chunk.length;
        yield chunk;
      }
      if (streamed !== size) throw new Error(`${entry.file} changed size while it was archived (${size} → ${streamed} bytes)`);
    } else {
      yield Buffer.from(entry.text);
    }
    if (size % BLOCK !== 0) yield Buffer.alloc(BLOCK - (size % BLOCK));
  }
  yield Buffer.alloc(2 * BLOCK); // end of archive: two zero blocks
}

function header(name, mode, size, mtime, type) {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name longer than 100 bytes: ${name}`);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0); // uid
  octal(block, 116, 8, 0); // gid
  octal(block, 124, 12, size);
  octal(block, 136, 12, mtime);
  block.fill(' ', 148, 156); // the checksum is computed with its own field as spaces
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\u000000', 257, 8, 'ascii'); // POSIX magic "ustar\0" and version "00"
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return block;
}

/** A numeric field: zero-padded octal digits and a terminating NUL, filling `width` bytes. */
function octal(block, offset, width, value) {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar field at offset ${offset} cannot hold ${value}`);
  block.write(`${digits.padStart(width - 1, '0')}\u0000`, offset, width, 'ascii');
}

/**
 * The text of entry `name` if it stands within the first `window` bytes of the uncompressed archive (release
 * tarballs put VERSION before the binary, so only a few blocks are ever decompressed), else undefined.
 */
export async function readEarlyEntry(tarGz, name, window = 64 * 1024) {
  const chunks = [];
  let length = 0;
  const gunzip = createReadStream(tarGz).pipe(createGunzip());
  for await (const chunk of gunzip) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= window) break; // leaving the loop destroys the stream
  }
  const archive = Buffer.concat(chunks);
  for (let offset = 0; offset + BLOCK <= archive.length; ) {
    const block = archive.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) return undefined;
    const size = Number.parseInt(field(block, 124, 12).trim(), 8);
    if (!Number.isSafeInteger(size)) throw new Error(`${tarGz}: a tar header at offset ${offset} has no valid size`);
    if (field(block, 0, 100) === name) {
      return offset + BLOCK + size <= archive.length ? archive.toString('utf8', offset + BLOCK, offset + BLOCK + size) : undefined;
    }
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return undefined;
}

function field(block, offset, width) {
  const raw = block.toString('utf8', offset, offset + width);
  const end = raw.indexOf('\u0000');
  return end === -1 ? raw : raw.slice(0, end);
}
