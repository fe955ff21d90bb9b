/**
 * The state directory, `$LATTICE_HOME` (default `~/.lattice`). Everything lattice persists lives under it:
 * `lattice.db` (the ledger) and `keys/` (signing keys and the public key set).
 *
 * The directory and its key directory are kept 0700 and every file 0600: `ensureHome` creates them that way and
 * tightens a directory it finds readable by group or others. A home that cannot be made private is refused.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LatticeError, describeError } from './errors.ts';

export interface HomePaths {
  readonly root: string;
  readonly db: string;
  readonly keys: string;
  readonly keyset: string;
}

export function resolveHome(explicit?: string, env: NodeJS.ProcessEnv = process.env): HomePaths {
  const fromEnv = env['LATTICE_HOME'];
  const root = resolve(explicit ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.lattice')));
  return homePaths(root);
}

export function homePaths(root: string): HomePaths {
  const keys = join(root, 'keys');
  return { root, db: join(root, 'lattice.db'), keys, keyset: join(keys, 'keyset.json') };
}

/** Creates (or tightens) the home and its key directory with mode 0700. */
export function ensureHome(paths: HomePaths): void {
  ensurePrivateDir(paths.root);
  ensurePrivateDir(paths.keys);
}

export function ensurePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = statSync(dir);
    if (!stat.isDirectory()) throw new Error('exists and is not a directory');
    if ((stat.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (error) {
    throw new LatticeError('HOME_UNUSABLE', `cannot use ${dir} as a private directory: ${describeError(error)}`, {
      cause: error,
    });
  }
}

/** A running gate's files under `<home>/run/` (here, not in core/gate, so a command can find them without loading the gate). */
export interface RunPaths {
  readonly dir: string;
  readonly gateSocket: string;
  readonly adminSocket: string;
  readonly pidFile: string;
}

export function runPaths(paths: HomePaths): RunPaths {
  const dir = join(paths.root, 'run');
  return { dir, gateSocket: join(dir, 'gate.sock'), adminSocket: join(dir, 'admin.sock'), pidFile: join(dir, 'gate.pid') };
}
