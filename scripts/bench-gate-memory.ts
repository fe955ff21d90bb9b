/**
 * Gate memory benchmark: `npm run bench:gate-memory` (builds the CLI first). It prints the gate's resident memory
 * (VmRSS from /proc, Linux only) in each phase next to the goals (≤ 80 MB idle, ≤ 200 MB under load) and asserts
 * nothing about them; the only failures are correctness ones, which exit 1 (a wrong answer to an agent, a gate that
 * does not answer health after a phase or does not stop cleanly).
 *
 * Everything runs against the real `lattice up` on temporary homes under os.tmpdir(), over its unix sockets only
 * (no network), and is bounded in count and time. Each phase after `idle` runs on a fresh gate whose idle RSS is
 * measured first (resident memory rarely shrinks, so a phase on a used gate would report the previous one's peak):
 *   idle         after start and 32 enrollments, RSS sampled every 100 ms for 2 s (the largest of the gates).
 *   load         32 agents, one keep-alive connection each, send BENCH_MEMORY_REQUESTS (default 3,200) `echo`
 *                executions in total, one after another per agent; the largest RSS sampled meanwhile.
 *   connections  BENCH_IDLE_CONNECTIONS (default 10,000) connections to run/gate.sock, opened 250 at a time, each
 *                sending the start of a request and nothing more (slowloris), held for 3 s: the largest RSS
 *                sampled, and how many the gate still held at the end. Then they are closed, and RSS is sampled
 *                again for 3 s ("after").
 *   bodies       BENCH_BODIES (default 256) executions at once without a credential, each with a 1,000,000-byte JSON
 *                body sent in full: the largest RSS sampled until all are answered (and their statuses).
 *   refusals     BENCH_REFUSALS (default 10,000) unauthenticated garbage requests (an execute without a credential,
 *                an unknown path) over 32 keep-alive connections; once the gate has stopped (it writes what it
 *                aggregated then), the ledger events recorded for them per request.
 * This process needs a file descriptor per connection: when the soft limit (ulimit -n) is too low, it raises it up to
 * the hard limit by running itself again under `sh -c 'ulimit -Sn N'` and says so; when the hard limit is too low,
 * it opens fewer connections and says so. The gate inherits the raised limit.
 *
 * Output: a table for people, then the same numbers as one JSON object on the last line of stdout (BENCH_JSON also
 * writes it to a file).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homePaths } from '../core/home.ts';
import { openReadOnly } from '../core/ledger/database.ts';
import { CorrectnessFailure, num, positiveEnv, printJsonLine, runBenchmark } from './bench-common.ts';
import { EXECUTE, enroll, execute, killGate, makeProofs, processRssMiB, send, startGate, stopGate, type Client, type Gate } from './bench-gate-process.ts';

const CLIENTS = 32;
const REQUESTS = positiveEnv('BENCH_MEMORY_REQUESTS', 3200);
const WANTED_CONNECTIONS = positiveEnv('BENCH_IDLE_CONNECTIONS', 10_000);
const REFUSALS = positiveEnv('BENCH_REFUSALS', 10_000);
const BODIES = positiveEnv('BENCH_BODIES', 256);
const BODY_BYTES = 1_000_000;
const CONNECT_BATCH = 250;
const HOLD_MS = 3000;
const SAMPLE_MS = 100;
/** Descriptors this process needs besides the idle connections (stdio, the clients, the ledger read). */
const SPARE_FDS = 256;
const GOAL_IDLE_MB = 80;
const GOAL_LOAD_MB = 200;
const RAISED = 'BENCH_MEMORY_RAISED_NOFILE';

/** The soft and hard limits on open files of this process, from /proc/self/limits. */
function openFileLimits(): { soft: number; hard: number } | null {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  if (m?.[1] === undefined || m[2] === undefined) return null;
  const value = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: value(m[1]), hard: value(m[2]) };
}

