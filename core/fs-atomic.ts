/**
 * Durable, atomic file replacement: write a temporary file beside the target with the requested mode, fsync it,
 * rename it over the target and fsync the directory. A crash leaves either the old file or the new one, never a
 * torn mix; a file is never briefly readable with a wider mode.
 *
 * The temporary file's name carries 128 random bits and is created with O_CREAT|O_EXCL|O_NOFOLLOW: whatever someone
 * else placed beside the target (a symlink to a file of yours, for every name they could guess) is never opened or
 * written through, and they cannot guess the name to make the write fail. The rename replaces the target's entry
 * (a symlink there is replaced, not followed).
 */
import { closeSync, constants, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomToken } from './crypto/index.ts';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomToken(16)}.tmp`);
  writeSynced(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, data, mode);
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  fsyncDir(dirname(path));
}

/** Creates a new file exclusively (fails if it exists) with the given mode, fsyncs it and its directory. */
export function writeFileExclusive(path: string, data: string, mode = 0o600): void {
  writeSynced(path, 'wx', data, mode);
  fsyncDir(dirname(path));
}

function writeSynced(path: string, flag: 'wx' | number, data: string | Uint8Array, mode: number): void {
  const fd = openSync(path, flag, mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    // writeSync may write less than asked; loop until every byte is down.
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a directory, so a rename or link in it is durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
