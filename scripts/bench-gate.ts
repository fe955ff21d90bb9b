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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { homePaths } from '../core/home.ts';
import { openReadOnly } from '../core/ledger/database.ts';
import { makeProof } from '../sdk/dpop.ts';
import { CLI, CorrectnessFailure, ms, num, percentile, positiveEnv, printJsonLine, runBenchmark, seconds, singleRowBaseline } from './bench-common.ts';

const CLIENTS = 32;
const WARMUP_SEQUENTIAL = 200;
const WARMUP_PER_CLIENT = 8;
const REQUESTS = positiveEnv('BENCH_REQUESTS', 2000);
const CONCURRENT_REQUESTS = positiveEnv('BENCH_CONCURRENT_REQUESTS', 10_000);
const PROFILE = process.env['BENCH_PROFILE'] === '1';
const EXECUTE = '/api/v1/actions/echo/execute';
const EXECUTE_BODY = JSON.stringify({ params: { message: 'bench' } });
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 30_000;
const DPOP_WINDOW_SECONDS = 600;

interface Reply {
  readonly status: number;
  readonly text: string;
}

/** One HTTP request over a unix socket; `agent` keeps the connection open for the next one. */
function send(socketPath: string, method: string, path: string, body?: string, headers: Record<string, string> = {}, agent?: Agent, sockets?: Set<Socket>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const withBody = body === undefined ? headers : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers };
    const req = request({ socketPath, method, path, headers: withBody, ...(agent !== undefined && { agent }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    if (sockets !== undefined) req.once('socket', (s) => sockets.add(s));
    req.on('error', reject);
    req.end(body);
  });
}

interface Gate {
  readonly child: ChildProcess;
  readonly gateSocket: string;
  readonly adminSocket: string;
  /** How the gate ended: `exit 0`, `exit 1`, `signal SIGTRAP`, … */
  readonly exited: Promise<string>;
  /** The last 64 KiB the gate wrote to stderr. */
  stderr(): string;
}

