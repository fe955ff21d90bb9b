/**
 * Durable, atomic file replacement: write a temporary file beside the target with the requested mode, fsync it,
 * rename it over the target and fsync the directory. A crash leaves either the old file or the new one, never a
 * torn mix; a file is never briefly readable with a wider mode.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  writeSynced(tmp, 'w', data, mode);
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

function writeSynced(path: string, flag: 'w' | 'wx', data: string | Uint8Array, mode: number): void {
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
