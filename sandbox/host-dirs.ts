/**
 * Which host directories the agent may be given to write (the workspace, `--rw-mount` paths), and where lattice's
 * own directories are covered inside the sandbox.
 *
 * The rule (SECURITY.md, "What the agent may write"): a writable tree may not be `/`, a system directory, lie inside
 * one or hold one; may not be your home directory or hold it (a project inside it, ~/src/app, is fine); and may
 * not be, hold or lie inside `$LATTICE_HOME` (the ledger, the keys, `run/` with the admin socket), lattice's asset
 * cache or `$XDG_RUNTIME_DIR` (your sessions' sockets). A read-only mount may not lie inside lattice's directories;
 * one that holds them gets them covered by an empty read-only directory, so the only lattice socket reachable
 * inside is the gate socket lattice binds itself.
 *
 * Fail closed: a path that breaks the rule is refused with the rule it breaks, before anything starts.
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { cacheRoot } from '../core/runtime.ts';

export interface HostDirs {
  /** Your home directory (real path). */
  readonly home: string;
  /** lattice's directories (real paths): `$LATTICE_HOME`, the asset cache. */
  readonly lattice: readonly string[];
  /** `$XDG_RUNTIME_DIR` (real path), when set. */
  readonly runtime: string | null;
}

/** System directories: never writable, nor anything inside them or holding them. */
const SYSTEM = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/boot', '/dev', '/proc', '/sys', '/run'] as const;
/** Directories that hold everyone's files: never writable themselves (a project inside them is fine). */
const SHARED = ['/', '/tmp', '/var', '/opt', '/home', '/srv', '/mnt', '/media'] as const;

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path); // not there (yet): the rule applies to where it would be
  }
}

export function hostDirs(latticeHome: string, env: NodeJS.ProcessEnv): HostDirs {
  const runtime = env['XDG_RUNTIME_DIR'];
  return {
    home: real(env['HOME'] ?? homedir()),
    lattice: [real(latticeHome), real(cacheRoot())],
    runtime: runtime === undefined || runtime === '' ? null : real(runtime),
  };
}

/** `path` is `dir` or lies inside it. */
export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Why the agent may not be given `path` (a real path) to write, or null when it may. */
export function writableRefusal(path: string, dirs: HostDirs): string | null {
  for (const dir of dirs.lattice) {
    if (within(path, dir)) return `it lies inside ${dir}, lattice's own directory`;
    if (within(dir, path)) return `it holds ${dir}, lattice's own directory (the ledger, the keys, the admin socket)`;
  }
  if (dirs.runtime !== null && within(path, dirs.runtime)) return `it lies inside ${dirs.runtime}, your runtime directory (your sessions' sockets)`;
  if (dirs.runtime !== null && within(dirs.runtime, path)) return `it holds ${dirs.runtime}, your runtime directory (your sessions' sockets)`;
  if (path === dirs.home) return 'it is your home directory (the agent could change your shell\'s startup files and your tools\' settings)';
  if (within(dirs.home, path)) return `it holds your home directory ${dirs.home}`;
  for (const dir of SYSTEM) {
    if (within(path, dir)) return `it lies inside ${dir}, a system directory`;
    if (within(dir, path)) return `it holds ${dir}, a system directory`;
  }
  if ((SHARED as readonly string[]).includes(path)) return `${path} holds everyone's files`;
  return null;
}

/** Why `path` (a real path) may not be mounted read-only, or null when it may. */
export function readableRefusal(path: string, dirs: HostDirs): string | null {
  const dir = dirs.lattice.find((d) => within(path, d) && path !== d);
  return dir === undefined ? null : `it lies inside ${dir}, lattice's own directory`;
}

/** Where lattice's directories appear inside a bind of `src` at `dst` (each is masked there). */
export function latticeDirsInside(src: string, dst: string, dirs: HostDirs): string[] {
  return dirs.lattice.filter((d) => within(d, src)).map((d) => join(dst, d.slice(src.length)));
}
