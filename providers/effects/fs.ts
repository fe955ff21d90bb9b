/**
 * Performs fs.read and fs.write effects beneath the manifest's `[sinks.fs] root`, never following a symlink.
 *
 * Node has no openat2(RESOLVE_NO_SYMLINKS), so the path is walked one component at a time: each component is opened
 * through the /proc/self/fd magic link of its parent directory's descriptor with O_NOFOLLOW, which resolves like
 * openat(2) on Linux. Nothing is ever opened by a path string that a swapped-in symlink could redirect.
 *
 * Fails closed. A path that is not relative and normalized or that the sink's globs refuse (checked again here,
 * core/pipeline/fs-sink.ts), a symlink anywhere beneath the root, a file to read or to replace that has other hard
 * links (another name for a file the sink may deny, or one outside the root), a write target that is not a regular
 * file: refused (SINK_DENIED). Without /proc the walk cannot be done, so nothing is done. Content that does not
 * match its declared bytes and SHA-256 is not written. A write is atomic (temp file, fsync, rename, fsync of the
 * directory) and leaves no temp file behind, whether it succeeds or fails.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { ActionManifest } from '../../core/actions/manifest.ts';
import { randomToken, sha256Hex } from '../../core/crypto/index.ts';
import { LatticeError, isLatticeError } from '../../core/errors.ts';
import type { EffectResult, FsReadEffect, FsWriteEffect } from '../../core/pipeline/effects.ts';
import { checkFsPath } from '../../core/pipeline/fs-sink.ts';
import { readUpTo } from '../../core/dir-handle.ts';

export const DEFAULT_MAX_READ_BYTES = 1024 * 1024;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;
const NO_FOLLOW_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

export function readFile(effect: FsReadEffect, manifest: ActionManifest, maxReadBytes: number): EffectResult {
  return ioFailuresReported(effect.path, () => read(effect, manifest, maxReadBytes));
}

export function writeFile(effect: FsWriteEffect, manifest: ActionManifest): EffectResult {
  return ioFailuresReported(effect.path, () => write(effect, manifest));
}

function read(effect: FsReadEffect, manifest: ActionManifest, maxReadBytes: number): EffectResult {
  const { dirs, leaf } = segments(effect.path);
  allowedBySink(manifest, effect.path);
  const dirFd = openDirectory(manifest, effect.path, dirs, false);
  try {
    // O_NONBLOCK: opening a FIFO must not hang waiting for a writer; it is refused below like any non-regular file.
    const fd = openChild(dirFd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, effect.path);
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw failed(`${effect.path} is not a regular file`);
      // Checked on the open descriptor: a denied file (.env) linked under an allowed name (notes.txt) is refused.
      if (stat.nlink > 1) throw denied(`${effect.path} has other hard links; it is also a file elsewhere, which may be denied`);
      if (stat.size > maxReadBytes) throw failed(`${effect.path} is larger than the ${maxReadBytes} bytes an fs.read may return`);
      const data = readUpTo(fd, stat.size + 1);
      if (data.length > stat.size) throw failed(`${effect.path} grew while it was being read`);
      return { kind: 'fs.read', path: effect.path, bytes: data.length, sha256: sha256Hex(data), ...decoded(data) };
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(dirFd);
  }
}

function write(effect: FsWriteEffect, manifest: ActionManifest): EffectResult {
  const { dirs, leaf } = segments(effect.path);
  allowedBySink(manifest, effect.path);
  const data = Buffer.from(effect.content, 'utf8');
  const sha256 = sha256Hex(data);
  if (data.length !== effect.bytes || sha256 !== effect.sha256) {
    throw failed(`${effect.path}: the content does not match its declared bytes and sha256; nothing was written`);
  }
  const dirFd = openDirectory(manifest, effect.path, dirs, true);
  try {
    const existing = lstatSync(at(dirFd, leaf), { throwIfNoEntry: false });
    if (existing !== undefined && !existing.isFile()) throw denied(`${effect.path} exists and is not a regular file`);
    if (existing !== undefined && existing.nlink > 1) throw denied(`${effect.path} has other hard links; it is also a file elsewhere`);
    replace(dirFd, leaf, data, existing === undefined ? null : existing.mode & 0o777, effect.path);
    return { kind: 'fs.write', path: effect.path, bytes: data.length, sha256, created: existing === undefined };
  } finally {
    closeSync(dirFd);
  }
}

/** Writes a temp file beside `leaf`, syncs it, renames it over `leaf` and syncs the directory; removes it on failure. */
function replace(dirFd: number, leaf: string, data: Buffer, mode: number | null, path: string): void {
  const temp = `.lattice-${randomToken(12)}.tmp`;
  let state: 'none' | 'created' | 'renamed' = 'none';
  try {
    const fd = openSync(at(dirFd, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
    state = 'created';
    try {
      if (mode !== null) fchmodSync(fd, mode); // replacing a file keeps its permissions
      for (let done = 0; done < data.length; ) done += writeSync(fd, data, done);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(at(dirFd, temp), at(dirFd, leaf));
    state = 'renamed';
    fsyncSync(dirFd);
  } catch (error) {
    if (state === 'renamed') throw failed(`${path}: was written, but syncing its directory failed (${errorCode(error)}); it may not survive a crash`);
    throw failed(`${path}: could not be written: ${errorCode(error)}`);
  } finally {
    if (state === 'created') rmSync(at(dirFd, temp), { force: true }); // only a temp file this call created
  }
}

/** The planner normalized the path already; this re-check refuses anything that could leave or confuse the walk. */
function segments(path: string): { dirs: string[]; leaf: string } {
  const names = path.split('/');
  const leaf = names.pop() ?? '';
  const bad = path.includes('\0') || [...names, leaf].some((n) => n === '' || n === '.' || n === '..');
  if (bad) throw denied(`${JSON.stringify(path)} is not a normalized relative path (no leading /, empty, . or .. segments, NUL)`);
  return { dirs: names, leaf };
}

/** The planner checked the sink already; the host checks again where it acts, so no caller can skip the deny list. */
function allowedBySink(manifest: ActionManifest, path: string): void {
  const problem = checkFsPath(manifest, path);
  if (problem !== null) throw denied(problem);
}

/** Opens the root, then each directory of `dirs` beneath it without following symlinks; creates missing ones if asked. */
function openDirectory(manifest: ActionManifest, path: string, dirs: readonly string[], create: boolean): number {
  let fd = openRoot(manifest);
  try {
    for (const name of dirs) {
      const parent = fd;
      fd = create ? openOrCreateDirectory(parent, name, path) : openChild(parent, name, NO_FOLLOW_DIR, path);
      closeSync(parent);
    }
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function openRoot(manifest: ActionManifest): number {
  const root = manifest.sinks.fs?.root;
  if (root === undefined) throw denied('the manifest has no [sinks.fs]');
  if (!isAbsolute(root)) throw failed(`the fs root ${root} is not an absolute path`);
  let fd: number;
  try {
    fd = openSync(realpathSync(root), O_RDONLY | O_DIRECTORY);
  } catch (error) {
    throw failed(`the fs root ${root} cannot be opened: ${errorCode(error)}`);
  }
  // The walk resolves names through /proc/self/fd; without it (or with a different one) nothing can be done safely.
  const seen = statSync(`/proc/self/fd/${fd}`, { throwIfNoEntry: false });
  const real = fstatSync(fd);
  if (seen === undefined || seen.ino !== real.ino || seen.dev !== real.dev) {
    closeSync(fd);
    throw failed('/proc/self/fd is not available; fs effects need it to walk paths without following symlinks');
  }
  return fd;
}

function openOrCreateDirectory(dirFd: number, name: string, path: string): number {
  try {
    mkdirSync(at(dirFd, name), 0o755); // mkdir never follows a symlink at its last component: EEXIST
  } catch (error) {
    if (errorCode(error) !== 'EEXIST') throw walkFailure(error, path, name);
  }
  return openChild(dirFd, name, NO_FOLLOW_DIR, path);
}

/** openat(dirFd, name, flags) with O_NOFOLLOW; a symlink or non-directory where a directory is needed is refused. */
function openChild(dirFd: number, name: string, flags: number, path: string): number {
  try {
    return openSync(at(dirFd, name), flags | O_NOFOLLOW);
  } catch (error) {
    throw walkFailure(error, path, name);
  }
}

function walkFailure(error: unknown, path: string, name: string): LatticeError {
  const code = errorCode(error);
  if (code === 'ELOOP' || code === 'ENOTDIR') {
    return denied(`${path}: ${name} is a symlink or not a directory; symlinks are not followed beneath the root`);
  }
  return failed(code === 'ENOENT' ? `${path}: no such file` : `${path}: ${name} cannot be opened: ${code}`);
}

/** The path of `name` inside the directory open as `dirFd`; the kernel resolves it like openat(dirFd, name). */
function at(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

/** UTF-8 text when the bytes are valid UTF-8 (a BOM is kept, so the content round-trips), else base64. */
function decoded(data: Buffer): { content: string; encoding: 'utf8' | 'base64' } {
  try {
    return { content: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data), encoding: 'utf8' };
  } catch {
    return { content: data.toString('base64'), encoding: 'base64' };
  }
}

/** A system call failing where the steps above expect none (EIO, EACCES, ENAMETOOLONG…) is EFFECT_FAILED, too. */
function ioFailuresReported<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    const systemError = typeof error === 'object' && error !== null && 'syscall' in error;
    throw systemError && !isLatticeError(error) ? failed(`${path}: ${errorCode(error)}`) : error;
  }
}

function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'unknown error';
}

function failed(message: string): LatticeError {
  return new LatticeError('EFFECT_FAILED', message);
}

function denied(message: string): LatticeError {
  return new LatticeError('SINK_DENIED', message);
}
