/**
 * Running the release tooling as a maintainer and a user would: scripts/release.mjs, the install.sh it ships, and
 * the checks around them (SHA-256 of a file, SHA256SUMS read strictly, a PATH of chosen tools, a run as a normal user).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { sha256Hex } from '../../core/crypto/index.ts';
import { ROOT, tempDir, type CliResult } from '../helpers.ts';

const RELEASE_SCRIPT = join(ROOT, 'scripts', 'release.mjs');
/** The real single-file binary (`npm test` builds it first). */
export const BINARY = join(ROOT, 'dist', 'lattice');
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const HOST_TARGET = `${process.platform}-${process.arch}`;
export const NOBODY = 65534;
export const isRoot = process.getuid?.() === 0;

/** This environment without anything that would change what the release tools do, plus `extra`. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const inherited = ['NODE_OPTIONS', 'LATTICE_HOME', 'LATTICE_INSTALL_BASE', 'LATTICE_RELEASE_BASE', 'SOURCE_DATE_EPOCH', 'RUNNER_TEMP', 'LATTICE_BUNDLE', 'LATTICE_KEYSET', 'LATTICE_VERSION'];
  for (const name of inherited) delete env[name];
  return { ...env, ...extra };
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Run as uid/gid 65534 with no supplementary groups (through setpriv, when this process is root). */
  readonly asNobody?: boolean;
}

/** `command ARGS` to completion. A tool that is missing fails the test (spawn's ENOENT is thrown). */
export function run(command: string, args: readonly string[], options: RunOptions = {}): CliResult {
  const [file, argv] = options.asNobody === true && isRoot ? ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', command, ...args]] : [command, args];
  const result = spawnSync(file, argv, { env: options.env ?? cleanEnv(), cwd: options.cwd, encoding: 'utf8', timeout: 120_000 });
  if (result.error !== undefined) throw result.error;
  if (result.signal !== null) throw new Error(`${command} ${args.join(' ')} was killed by ${result.signal}: ${result.stdout}${result.stderr}`);
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** `command ARGS` without blocking this process, for a test that serves what the command downloads. */
export async function runAsync(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal !== null ? -1 : 0)));
  });
  return { status, stdout, stderr };
}

/** `node scripts/release.mjs ARGS`, as `npm run release` runs it after building the binary. */
export function release(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  return run(process.execPath, [RELEASE_SCRIPT, ...args], { env: cleanEnv(env), cwd: ROOT });
}

/** A release of `binary` for this host in a fresh out dir that any user may read; fails the test if it fails. */
export function releaseOf(binary: string, args: readonly string[] = []): string {
  const out = tempDir('lattice-release-');
  chmodSync(out, 0o755);
  const made = release(['--binary', binary, '--out', out, ...args]);
  assert.equal(made.status, 0, `release.mjs failed: ${made.stderr}`);
  return out;
}

export function sha256File(file: string): string {
  return sha256Hex(readFileSync(file));
}

/** SHA256SUMS as a map from file name to hash, checking every line has the `<hex>  <file>` form. */
export function readSums(file: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')) {
    const match = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    assert.ok(match !== null, `not a sha256sum line: ${JSON.stringify(line)}`);
    sums.set(match[2]!, match[1]!);
  }
  return sums;
}

/** A small executable standing in for a binary where only the packing is under test. */
export function fakeBinary(text: string): string {
  const file = join(tempDir('lattice-bin-'), 'lattice');
  writeFileSync(file, `#!/bin/sh\necho '${text}'\n`, { mode: 0o755 });
  return file;
}

/** A PATH holding only `tools` (found on this PATH; a missing one fails the test) and the sh scripts in `extra`. */
export function pathOf(tools: readonly string[], extra: Record<string, string> = {}): string {
  const dir = tempDir('lattice-path-');
  chmodSync(dir, 0o755);
  const search = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  for (const tool of tools) {
    const found = search.map((d) => join(d, tool)).find(executable);
    assert.ok(found !== undefined, `${tool} is not installed (.ci/run installs it)`);
    symlinkSync(found, join(dir, tool));
  }
  for (const [name, body] of Object.entries(extra)) writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false; // absent, not executable, or a dangling link: not this command
  }
}

/** A directory owned by uid 65534 when this process is root (else by this user), for a normal user's install. */
export function nobodyDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o755);
  if (isRoot) chownSync(dir, NOBODY, NOBODY);
  return dir;
}
