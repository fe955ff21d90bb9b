/**
 * Ledger throughput benchmark: `npm run bench:ledger` (builds the CLI first). It prints numbers and asserts no
 * timings; the only failure is a correctness one (the benchmarked ledger does not verify), which exits 1.
 *
 * Everything runs in one temporary directory under os.tmpdir(), removed at the end:
 *   baselines  raw INSERTs into a file opened by the ledger's own opener (so the same WAL, synchronous=FULL and
 *              schema, always): one INSERT per transaction (every commit waits for its own fsync), then 100-row
 *              transactions. Measured in the same run, they say what this machine's disk and SQLite allow, so the
 *              ledger's numbers read as a ratio to the hardware instead of absolutes from an unknown disk.
 *   append     BENCH_EVENTS events (default 1,000,000) through Ledger.append's group commit from 32 concurrent
 *              producers: events/s, commits (counted as described at countCommit), and the latency from the
 *              append call to its promise settling (i.e. durable), sampled on every 100th append.
 *   verify     verifyLedger in-process on one thread over one read snapshot, then `lattice verify --home <dir> --json`
 *              through the built CLI end to end (process start, key set, snapshot, report), with --workers 1 and
 *              with its default (one thread per core).
 *
 * Output: a table for people, then the same numbers as one JSON object on the last line of stdout
 * (`npm run -s bench:ledger | tail -n 1`); when BENCH_JSON names a file, that JSON is also written there.
 * Quick run: BENCH_EVENTS=100000 npm run bench:ledger
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { homePaths, type HomePaths } from '../core/home.ts';
import { readKeySet } from '../core/keys/keyset.ts';
import { openReadOnly } from '../core/ledger/database.ts';
import { Ledger } from '../core/ledger/ledger.ts';
import { databaseSource } from '../core/ledger/sources.ts';
import { verifyLedger } from '../core/ledger/verify.ts';
import { CLI, CorrectnessFailure, baselines, ms, num, percentile, positiveEnv, printJsonLine, runBenchmark, seconds } from './bench-common.ts';

const PRODUCERS = 32;
const SAMPLE_EVERY = 100;
const EVENTS = positiveEnv('BENCH_EVENTS', 1_000_000);

async function appendAll(paths: HomePaths) {
  const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
  const latencies: number[] = [];
  let issued = 0;
  let commits = 0;
  let settling = false;
  // Every promise of one commit settles inside the same flush (a setImmediate callback), so its producers resume
  // in one microtask run. The first to resume counts a commit and queues the reset; it is queued before that
  // producer's next append queues the next flush, and immediates run in order, so each flush counts once. (A
  // flush can hold several commits only when more than maxBatch = 1024 appends wait; 32 producers cannot do that.)
  const countCommit = () => {
    if (settling) return;
    settling = true;
    commits++;
    setImmediate(() => (settling = false));
  };
  const producer = async (p: number) => {
    while (issued < EVENTS) {
      const n = issued++;
      const sampled = n % SAMPLE_EVERY === 0;
      const t = sampled ? performance.now() : 0;
      await ledger.append({ type: 'bench.event', principal: `agent-${p}`, action: 'echo', decision: 'allow', payload: { i: n, message: 'hello' } });
      if (sampled) latencies.push(performance.now() - t);
      countCommit();
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: PRODUCERS }, (_, p) => producer(p)));
  const elapsed = seconds(start);
  const closing = performance.now();
  ledger.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => percentile(latencies, p);
  return { perSec: EVENTS / elapsed, seconds: elapsed, commits, meanBatch: EVENTS / commits, p50Ms: pct(0.5), p99Ms: pct(0.99), samples: latencies.length, closeMs: performance.now() - closing };
}

async function verifyLibrary(paths: HomePaths, expected: number) {
  const start = performance.now();
  const db = openReadOnly(paths.db);
  try {
    const keys = readKeySet(paths.keyset);
    db.exec('BEGIN');
    const report = await verifyLedger(databaseSource(db, keys));
    db.exec('COMMIT');
    const elapsed = seconds(start);
    if (!report.ok || report.events !== expected) {
      throw new CorrectnessFailure(`verify (library) failed: ${JSON.stringify(report.failure ?? { events: report.events, expected })}`);
    }
    return { perSec: report.events / elapsed, seconds: elapsed };
  } finally {
    db.close();
  }
}

function verifyCli(paths: HomePaths, expected: number, extra: readonly string[]) {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['LATTICE_HOME'];
  const start = performance.now();
  const run = spawnSync(process.execPath, [CLI, 'verify', '--home', paths.root, '--json', ...extra], { env, encoding: 'utf8' });
  const elapsed = seconds(start);
  if (run.error !== undefined) throw run.error;
  let report: { ok?: unknown; events?: unknown } = {};
  try {
    report = JSON.parse(run.stdout) as typeof report;
  } catch (error) {
    throw new CorrectnessFailure(`lattice verify printed no JSON (exit ${run.status}): ${run.stderr}${run.stdout}`, { cause: error });
  }
  if (run.status !== 0 || report.ok !== true || report.events !== expected) {
    throw new CorrectnessFailure(`lattice verify failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  }
  return { perSec: expected / elapsed, seconds: elapsed };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-bench-'));
  try {
    const paths = homePaths(join(dir, 'home'));
    const base = baselines(join(dir, 'baseline.db'));
    const append = await appendAll(paths);
    const expected = EVENTS + 1; // plus the genesis event
    const library = await verifyLibrary(paths, expected);
    const cliOne = verifyCli(paths, expected, ['--workers', '1']);
    const cli = verifyCli(paths, expected, []);

    const cores = availableParallelism();
    const line = (label: string, perSec: number, extra = '') => `${label.padEnd(56)}${num(perSec).padStart(10)}   ${extra}`.trimEnd();
    const ratio = (v: number) => `${(v / base.singleRowPerSec).toFixed(v / base.singleRowPerSec < 10 ? 2 : 1)}x`.padStart(7);
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const out = [
      `${`ledger benchmark (node ${process.version}, ${cores} cores, ${tmpdir()})`.padEnd(56)}  events/s   vs baseline`,
      line('baseline: 1-row FULL commits', base.singleRowPerSec, ratio(base.singleRowPerSec)),
      line('baseline: 100-row transactions', base.hundredRowPerSec, ratio(base.hundredRowPerSec)),
      line(`append: group commit, ${PRODUCERS} producers, ${num(EVENTS)} events`, append.perSec,
        `${ratio(append.perSec)}   p50 ${ms(append.p50Ms)}  p99 ${ms(append.p99Ms)}  ${num(append.commits)} commits (~${append.meanBatch.toFixed(1)}/commit)`),
      line('verify (library, 1 thread)', library.perSec, `         ${library.seconds.toFixed(2)} s`),
      line('verify (lattice verify --workers 1, end to end)', cliOne.perSec, `         ${cliOne.seconds.toFixed(2)} s`),
      line(`verify (lattice verify, ${Math.min(8, cores)} threads, end to end)`, cli.perSec, `         ${cli.seconds.toFixed(2)} s`),
      `goals: append >= 50,000/s durable (${met(append.perSec >= 50_000)}), verify >= 200,000/s (${met(cli.perSec >= 200_000)} with lattice verify)`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    printJsonLine({ node: process.version, cores, events: EVENTS, producers: PRODUCERS, baseline: base, append, verify: { library, cliOneThread: cliOne, cli } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await runBenchmark('bench-ledger', main);