/**
 * How many idle connections this run opens, after raising the soft limit if needed (by running this script again
 * under a raised `ulimit -Sn`: Node has no setrlimit). Returns null when the re-run did the work.
 */
function connectionBudget(): number | null {
  const limits = openFileLimits();
  const needed = WANTED_CONNECTIONS + SPARE_FDS;
  if (limits === null || limits.soft >= needed) return WANTED_CONNECTIONS;
  if (process.env[RAISED] === undefined && limits.hard > limits.soft) {
    const target = Math.min(needed, limits.hard);
    process.stderr.write(`bench-gate-memory: raising the open-file soft limit from ${limits.soft} to ${target} (hard limit ${limits.hard}) for this run\n`);
    const rerun = spawnSync('/bin/sh', ['-c', `ulimit -Sn ${target} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [RAISED]: '1' },
    });
    process.exitCode = rerun.status ?? 1;
    return null;
  }
  const budget = Math.max(0, limits.soft - SPARE_FDS);
  process.stderr.write(`bench-gate-memory: the open-file limit (${limits.soft}) allows ${budget} of the ${WANTED_CONNECTIONS} idle connections asked for\n`);
  return budget;
}

/** Samples a process's RSS every SAMPLE_MS until stopped; the largest and the last sample, in MiB. */
function sampleRss(pid: number | undefined): { stop(): { peak: number; last: number } } {
  let peak = 0;
  let last = 0;
  const take = () => {
    const rss = processRssMiB(pid);
    if (rss === null) return;
    last = rss;
    peak = Math.max(peak, rss);
  };
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peak, last };
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function healthy(gate: Gate, after: string): Promise<void> {
  const reply = await send(gate.adminSocket, 'GET', '/api/v1/health').catch((error: unknown) => ({ status: 0, text: String(error) }));
  if (reply.status !== 200) throw new CorrectnessFailure(`the gate does not answer health after ${after} (${reply.status} ${reply.text.slice(0, 200)}):\n${gate.stderr()}`);
}

/** 32 agents, one after another each, `total` executions in all; every answer must be 200 `executed`. */
async function load(gate: Gate, clients: readonly Client[], total: number): Promise<void> {
  const share = (i: number) => Math.floor(total / clients.length) + (i < total % clients.length ? 1 : 0);
  const { proofs } = await makeProofs(clients, clients.map((_, i) => share(i)));
  await Promise.all(clients.map(async (client, i) => {
    for (const proof of proofs[i] ?? []) await execute(gate, client, proof);
  }));
}

/**
 * Opens `count` connections, CONNECT_BATCH at a time, each sending the start of a request; holds them HOLD_MS.
 * Returns how many connected and how many the gate still held at the end of the hold.
 */
async function idleConnections(gate: Gate, count: number): Promise<{ opened: number; held: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  let opened = 0;
  let closed = 0;
  for (let i = 0; i < count; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, count - i) }, () =>
      new Promise<void>((resolve) => {
        const socket = connect(gate.gateSocket);
        sockets.push(socket);
        socket.on('error', () => undefined); // refused or reset by the gate: counted below as not held
        socket.resume(); // read (and drop) what the gate answers, so its closing the connection is seen
        socket.once('close', () => {
          closed++;
          resolve();
        });
        socket.once('connect', () => {
          opened++;
          socket.write('GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\n');
          resolve();
        });
      }),
    );
    await Promise.all(batch);
  }
  await sleep(HOLD_MS);
  return { opened, held: sockets.length - closed, sockets };
}

/** `count` unauthenticated executions at once, each sending a body of BODY_BYTES in full; the statuses answered. */
async function bodies(gate: Gate, count: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const body = Buffer.from(`{"params":{"message":"${'x'.repeat(BODY_BYTES - 26)}"}}`);
  const head = `POST ${EXECUTE} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<void>((resolve) => {
        const socket = connect(gate.gateSocket);
        let text = '';
        socket.on('error', () => undefined); // the gate closing while the body is still being written
        socket.on('data', (c: Buffer) => (text += c.toString('latin1').slice(0, 64)));
        socket.once('close', () => {
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          resolve();
        });
        socket.setTimeout(60_000, () => socket.destroy());
        socket.once('connect', () => socket.end(Buffer.concat([Buffer.from(head), body])));
      }),
    ),
  );
  return statuses;
}

/** Unauthenticated garbage over 32 keep-alive connections (a closed one is replaced); the statuses answered. */
async function refusalFlood(gate: Gate, clients: readonly Client[], total: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const share = (i: number) => Math.floor(total / clients.length) + (i < total % clients.length ? 1 : 0);
  await Promise.all(clients.map(async (client, i) => {
    for (let n = 0; n < share(i); n++) {
      const reply = n % 2 === 0
        ? await send(gate.gateSocket, 'POST', EXECUTE, '{"params":{}}', {}, client.agent).catch(() => ({ status: 0, text: '' }))
        : await send(gate.gateSocket, 'GET', `/api/v1/no-such-route-${n}`, undefined, {}, client.agent).catch(() => ({ status: 0, text: '' }));
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      if (reply.status >= 500) throw new CorrectnessFailure(`garbage request answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    }
  }));
  return statuses;
}

/** Events the flood left in the ledger (seq > `after`, refusals of its codes) and the payload bytes they hold. */
function refusalEvents(home: string, after: number): { events: number; bytes: number } {
  const db = openReadOnly(homePaths(home).db);
  try {
    const row = db
      .prepare(`SELECT count(*) AS events, coalesce(sum(length(payload)), 0) AS bytes FROM events WHERE seq > ? AND type LIKE 'request.refused%' AND json_extract(payload, '$.code') IN ('UNAUTHENTICATED', 'NOT_FOUND', 'RATE_LIMITED')`)
      .get(after) as { events: number; bytes: number };
    return row;
  } finally {
    db.close();
  }
}

function headSeq(home: string): number {
  const db = openReadOnly(homePaths(home).db);
  try {
    return (db.prepare('SELECT coalesce(max(seq), 0) FROM events').pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
}

/** A fresh gate in its own home under `dir`, with CLIENTS agents enrolled; its idle RSS measured. */
async function freshGate(dir: string, name: string, gates: Gate[], clients: Client[]): Promise<{ gate: Gate; clients: Client[]; idle: number }> {
  const home = join(dir, name);
  const gate = await startGate(dir, home);
  gates.push(gate);
  const mine = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => enroll(gate, `bench-${String(i).padStart(2, '0')}`)));
  clients.push(...mine);
  await sleep(1000);
  const sampler = sampleRss(gate.child.pid);
  await sleep(2000);
  return { gate, clients: mine, idle: sampler.stop().peak };
}

async function main(): Promise<void> {
  const connections = connectionBudget();
  if (connections === null) return;
  const dir = mkdtempSync(join(tmpdir(), 'lattice-bench-memory-'));
  const gates: Gate[] = [];
  const clients: Client[] = [];
  let idleSockets: Socket[] = [];
  try {
    // Each phase on a gate of its own: resident memory rarely shrinks, so one phase would inherit another's peak.
    const a = await freshGate(dir, 'load', gates, clients);
    let sampler = sampleRss(a.gate.child.pid);
    await load(a.gate, a.clients, REQUESTS);
    const underLoad = sampler.stop().peak;
    await healthy(a.gate, 'the load');
    await stopGate(a.gate);

    const b = await freshGate(dir, 'connections', gates, clients);
    sampler = sampleRss(b.gate.child.pid);
    const conn = await idleConnections(b.gate, connections);
    idleSockets = conn.sockets;
    const underConnections = sampler.stop().peak;
    for (const socket of idleSockets) socket.destroy();
    await sleep(500);
    await healthy(b.gate, `${num(connections)} idle connections`);
    sampler = sampleRss(b.gate.child.pid);
    await sleep(HOLD_MS);
    const afterConnections = sampler.stop().last;
    await stopGate(b.gate);

    const d = await freshGate(dir, 'bodies', gates, clients);
    sampler = sampleRss(d.gate.child.pid);
    const bodyStatuses = await bodies(d.gate, BODIES);
    const underBodies = sampler.stop().peak;
    await healthy(d.gate, 'the bodies');
    await stopGate(d.gate);

    const c = await freshGate(dir, 'refusals', gates, clients);
    const before = headSeq(c.gate.home);
    sampler = sampleRss(c.gate.child.pid);
    const statuses = await refusalFlood(c.gate, c.clients, REFUSALS);
    const underRefusals = sampler.stop().peak;
    await healthy(c.gate, 'the refusal flood');
    await stopGate(c.gate);
    const recorded = refusalEvents(c.gate.home, before);
    const idle = Math.max(a.idle, b.idle, c.idle, d.idle);

    const mb = (v: number) => `${v.toFixed(0)} MB`;
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const line = (label: string, value: string, extra = '') => `${label.padEnd(64)}${value.padStart(10)}   ${extra}`.trimEnd();
    const answers = (m: Map<number, number>) => [...m].sort(([x], [y]) => x - y).map(([status, n]) => `${status === 0 ? 'no answer' : status}: ${num(n)}`).join(', ');
    process.stdout.write(
      [
        `${`gate memory benchmark (node ${process.version}), a fresh gate per phase`.padEnd(64)}${'RSS'.padStart(10)}`,
        line('idle (32 agents enrolled; the largest of the four gates)', mb(idle), `goal <= ${GOAL_IDLE_MB} MB: ${met(idle <= GOAL_IDLE_MB)}`),
        line(`32 clients, ${num(REQUESTS)} echo executions`, mb(underLoad), `goal <= ${GOAL_LOAD_MB} MB: ${met(underLoad <= GOAL_LOAD_MB)}`),
        line(`${num(connections)} idle connections (${num(conn.opened)} connected, ${num(conn.held)} held after ${HOLD_MS / 1000} s)`, mb(underConnections), `goal <= ${GOAL_LOAD_MB} MB: ${met(underConnections <= GOAL_LOAD_MB)}`),
        line('after the idle connections closed', mb(afterConnections)),
        line(`${num(BODIES)} unauthenticated 1 MB bodies at once`, mb(underBodies), answers(bodyStatuses)),
        line(`${num(REFUSALS)} unauthenticated garbage requests`, mb(underRefusals), answers(statuses)),
        line('  ledger events recorded for them, per request', (recorded.events / REFUSALS).toFixed(4), `${num(recorded.events)} events, ${num(recorded.bytes)} payload bytes`),
      ].join('\n') + '\n',
    );
    printJsonLine({
      node: process.version,
      goalsMB: { idle: GOAL_IDLE_MB, load: GOAL_LOAD_MB },
      rssMB: { idle: { load: a.idle, connections: b.idle, bodies: d.idle, refusals: c.idle }, underLoad, underConnections, afterConnections, underBodies, underRefusals },
      bodies: { requests: BODIES, bytes: BODY_BYTES, statuses: Object.fromEntries(bodyStatuses) },
      load: { clients: CLIENTS, requests: REQUESTS },
      connections: { asked: WANTED_CONNECTIONS, tried: connections, opened: conn.opened, held: conn.held },
      refusals: { requests: REFUSALS, statuses: Object.fromEntries(statuses), events: recorded.events, payloadBytes: recorded.bytes, eventsPerRequest: recorded.events / REFUSALS },
    });
  } finally {
    for (const socket of idleSockets) socket.destroy();
    for (const client of clients) client.agent.destroy();
    for (const gate of gates) killGate(gate);
    rmSync(dir, { recursive: true, force: true });
  }
}

await runBenchmark('bench-gate-memory', main);
