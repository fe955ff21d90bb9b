/**
 * What the benchmarks in scripts/ share: their settings from the environment, the correctness failure that is their
 * only non-zero exit, number formatting, the closing JSON line (also written to BENCH_JSON when set), and the raw
 * SQLite baselines that say, in the same run on the same disk, what the hardware allows.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openWritable } from '../core/ledger/database.ts';

export const CLI = join(import.meta.dirname, '..', 'bin', 'lattice.mjs');

/** A wrong result (not a slow one): the benchmark reports it and exits 1. */
export class CorrectnessFailure extends Error {}

export function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${raw}`);
  return value;
}

export const seconds = (since: number) => (performance.now() - since) / 1000;

/** The p-quantile (0 < p <= 1) of ascending `sorted` by the nearest-rank method; NaN when empty. */
export const percentile = (sorted: readonly number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;

export const num = (n: number) => Math.round(n).toLocaleString('en-US');
export const ms = (v: number) => (v < 1 ? `${Math.round(v * 1000)} µs` : `${v.toFixed(1)} ms`);

/** Prints `value` as the last line of stdout (`npm run -s bench:… | tail -n 1`) and, when BENCH_JSON names a file, writes it there. */
export function printJsonLine(value: object): void {
  const json = JSON.stringify(value);
  const file = process.env['BENCH_JSON'];
  if (file !== undefined && file !== '') writeFileSync(file, `${json}\n`);
  process.stdout.write(`${json}\n`);
}

/** Runs a benchmark's main: a CorrectnessFailure is reported on stderr and exits 1; any other error is a bug and throws. */
export async function runBenchmark(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (!(error instanceof CorrectnessFailure)) throw error;
    process.stderr.write(`${name}: CORRECTNESS FAILURE: ${error.message}\n`);
    process.exitCode = 1;
  }
}

export interface Baselines {
  /** One INSERT per transaction: every commit waits for its own fsync (up to 20,000 rows or 3 s). */
  readonly singleRowPerSec: number;
  /** 100-row transactions (up to 2,000 of them or 10 s). */
  readonly hundredRowPerSec: number;
}

/** Both baselines, one-row commits first, into a new file opened by the ledger's own opener. */
export function baselines(file: string): Baselines {
  return rawInserts(file, (raw) => ({ singleRowPerSec: raw.singleRowPerSec(), hundredRowPerSec: raw.hundredRowPerSec() }));
}

/** Only the one-row commit baseline. */
export function singleRowBaseline(file: string): number {
  return rawInserts(file, (raw) => raw.singleRowPerSec());
}

/**
 * Raw INSERTs into a file opened by the ledger's opener, so with the same WAL, synchronous=FULL and schema, always.
 * The rows look like ledger events (64-hex-char hashes, principals cycling over 32 agents).
 */
function rawInserts<T>(file: string, measure: (raw: { singleRowPerSec(): number; hundredRowPerSec(): number }) => T): T {
  const db = openWritable(file);
  try {
    const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    let seq = 0;
    const row = () => {
      seq++;
      const hash = (n: number) => n.toString(16).padStart(64, '0'); // 64 hex chars like the real hashes
      insert.run(seq, new Date().toISOString(), 'bench.event', `agent-${seq % 32}`, 'echo', 'allow', `{"i":${seq},"message":"hello"}`, hash(seq - 1), hash(seq));
    };
    const one = db.transaction(row);
    const hundred = db.transaction(() => {
      for (let i = 0; i < 100; i++) row();
    });
    return measure({
      singleRowPerSec() {
        const first = seq;
        const start = performance.now();
        while (seq - first < 20_000 && performance.now() - start < 3000) one.immediate();
        return (seq - first) / seconds(start);
      },
      hundredRowPerSec() {
        let transactions = 0;
        const start = performance.now();
        while (transactions < 2000 && performance.now() - start < 10_000) {
          hundred.immediate();
          transactions++;
        }
        return (transactions * 100) / seconds(start);
      },
    });
  } finally {
    db.close();
  }
}
