/**
 * Running `lattice sandbox` for real in tests: as root, and as a normal user (uid 65534 when the suite runs as
 * root). A normal user cannot read a checkout under root's 0700 home, so for that user the CLI files are copied
 * (hard-linked where possible) to a world-readable directory first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { exited, startGateAs } from '../gate/harness.ts';
import { ROOT, tempDir } from '../helpers.ts';

export interface Runner {
  readonly label: string;
  readonly uid: number;
  readonly gid: number;
  /** bin/lattice.mjs as this user can run it. */
  readonly cli: string;
  /** The directory holding the CLI (bind it in to run lattice inside). */
  readonly cliRoot: string;
}

const NOBODY = 65534;
export const isRoot = process.getuid?.() === 0;

let copied: string | undefined;
function readableCopy(): string {
  if (copied !== undefined) return copied;
  const dest = join(tempDir('lattice-cli-'), 'lattice');
  mkdirSync(dest);
  for (const part of ['bin', 'dist', 'node_modules', 'profiles', 'package.json']) {
    const cp = spawnSync('cp', ['-al', join(ROOT, part), join(dest, part)], { encoding: 'utf8' });
    if (cp.status !== 0) cpSync(join(ROOT, part), join(dest, part), { recursive: true });
  }
  spawnSync('chmod', ['-R', 'a+rX', dest]);
  copied = dest;
  return dest;
}

function canRead(uid: number, file: string): boolean {
  if (uid === process.getuid?.()) {
    try {
      accessSync(file, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'test', '-r', file]).status === 0;
}

/** The users the suite runs the sandbox as: root and uid 65534 under root; the current user otherwise. */
export function runners(): Runner[] {
  const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const make = (label: string, uid: number, gid: number): Runner => {
    const root = canRead(uid, join(ROOT, 'dist', 'lattice.mjs')) && canRead(uid, join(ROOT, 'node_modules', 'better-sqlite3', 'package.json')) ? ROOT : readableCopy();
    return { label, uid, gid, cli: join(root, 'bin', 'lattice.mjs'), cliRoot: root };
  };
  return isRoot ? [make('root', 0, 0), make('a normal user (uid 65534)', NOBODY, NOBODY)] : [make(`a normal user (uid ${self.uid})`, self.uid, self.gid)];
}

/** A directory owned by the runner. */
export function ownedDir(runner: Runner, prefix = 'lattice-sbx-'): string {
  const dir = tempDir(prefix);
  if (isRoot) chownSync(dir, runner.uid, runner.gid);
  return dir;
}

export function mkdirOwned(runner: Runner, dir: string): string {
  mkdirSync(dir, { recursive: true });
  if (isRoot) chownSync(dir, runner.uid, runner.gid);
  return dir;
}

/** This environment for a lattice child: without NODE_OPTIONS and LATTICE_HOME, plus `extra`. */
export function baseEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['LATTICE_HOME'];
  return { ...env, ...extra };
}

export interface Run {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `lattice ARGS` as the runner, to completion. */
export function latticeAs(runner: Runner, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string, timeoutMs = 120_000): Run {
  const r = spawnSync(process.execPath, [runner.cli, ...args], { env: baseEnv(env), uid: runner.uid, gid: runner.gid, encoding: 'utf8', cwd, timeout: timeoutMs });
  if (r.error !== undefined) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `lattice ARGS` as the runner, without blocking this process (for tests that serve something it calls). */
export async function latticeAsync(runner: Runner, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawnLattice(runner, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const [status, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (code, sig) => resolve([code, sig])));
  return { status, signal, stdout, stderr };
}

/** `lattice ARGS` as the runner, in the background. */
export function spawnLattice(runner: Runner, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): ChildProcess {
  return spawn(process.execPath, [runner.cli, ...args], { env: baseEnv(env), uid: runner.uid, gid: runner.gid, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface SandboxHome {
  readonly home: string;
  stop(): Promise<void>;
}

/** A gate on a fresh home owned by the runner, started as the runner. */
export async function gateAs(runner: Runner): Promise<SandboxHome> {
  const home = join(ownedDir(runner, 'lattice-home-'), 'h');
  const { child } = await startGateAs(runner, home);
  return {
    home,
    stop: async () => {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}
