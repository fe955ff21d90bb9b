/**
 * Gate round-trip benchmark: `npm run bench:gate` (builds the CLI first). It prints numbers and asserts no timings;
 * the only failures are correctness ones, which exit 1: an action that is not answered 200 `executed` with a
 * receipt, a gate that does not stop cleanly, a ledger that `lattice verify` refuses, or fewer `action.executed`
 * events in it than requests sent.
 *
 * Everything runs in one temporary directory under os.tmpdir(), removed at the end:
 *   baseline    raw one-row synchronous=FULL commits into a file opened by the ledger's own opener (see
 *               bench-common.ts): what this disk and SQLite allow, measured in the same run before the gate starts.
 *   gate        the real `lattice up` as a child process (NODE_OPTIONS and NODE_EXTRA_CA_CERTS removed from its
 *               environment), with one agent per client enrolled through the admin socket (Ed25519, `sandboxed`).
 *               Its lattice.toml sets max_ttl = "2h" and dpop_window = "600s" (see startGate); nothing else.
 *   request     POST /api/v1/actions/echo/execute over run/gate.sock with `Authorization: DPoP <lease>` and a fresh
 *               DPoP proof, on one keep-alive connection per client. Proofs are single-use and valid for ±60 s, so
 *               each phase's proofs are made before its clock starts (the client shares the cores with the gate);
 *               their cost per proof is printed on its own line.
 *   sequential  one client: 200 warm-up requests, then BENCH_REQUESTS (default 2,000) one after another, each timed.
 *   concurrent  32 clients (32 agents), each sending one after another: 8 warm-up requests each, then
 *               BENCH_CONCURRENT_REQUESTS (default 10,000) in total; actions/s and the latency of every request.
 *   evidence    the gate is stopped through the admin socket, then `lattice verify --home <home> --json` must pass
 *               and the ledger must hold an `action.executed` event for every request sent.
 * Besides wall time it prints the CPU time the gate (from /proc, Linux only) and this client used per action, which
 * tells a gate that computes from one that waits for the disk.
 *
 * Output: a table for people, then the same numbers as one JSON object on the last line of stdout
 * (`npm run -s bench:gate | tail -n 1`); when BENCH_JSON names a file, that JSON is also written there.
 * BENCH_PROFILE=1 runs the gate under `node --cpu-prof`; the profile's directory is kept and named on stderr.
 * Quick run: BENCH_REQUESTS=200 BENCH_CONCURRENT_REQUESTS=1000 npm run bench:gate
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { homePaths } from '../core/home.ts';
import { openReadOnly } from '../core/ledger/database.ts';
import { CLI, CorrectnessFailure, ms, num, percentile, positiveEnv, printJsonLine, runBenchmark, seconds, singleRowBaseline } from './bench-common.ts';
import { enroll, execute, killGate, makeProofs, parse, processCpuMs, startGate, stopGate, type Client, type Gate } from './bench-gate-process.ts';

const CLIENTS = 32;
const WARMUP_SEQUENTIAL = 200;
const WARMUP_PER_CLIENT = 8;
const REQUESTS = positiveEnv('BENCH_REQUESTS', 2000);
const CONCURRENT_REQUESTS = positiveEnv('BENCH_CONCURRENT_REQUESTS', 10_000);
const PROFILE = process.env['BENCH_PROFILE'] === '1';

interface PhaseResult {
  readonly requests: number;
  readonly seconds: number;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Connections opened, warm-up included (one per client when keep-alive holds). */
  readonly connections: number;
  readonly gateCpuMsPerAction: number | null;
  readonly clientCpuMsPerAction: number;
}

/**
 * Each client sends its warm-up requests, then (on the clock) its share of `total`, one after another, all
 * clients at once. Proofs for both are made first. The first wrong answer stops every client.
 */
async function phase(gate: Gate, clients: readonly Client[], warmupPerClient: number, total: number): Promise<{ result: PhaseResult; proofs: number; proofSeconds: number }> {
  const share = (i: number) => Math.floor(total / clients.length) + (i < total % clients.length ? 1 : 0);
  const { proofs, seconds: proofSeconds } = await makeProofs(clients, clients.map((_, i) => warmupPerClient + share(i)));
  let failed = false;
  const run = (take: (proofs: string[]) => string[], latencies: number[] | null) =>
    Promise.all(
      clients.map(async (client, i) => {
        for (const proof of take(proofs[i] ?? [])) {
          if (failed) return;
          try {
            const latency = await execute(gate, client, proof);
            latencies?.push(latency);
          } catch (error) {
            failed = true;
            throw error;
          }
        }
      }),
    );
  await run((p) => p.slice(0, warmupPerClient), null);
  const latencies: number[] = [];
  const cpu = { gate: processCpuMs(gate.child.pid), client: process.cpuUsage() };
  const start = performance.now();
  await run((p) => p.slice(warmupPerClient), latencies);
  const elapsed = seconds(start);
  const gateCpu = processCpuMs(gate.child.pid);
  const clientCpu = process.cpuUsage(cpu.client);
  latencies.sort((a, b) => a - b);
  const result: PhaseResult = {
    requests: total,
    seconds: elapsed,
    perSec: total / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p90Ms: percentile(latencies, 0.9),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? NaN,
    connections: clients.reduce((sum, c) => sum + c.sockets.size, 0),
    gateCpuMsPerAction: gateCpu === null || cpu.gate === null ? null : (gateCpu - cpu.gate) / total,
    clientCpuMsPerAction: (clientCpu.user + clientCpu.system) / 1000 / total,
  };
  return { result, proofs: proofs.reduce((sum, p) => sum + p.length, 0), proofSeconds };
}

