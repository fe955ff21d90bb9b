/** Shared test helpers: temporary homes, running the built CLI, and an attacker's raw access to a ledger file. */
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError, isLatticeError, type LatticeError } from '../core/errors.ts';
import { createServer } from 'node:net';

export const ROOT = join(import.meta.dirname, '..');
export const CLI = join(ROOT, 'bin', 'lattice.mjs');

const created: string[] = [];
process.on('exit', () => {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh directory, removed when the test file's process exits (node:test's `after` would remove one made in a
 * `before` hook as soon as that hook ends).
 */
export function tempDir(prefix = 'lattice-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `lattice` command as a user would (npm test builds it first). */
export function lattice(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const base = { ...process.env };
  delete base['NODE_OPTIONS'];
  delete base['LATTICE_HOME'];
  const result = spawnSync(process.execPath, [CLI, ...args], { env: { ...base, ...env }, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  if (result.signal !== null) {
    throw new Error(`lattice ${args.join(' ')} was killed by ${result.signal}: ${result.stdout}${result.stderr}`);
  }
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export function latticeJson<T = Record<string, unknown>>(args: readonly string[], env?: NodeJS.ProcessEnv): { status: number; json: T; stderr: string } {
  const result = lattice([...args, '--json'], env);
  let json: T;
  try {
    json = JSON.parse(result.stdout) as T;
  } catch (error) {
    throw new Error(`lattice ${args.join(' ')} printed no JSON (exit ${result.status}): ${result.stdout}${result.stderr}`, { cause: error });
  }
  return { status: result.status, json, stderr: result.stderr };
}

/** Opens a ledger file the way an attacker with write access would: raw SQLite, append-only triggers dropped. */
export function attackerOpen(dbFile: string): Database.Database {
  const db = new Database(dbFile);
  for (const table of ['events', 'checkpoints', 'receipts']) {
    db.exec(`DROP TRIGGER IF EXISTS ${table}_no_update; DROP TRIGGER IF EXISTS ${table}_no_delete;`);
  }
  return db;
}

/** The LatticeError a promise rejects with, checked against a literal code (codes are pinned in tests, not imported). */
export async function rejectsWithCode(promise: Promise<unknown>, code: string, message?: RegExp): Promise<LatticeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isLatticeError(error), `expected a LatticeError, got ${describeError(error)}`);
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}

/** A loopback TCP port free right now (for a listener a test configures by number). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
