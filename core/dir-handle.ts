/**
 * A directory held open by its descriptor, for host-side code that reads or writes inside a tree someone else can
 * write: an agent's private home, a workspace. Each operation names one entry of the directory, and the kernel looks
 * that name up in the directory the descriptor holds, never by walking a path string again.
 *
 * Node has no openat(2). On Linux, `/proc/self/fd/<fd>/<name>` is the same lookup: the kernel resolves the magic link
 * `/proc/self/fd/<fd>` to the directory the descriptor was opened on (whatever it is called now, wherever it was
 * moved) and looks up `name` there. So a component renamed or swapped for a symlink after it was opened changes
 * nothing, and the only symlink a step could meet is at `name` itself, which every open here refuses (O_NOFOLLOW;
 * O_CREAT|O_EXCL; mkdir and rename never follow their last component). That makes a walk of several components, one
 * `dir()` at a time, race-free against an agent renaming and relinking its files concurrently (another session of
 * the same profile shares the home). Without /proc on Linux nothing is done (IO_ERROR). Elsewhere (macOS, where no
 * lattice sandbox runs) the directory's path is walked again each time; each name is still opened with O_NOFOLLOW,
 * so a link placed beforehand is refused, but a swap racing the walk is not.
 *
 * Fails closed (UNSAFE_PATH, naming the entry): a symbolic link where a directory or file is expected, unless the
 * handle was opened to follow links (a user's own home); a file to read that is not a regular file, has other hard
 * links, or exceeds its cap. A write goes to a new file with an unpredictable name, created O_CREAT|O_EXCL|
 * O_NOFOLLOW (nothing already there, a planted link included, is ever opened), and is renamed over the entry: a
 * rename replaces a symlink, it never writes through one.
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomToken } from './crypto/index.ts';
import { LatticeError, describeError } from './errors.ts';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

export type EntryKind = 'dir' | 'file' | 'link' | 'other';

/** `refuse`: a symlink anywhere below the handle is an error. `follow`: links are the owner's own (a user's home). */
export type Links = 'refuse' | 'follow';

export class DirHandle {
  private constructor(
    private readonly fd: number,
    /** The directory's path when it was opened (for messages, and the walk where /proc is not used). */
    readonly path: string,
    private readonly links: Links,
  ) {}

  /** Opens a directory the caller trusts by its path (lattice's own state directory, a home the user pointed at). */
  static open(path: string, links: Links): DirHandle {
    let fd: number;
    try {
      fd = openSync(path, O_RDONLY | O_DIRECTORY);
    } catch (error) {
      throw new LatticeError('IO_ERROR', `cannot open the directory ${path}: ${describeError(error)}`, { cause: error });
    }
    if (process.platform === 'linux') {
      const seen = statSync(`/proc/self/fd/${fd}`, { throwIfNoEntry: false });
      const real = fstatSync(fd);
      if (seen === undefined || seen.ino !== real.ino || seen.dev !== real.dev) {
        closeSync(fd);
        throw new LatticeError('IO_ERROR', `/proc/self/fd is not available, and lattice needs it to work in ${path} without following links; mount /proc`);
      }
    }
    return new DirHandle(fd, path, links);
  }

  /**
   * The subdirectory `relative` (one or more names separated by `/`), each component opened through the previous
   * one's descriptor. Missing components are made with `mode` when `create` is set; otherwise a missing one gives null.
   */
  dir(relative: string, options: { create: true; mode?: number }): DirHandle;
  dir(relative: string, options: { create: false }): DirHandle | null;
  dir(relative: string, options: { create: boolean; mode?: number }): DirHandle | null {
    const [first = '', ...rest] = names(relative);
    const mode = options.mode ?? 0o700;
    let current = this.child(first, options.create, mode);
    for (const name of rest) {
      if (current === null) return null;
      const parent: DirHandle = current;
      try {
        current = parent.child(name, options.create, mode);
      } finally {
        parent.close();
      }
    }
    return current;
  }