async function startGate(dir: string, home: string, profileDir: string | null): Promise<Gate> {
  const config = join(dir, 'lattice.toml');
  // A proof is accepted while |now - iat| is within dpop_window (default 60 s). Proofs are made before a phase's clock
  // starts, so a window of 60 s would fail a slow gate's longer phases; a wider one changes no work per request.
  writeFileSync(config, `[identity]\nmax_ttl = "2h"\ndpop_window = "${DPOP_WINDOW_SECONDS}s"\n`);
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['NODE_EXTRA_CA_CERTS'];
  delete env['LATTICE_HOME'];
  const prof = profileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const child = spawn(process.execPath, [...prof, CLI, 'up', '--home', home, '--yes', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-64 * 1024)));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal === null ? `exit ${code}` : `signal ${signal}`)));
  const gate: Gate = { child, gateSocket: join(home, 'run', 'gate.sock'), adminSocket: join(home, 'run', 'admin.sock'), exited, stderr: () => stderr };
  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`lattice up exited (${child.exitCode ?? child.signalCode}) before it answered:\n${stderr}`);
    const reply = await send(gate.adminSocket, 'GET', '/api/v1/health').catch(() => null);
    if (reply?.status === 200) return gate;
    if (performance.now() > deadline) throw new Error(`lattice up did not answer on ${gate.adminSocket} within ${START_TIMEOUT_MS / 1000} s:\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Asks the gate to stop through the admin socket and waits for it to exit; it must exit 0. */
async function stopGate(gate: Gate): Promise<void> {
  const reply = await send(gate.adminSocket, 'POST', '/api/v1/admin/shutdown');
  if (reply.status !== 202) throw new CorrectnessFailure(`POST /api/v1/admin/shutdown answered ${reply.status}: ${reply.text}`);
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout').unref());
  const how = await Promise.race([gate.exited, timeout]);
  if (how === 'timeout') throw new CorrectnessFailure(`the gate did not exit within ${STOP_TIMEOUT_MS / 1000} s of the shutdown request:\n${gate.stderr()}`);
  if (how !== 'exit 0') throw new CorrectnessFailure(`the gate ended with ${how} after the shutdown request:\n${gate.stderr()}`);
}

interface Client {
  readonly name: string;
  readonly token: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly agent: Agent;
  /** Every connection this client's requests went out on (one, when keep-alive holds). */
  readonly sockets: Set<Socket>;
}

async function enroll(gate: Gate, name: string): Promise<Client> {
  const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: true });
  const [privateJwk, publicJwk] = await Promise.all([exportJWK(privateKey), exportJWK(publicKey)]);
  const body = { agentName: name, agentType: 'bench', workspaceId: 'ws-bench', ttl: '1h', policyPreset: 'sandboxed', publicJwk };
  const reply = await send(gate.adminSocket, 'POST', '/api/v1/agent-enroll', JSON.stringify(body));
  const answer = parse(reply.text);
  const token = answer?.['enrollmentToken'];
  if (reply.status !== 201 || typeof answer?.['peerId'] !== 'string' || typeof token !== 'string') {
    throw new CorrectnessFailure(`enrolling ${name} answered ${reply.status}: ${reply.text.slice(0, 500)}`);
  }
  return { name, token, privateJwk, publicJwk, agent: new Agent({ keepAlive: true }), sockets: new Set() };
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON: the caller reports the raw text
  }
}

/** The proofs for `counts[i]` requests by `clients[i]`, made one after another; and how long that took. */
async function makeProofs(clients: readonly Client[], counts: readonly number[]): Promise<{ proofs: string[][]; seconds: number }> {
  const start = performance.now();
  const proofs: string[][] = [];
  for (const [i, client] of clients.entries()) {
    const mine: string[] = [];
    for (let n = 0; n < (counts[i] ?? 0); n++) {
      mine.push(await makeProof({ alg: 'EdDSA', privateJwk: client.privateJwk, publicJwk: client.publicJwk, method: 'POST', url: `http://localhost${EXECUTE}`, accessToken: client.token }));
    }
    proofs.push(mine);
  }
  return { proofs, seconds: seconds(start) };
}

/** One measured request: its latency in ms, after checking it was answered 200 `executed` with a receipt. */
async function execute(gate: Gate, client: Client, proof: string): Promise<number> {
  const start = performance.now();
  const reply = await send(gate.gateSocket, 'POST', EXECUTE, EXECUTE_BODY, { authorization: `DPoP ${client.token}`, dpop: proof }, client.agent, client.sockets).catch(async (error: unknown) => {
    // A hang-up usually means the gate is dying: give it a second to exit so the message says how it ended.
    const state = await Promise.race([gate.exited.then((how) => `ended with ${how}`), new Promise<string>((resolve) => setTimeout(resolve, 1000, 'is still running').unref())]);
    throw new CorrectnessFailure(`POST ${EXECUTE} as ${client.name} got no answer (${error instanceof Error ? error.message : String(error)}); the gate ${state}:\n${gate.stderr()}`);
  });
  const latency = performance.now() - start;
  const answer = parse(reply.text);
  const receipt = answer?.['receiptId'];
  if (reply.status !== 200 || answer?.['status'] !== 'executed' || typeof receipt !== 'string' || receipt === '') {
    throw new CorrectnessFailure(`POST ${EXECUTE} as ${client.name} answered ${reply.status}: ${reply.text.slice(0, 500)}`);
  }
  return latency;
}

/** CPU time (user + system, ms) a process has used so far, from /proc; null where there is no /proc. */
function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15), in USER_HZ = 100 ticks
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null; // not Linux, or the process is gone: the CPU columns say n/a
  }
}

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
    gate = await startGate(dir, home, profileDir);
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
    if (gate !== undefined && gate.child.exitCode === null && gate.child.signalCode === null) gate.child.kill('SIGKILL');
    if (profileDir !== null) process.stderr.write(`bench-gate: the gate's CPU profile is in ${profileDir}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}

await runBenchmark('bench-gate', main);
