/**
 * The master key every secret is encrypted under: 32 random bytes, base64 on one line, in
 * `$LATTICE_HOME/master.key`, mode 0600, inside the private home. Whoever reads this file can decrypt every
 * secret; whoever loses it loses them.
 *
 * Created on first use and never overwritten. The key is written in full to a private temporary file (created
 * exclusively, 0600, fsynced) and published with link(2), which fails if `master.key` already exists; the
 * directory is then fsynced so the key is durable before any secret is sealed under it. So a crash never leaves
 * an empty or half-written key, and when two processes create one at once the loser discards its own key and
 * uses the winner's.
 *
 * Refused with MASTER_KEY_INVALID, never repaired or replaced: a key file that group or others may access (the
 * message says to `chmod 600` it), one that is not a regular file (a symlink is not followed), and one whose
 * content is not exactly 32 bytes of base64. Messages never include the file's content.
 */
import { closeSync, constants, fstatSync, linkSync, openSync, readSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomKey } from '../crypto/aead.ts';
import { randomToken } from '../crypto/index.ts';
import { LatticeError, describeError, isLatticeError, type SecretErrorCode } from '../errors.ts';
import { fsyncDir, writeFileExclusive } from '../fs-atomic.ts';
import { ensurePrivateDir, type HomePaths } from '../home.ts';

const KEY_BYTES = 32;
/** 32 bytes are 43 base64 characters and one `=`; one trailing newline is written and accepted. */
const KEY_TEXT = /^([A-Za-z0-9+/]{43}=)\n?$/;
/** Anything longer than a key and a newline is refused without reading it all. */
const MAX_FILE_BYTES = 64;

export function masterKeyPath(paths: HomePaths): string {
  return join(paths.root, 'master.key');
}

/** Loads the master key, creating it (and the private home) on first use. */
export function loadOrCreateMasterKey(paths: HomePaths): Buffer {
  ensurePrivateDir(paths.root);
  const file = masterKeyPath(paths);
  const existing = readMasterKey(file);
  if (existing !== undefined) return existing;
  createMasterKey(file);
  const created = readMasterKey(file);
  if (created === undefined) throw new LatticeError('IO_ERROR', `the master key ${file} disappeared right after it was created`);
  return created;
}

/** Reads and checks the key file; undefined when it does not exist. */
function readMasterKey(file: string): Buffer | undefined {
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink is refused, not followed; O_NONBLOCK: a FIFO planted here cannot hang the open.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    if (errnoCode(error) === 'ELOOP') {
      throw secretError('MASTER_KEY_INVALID', `${file} is a symbolic link; the master key must be a regular file`);
    }
    throw new LatticeError('IO_ERROR', `cannot read the master key: ${describeError(error)}`, { cause: error });
  }
  const raw = Buffer.alloc(MAX_FILE_BYTES + 1);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw secretError('MASTER_KEY_INVALID', `${file} is not a regular file`);
    if ((stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw secretError(
        'MASTER_KEY_INVALID',
        `${file} is accessible to group or others (mode ${mode}); run \`chmod 600 ${file}\`. ` +
          'If anyone else could read it, treat every stored secret as exposed and replace it.',
      );
    }
    const length = readSync(fd, raw, 0, raw.length, 0);
    return parseMasterKey(file, raw.subarray(0, length));
  } catch (error) {
    if (isLatticeError(error)) throw error;
    throw new LatticeError('IO_ERROR', `cannot read the master key: ${describeError(error)}`, { cause: error });
  } finally {
    raw.fill(0);
    closeSync(fd);
  }
}

function parseMasterKey(file: string, content: Buffer): Buffer {
  const text = KEY_TEXT.exec(content.toString('latin1'))?.[1];
  const key = Buffer.from(text ?? '', 'base64');
  if (text === undefined || key.length !== KEY_BYTES || key.toString('base64') !== text) {
    key.fill(0);
    throw secretError(
      'MASTER_KEY_INVALID',
      `${file} is not a lattice master key (${KEY_BYTES} bytes as base64 on one line, mode 0600). Restore it from ` +
        'a backup: secrets stored under it cannot be decrypted without it. Only if no secret was ever stored, ' +
        'delete it and a new key will be created.',
    );
  }
  return key;
}

/** Publishes a new key at `file` unless one appears first (then the other process's key stands). */
function createMasterKey(file: string): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomToken(9)}.tmp`);
  const key = randomKey();
  try {
    writeFileExclusive(tmp, `${key.toString('base64')}\n`, 0o600);
    try {
      linkSync(tmp, file);
    } catch (error) {
      // EEXIST: another process published its key between our read and our link; use that one.
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
    fsyncDir(dir);
  } catch (error) {
    throw new LatticeError('IO_ERROR', `cannot create the master key ${file}: ${describeError(error)}`, { cause: error });
  } finally {
    key.fill(0);
    rmSync(tmp, { force: true });
  }
}

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}

function secretError(code: SecretErrorCode, message: string): LatticeError {
  return new LatticeError(code, message);
}
