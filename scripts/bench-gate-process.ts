/**
 * The real gate as a child process for the gate benchmarks (bench-gate.ts, bench-gate-memory.ts): starting it on a
 * temporary home, raw HTTP over its unix sockets, enrolling agents through the admin socket, stopping it, and what
 * /proc says about it (CPU time, resident memory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { makeProof } from '../sdk/dpop.ts';
import { CLI, CorrectnessFailure, seconds } from './bench-common.ts';

export const EXECUTE = '/api/v1/actions/echo/execute';
const EXECUTE_BODY = JSON.stringify({ params: { message: 'bench' } });
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 30_000;
/**
 * A proof is accepted while |now - iat| is within dpop_window (default 60 s). Proofs are made before a phase's clock
 * starts, so a window of 60 s would fail a slow gate's longer phases; a wider one changes no work per request.
 */
const DPOP_WINDOW_SECONDS = 600;

export interface Reply {
  readonly status: number;
  readonly text: string;
}

/** One HTTP request over a unix socket; `agent` keeps the connection open for the next one. */
export function send(socketPath: string, method: string, path: string, body?: string, headers: Record<string, string> = {}, agent?: Agent, sockets?: Set<Socket>): Promise<Reply> {
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

export interface Gate {
  readonly child: ChildProcess;
  readonly home: string;
  readonly gateSocket: string;
  readonly adminSocket: string;
  /** How the gate ended: `exit 0`, `exit 1`, `signal SIGTRAP`, … */
  readonly exited: Promise<string>;
  /** The last 64 KiB the gate wrote to stderr. */
  stderr(): string;
}

/**
 * `lattice up` on `home` with a lattice.toml in `dir` that sets max_ttl = "2h" and dpop_window = "600s" (and
 * nothing else), NODE_OPTIONS and NODE_EXTRA_CA_CERTS removed from its environment; waits for its admin socket.
 */
export async function startGate(dir: string, home: string, nodeArgs: readonly string[] = []): Promise<Gate> {
  const config = join(dir, 'lattice.toml');
  writeFileSync(config, `[identity]\nmax_ttl = "2h"\ndpop_window = "${DPOP_WINDOW_SECONDS}s"\n`);
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['NODE_EXTRA_CA_CERTS'];
  delete env['LATTICE_HOME'];
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'up', '--home', home, '--yes', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-64 * 1024)));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal === null ? `exit ${code}` : `signal ${signal}`)));
  const gate: Gate = { child, home, gateSocket: join(home, 'run', 'gate.sock'), adminSocket: join(home, 'run', 'admin.sock'), exited, stderr: () => stderr };
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
export async function stopGate(gate: Gate): Promise<void> {
  const reply = await send(gate.adminSocket, 'POST', '/api/v1/admin/shutdown');
  if (reply.status !== 202) throw new CorrectnessFailure(`POST /api/v1/admin/shutdown answered ${reply.status}: ${reply.text}`);
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout').unref());
  const how = await Promise.race([gate.exited, timeout]);
  if (how === 'timeout') throw new CorrectnessFailure(`the gate did not exit within ${STOP_TIMEOUT_MS / 1000} s of the shutdown request:\n${gate.stderr()}`);
  if (how !== 'exit 0') throw new CorrectnessFailure(`the gate ended with ${how} after the shutdown request:\n${gate.stderr()}`);
}

/** Kills the gate if it is still running (a benchmark that failed half-way). */
export function killGate(gate: Gate | undefined): void {
  if (gate !== undefined && gate.child.exitCode === null && gate.child.signalCode === null) gate.child.kill('SIGKILL');
}

export interface Client {
  readonly name: string;
  readonly token: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly agent: Agent;
  /** Every connection this client's requests went out on (one, when keep-alive holds). */
  readonly sockets: Set<Socket>;
}

/** An agent enrolled through the admin socket (Ed25519, `sandboxed`), with a keep-alive connection of its own. */
export async function enroll(gate: Gate, name: string): Promise<Client> {
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

/** The proofs for `counts[i]` requests by `clients[i]`, made one after another; and how long that took. */
export async function makeProofs(clients: readonly Client[], counts: readonly number[]): Promise<{ proofs: string[][]; seconds: number }> {
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
export async function execute(gate: Gate, client: Client, proof: string): Promise<number> {
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

export function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON: the caller reports the raw text
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc; null where there is no /proc. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15), in USER_HZ = 100 ticks
    return Number.isFinite(ticks) ? ticks * 10 : null;
  } catch {
    return null; // not Linux, or the process is gone: the CPU columns say n/a
  }
}

/** Resident set size of a process in MiB (VmRSS in /proc/<pid>/status); null where there is no /proc. */
export function processRssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? null : Number(m[1]) / 1024;
  } catch {
    return null; // not Linux, or the process is gone
  }
}