/** `lattice verify` must pass and the ledger must hold at least one `action.executed` event per request sent. */
function checkEvidence(home: string, sent: number): { executed: number; verifySeconds: number } {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['LATTICE_HOME'];
  const start = performance.now();
  const run = spawnSync(process.execPath, [CLI, 'verify', '--home', home, '--json'], { env, encoding: 'utf8' });
  const verifySeconds = seconds(start);
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0 || parse(run.stdout)?.['ok'] !== true) throw new CorrectnessFailure(`lattice verify failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  const db = openReadOnly(homePaths(home).db);
  try {
    const executed = db.prepare(`SELECT count(*) FROM events WHERE type = 'action.executed'`).pluck().get() as number;
    if (executed < sent) throw new CorrectnessFailure(`the ledger holds ${executed} action.executed events for ${sent} executed requests`);
    return { executed, verifySeconds };
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-bench-'));
  const profileDir = PROFILE ? mkdtempSync(join(tmpdir(), 'lattice-bench-profile-')) : null;
  const home = join(dir, 'home');
  let gate: Gate | undefined;
  const clients: Client[] = [];
  try {
    const baseline = singleRowBaseline(join(dir, 'baseline.db'));
    gate = await startGate(dir, home, profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir]);
    const g = gate;
    clients.push(...(await Promise.all(Array.from({ length: 1 + CLIENTS }, (_, i) => enroll(g, i === 0 ? 'bench-seq' : `bench-${String(i).padStart(2, '0')}`)))));
    const [first, ...rest] = clients as [Client, ...Client[]];
    const a = await phase(g, [first], WARMUP_SEQUENTIAL, REQUESTS);
    const b = await phase(g, rest, WARMUP_PER_CLIENT, CONCURRENT_REQUESTS);
    const [sequential, concurrent] = [a.result, b.result];
    const sent = WARMUP_SEQUENTIAL + REQUESTS + CLIENTS * WARMUP_PER_CLIENT + CONCURRENT_REQUESTS;
    await stopGate(g);
    const evidence = checkEvidence(home, sent);

    const proofs = a.proofs + b.proofs;
    const proofMs = ((a.proofSeconds + b.proofSeconds) * 1000) / proofs;
    const ratio = (perSec: number) => `${(perSec / baseline).toFixed(2)}x`.padStart(7);
    const cores = availableParallelism();
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const cpu = (p: PhaseResult) => `cpu/action: gate ${p.gateCpuMsPerAction === null ? 'n/a' : ms(p.gateCpuMsPerAction)}, client ${ms(p.clientCpuMsPerAction)}`;
    const line = (label: string, value: string, extra = '') => `${label.padEnd(56)}${value.padStart(12)}   ${extra}`.trimEnd();
    const out = [
      `${`gate benchmark (node ${process.version}, ${cores} cores, ${tmpdir()})`.padEnd(56)}${'per second'.padStart(12)}   vs baseline`,
      line('baseline: 1-row FULL commits (raw SQLite, same disk)', num(baseline), ratio(baseline)),
      line(`proofs: makeProof EdDSA, ${num(proofs)} made before the clock`, '', `${ms(proofMs)} per proof`),
      line(`A: 1 client, sequential, ${num(REQUESTS)} requests`, num(sequential.perSec),
        `${ratio(sequential.perSec)}   p50 ${ms(sequential.p50Ms)}  p90 ${ms(sequential.p90Ms)}  p99 ${ms(sequential.p99Ms)}  max ${ms(sequential.maxMs)}  ${sequential.connections} conn  ${cpu(sequential)}`),
      line(`B: ${CLIENTS} clients, concurrent, ${num(CONCURRENT_REQUESTS)} requests`, num(concurrent.perSec),
        `${ratio(concurrent.perSec)}   p50 ${ms(concurrent.p50Ms)}  p99 ${ms(concurrent.p99Ms)}  max ${ms(concurrent.maxMs)}  ${concurrent.connections} conn  ${cpu(concurrent)}`),
      line(`evidence: lattice verify ok, ${num(evidence.executed)} action.executed for ${num(sent)} sent`, '', `verify ${evidence.verifySeconds.toFixed(2)} s`),
      `goals: A p50 <= 1 ms (${ms(sequential.p50Ms)}, ${met(sequential.p50Ms <= 1)}), A p99 <= 5 ms (${ms(sequential.p99Ms)}, ${met(sequential.p99Ms <= 5)}), ` +
        `B >= 5,000 actions/s (${num(concurrent.perSec)}/s, ${met(concurrent.perSec >= 5000)})`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
    printJsonLine({
      node: process.version,
      cores,
      clients: CLIENTS,
      baseline: { singleRowPerSec: baseline },
      proofs: { count: proofs, msPerProof: proofMs },
      sequential: { warmup: WARMUP_SEQUENTIAL, ...sequential },
      concurrent: { warmupPerClient: WARMUP_PER_CLIENT, ...concurrent, ratioToBaseline: concurrent.perSec / baseline },
      evidence: { sent, ...evidence },
    });
  } finally {
    for (const client of clients) client.agent.destroy();
    killGate(gate);
    if (profileDir !== null) process.stderr.write(`bench-gate: the gate's CPU profile is in ${profileDir}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}

await runBenchmark('bench-gate', main);