  /** The bytes of the regular file `name`, or null when there is none; refuses anything else and files over `maxBytes`. */
  read(name: string, maxBytes: number): Buffer | null {
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO planted here must not hang the open; it is refused below like any non-regular file.
      fd = openSync(this.at(name), O_RDONLY | O_NONBLOCK | O_NOCTTY | this.noFollow());
    } catch (error) {
      if (code(error) === 'ENOENT') return null;
      throw this.refusal(name, error, 'a regular file');
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw this.unsafe(name, 'is not a regular file');
      if (this.links === 'refuse' && stat.nlink !== 1) throw this.unsafe(name, 'has other hard links (it is also a file elsewhere)');
      if (stat.size > maxBytes) throw this.unsafe(name, `is larger than ${maxBytes} bytes`);
      const data = readUpTo(fd, maxBytes + 1);
      if (data.length > maxBytes) throw this.unsafe(name, `grew past ${maxBytes} bytes while it was read`);
      return data;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Replaces (or creates) `name` with `data`: temp file, fsync, rename over the entry, fsync of the directory. The file
   * gets exactly `mode` (lattice runs under umask 077, which would narrow a file meant for others to read).
   */
  replace(name: string, data: string | Uint8Array, mode = 0o600): void {
    checkName(name);
    const temp = `.${name.slice(0, 64)}.${randomToken(16)}.tmp`;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let fd: number | undefined;
    let created = false;
    try {
      fd = openSync(this.at(temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
      created = true;
      fchmodSync(fd, mode);
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(this.at(temp), this.at(name));
      created = false;
      fsyncSync(this.fd);
    } catch (error) {
      if (fd !== undefined) closeSync(fd);
      // Only the name this call created is removed, as an entry (unlink never follows a link).
      const left = created ? this.removeTemp(temp) : '';
      throw new LatticeError('IO_ERROR', `cannot write ${join(this.path, name)}: ${describeError(error)}${left}`, { cause: error });
    }
  }

  /** What `name` is, without following it: null when absent. */
  kind(name: string): EntryKind | null {
    const st = lstatSync(this.at(name), { throwIfNoEntry: false });
    if (st === undefined) return null;
    return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  }

  /** The permission bits of `name` (of what a link points at, when this handle follows links): null when absent. */
  permissions(name: string): number | null {
    const st = (this.links === 'follow' ? statSync : lstatSync)(this.at(name), { throwIfNoEntry: false });
    return st === undefined ? null : st.mode & 0o7777;
  }

  /** The directory's entries (names only; `.` and `..` left out). */
  names(): string[] {
    try {
      return readdirSync(this.self());
    } catch (error) {
      throw new LatticeError('IO_ERROR', `cannot list ${this.path}: ${describeError(error)}`, { cause: error });
    }
  }

  /** Where a link `name` points (its text, never followed). */
  linkTarget(name: string): string {
    return readlinkSync(this.at(name));
  }

  /** Removes the entry `name` that is not a directory (unlink never follows a link). */
  unlink(name: string): void {
    unlinkSync(this.at(name));
  }

  /** Renames the entry `from` to `to`, both in this directory. */
  rename(from: string, to: string): void {
    renameSync(this.at(from), this.at(to));
  }

  /** Takes group and other permissions away from the directory itself (fchmod through the descriptor). */
  makePrivate(): void {
    try {
      if ((fstatSync(this.fd).mode & 0o077) !== 0) fchmodSync(this.fd, 0o700);
    } catch (error) {
      throw new LatticeError('IO_ERROR', `cannot make ${this.path} private (mode 0700): ${describeError(error)}`, { cause: error });
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private child(name: string, create: boolean, mode: number): DirHandle | null {
    const flags = O_RDONLY | O_DIRECTORY | this.noFollow();
    try {
      return new DirHandle(openSync(this.at(name), flags), join(this.path, name), this.links);
    } catch (error) {
      if (code(error) !== 'ENOENT') throw this.refusal(name, error, 'a directory');
      if (!create) return null;
    }
    let made = false;
    try {
      mkdirSync(this.at(name), mode); // never follows a link at `name`: one placed there since gives EEXIST
      made = true;
    } catch (error) {
      if (code(error) !== 'EEXIST') throw new LatticeError('IO_ERROR', `cannot create ${join(this.path, name)}: ${describeError(error)}`, { cause: error });
    }
    let fd: number;
    try {
      fd = openSync(this.at(name), flags);
    } catch (error) {
      throw this.refusal(name, error, 'a directory');
    }
    const dir = new DirHandle(fd, join(this.path, name), this.links);
    try {
      if (made) fchmodSync(fd, mode); // exactly `mode`, as replace() does, whatever the umask; one made by someone else is left as it is
    } catch (error) {
      dir.close();
      throw new LatticeError('IO_ERROR', `cannot set the mode of ${dir.path} to 0${mode.toString(8)}: ${describeError(error)}`, { cause: error });
    }
    return dir;
  }

  /** The directory itself: its descriptor on Linux, its path elsewhere. */
  private self(): string {
    return process.platform === 'linux' ? `/proc/self/fd/${this.fd}` : this.path;
  }

  /** Where `name` is looked up: through this descriptor on Linux, by the directory's path elsewhere. */
  private at(name: string): string {
    checkName(name);
    return process.platform === 'linux' ? `/proc/self/fd/${this.fd}/${name}` : join(this.path, name);
  }

  /** '' once the temp file is gone, or what is left behind, for the error message. */
  private removeTemp(temp: string): string {
    try {
      unlinkSync(this.at(temp));
      return '';
    } catch (error) {
      return code(error) === 'ENOENT' ? '' : `; the temporary file ${join(this.path, temp)} is left behind (${describeError(error)})`;
    }
  }

  private noFollow(): number {
    return this.links === 'refuse' ? O_NOFOLLOW : 0;
  }

  /** ELOOP (a link opened with O_NOFOLLOW) or ENOTDIR (O_DIRECTORY|O_NOFOLLOW on a link) become a refusal naming it. */
  private refusal(name: string, error: unknown, expected: string): LatticeError {
    const c = code(error);
    if (c === 'ELOOP' || c === 'ENOTDIR' || c === 'ENXIO') {
      // lstat only chooses the words of the message; the open above already refused whatever is there.
      const link = lstatSync(this.at(name), { throwIfNoEntry: false })?.isSymbolicLink() === true;
      return this.unsafe(name, link ? 'is a symbolic link' : `is not ${expected}`);
    }
    return new LatticeError('IO_ERROR', `cannot open ${join(this.path, name)}: ${describeError(error)}`, { cause: error });
  }

  private unsafe(name: string, what: string): LatticeError {
    const where = join(this.path, name);
    return new LatticeError('UNSAFE_PATH', `${where} ${what}; lattice neither reads nor writes through it (remove or move it, then try again)`);
  }
}

function names(relative: string): string[] {
  const parts = relative.split('/');
  for (const part of parts) checkName(part);
  return parts;
}

/** One directory entry's name: not empty, `.` or `..`, no `/` or NUL (callers validate at their boundary; this is the last check). */
function checkName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new LatticeError('UNSAFE_PATH', `${JSON.stringify(name)} is not a single file name`);
  }
}

/** Reads until end of file or `limit` bytes, whichever comes first. */
export function readUpTo(fd: number, limit: number): Buffer {
  const buffer = Buffer.alloc(limit);
  let size = 0;
  while (size < limit) {
    const n = readSync(fd, buffer, size, limit - size, null);
    if (n === 0) break;
    size += n;
  }
  return buffer.subarray(0, size);
}

function code(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}
