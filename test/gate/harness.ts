/** Running the gate as a real child process and talking raw HTTP to its sockets, as any agent could. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import * as DPoP from 'dpop';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { exportJWK, type SignJWT } from 'jose';
import { homePaths } from '../../core/home.ts';
import { openReadOnly } from '../../core/ledger/database.ts';
import { CLI, tempDir } from '../helpers.ts';

export interface Reply {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

/** One raw HTTP request over a unix socket (or TCP port), as any agent could send it. */
export function call(target: { socketPath: string } | { port: number }, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // agent: false — one connection per request, never a pooled one the gate may be closing (keep-alive timeout).
    const req = request({ ...target, method, path, agent: false, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Reply['body'], headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const running: ChildProcess[] = [];
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `lattice up` in the foreground as a child and waits for its admin socket. */
export function startGate(home: string, ...args: string[]): Promise<{ child: ChildProcess; gate: string; admin: string }> {
  return startGateAs({ cli: CLI }, home, ...args);
}

/** startGate with another CLI path, and as another user when `uid`/`gid` are given (the suite must be root). */
export async function startGateAs(as: { cli: string; uid?: number; gid?: number }, home: string, ...args: string[]): Promise<{ child: ChildProcess; gate: string; admin: string }> {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const child = spawn(process.execPath, [as.cli, 'up', '--home', home, '--yes', ...args], { env, uid: as.uid, gid: as.gid, stdio: ['ignore', 'ignore', 'pipe'] });
  running.push(child);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const admin = join(home, 'run', 'admin.sock');
  // Longer than the gate's own start budgets (a provider worker gets [providers] load_timeout = 15 s to load), so
  // a gate slowed by a loaded machine reports its own error instead of the harness giving up first.
  const deadline = Date.now() + 40_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`lattice up exited ${child.exitCode}: ${stderr}`);
    if (existsSync(admin) && (await call({ socketPath: admin }, 'GET', '/api/v1/health').then(() => true, () => false))) break;
    if (Date.now() > deadline) throw new Error(`the gate did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, gate: join(home, 'run', 'gate.sock'), admin };
}

export function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}


export const BASE = 'http://localhost';
export type KeyPair = Awaited<ReturnType<typeof DPoP.generateKeyPair>>;
export type SigningKey = Parameters<SignJWT['sign']>[0];

export interface Agent {
  peerId: string;
  token: string;
  keys: KeyPair;
  overlayIP: string;
}

export interface TestGate {
  home: string;
  gate: string;
  admin: string;
  config: string;
  child: Awaited<ReturnType<typeof startGate>>['child'];
}

/** A gate with a fast reaper, on a fresh home; `extra` is appended to its lattice.toml. */
export async function gate(extra = ''): Promise<TestGate> {
  const home = join(tempDir(), 'home');
  const config = join(tempDir(), 'lattice.toml');
  writeFileSync(config, `[identity]\nreaper_interval = "200ms"\nmax_ttl = "2h"\n${extra}`);
  return { home, config, ...(await startGate(home, '--config', config)) };
}

/** A JSON request to the gate's admin socket, as the operator. */
export function asOperator(g: { admin: string }, method: string, path: string, body?: unknown): Promise<Reply> {
  return call({ socketPath: g.admin }, method, path, body === undefined ? undefined : JSON.stringify(body));
}

export async function enroll(socket: string, keys: KeyPair, overrides: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Reply> {
  const body = { agentName: 'builder', agentType: 'claude-code', workspaceId: 'ws-test', ttl: '1h', policyPreset: 'sandboxed', publicJwk: await exportJWK(keys.publicKey), ...overrides };
  return call({ socketPath: socket }, 'POST', '/api/v1/agent-enroll', JSON.stringify(body), headers);
}

export async function newAgent(admin: string, alg: 'ES256' | 'Ed25519' = 'ES256', overrides: Record<string, unknown> = {}): Promise<Agent> {
  const keys = await DPoP.generateKeyPair(alg);
  const reply = await enroll(admin, keys, overrides);
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return { peerId: String(reply.body['peerId']), token: String(reply.body['enrollmentToken']), keys, overlayIP: String(reply.body['overlayIP']) };
}

/** A request as the agent, with a proof from the independent DPoP implementation. */
export async function asAgent(socket: string, agent: Agent, method: string, path: string, body?: string | Buffer): Promise<Reply> {
  const proof = await DPoP.generateProof(agent.keys, `${BASE}${path}`, method, undefined, agent.token);
  return call({ socketPath: socket }, method, path, body, { authorization: `DPoP ${agent.token}`, dpop: proof });
}

export function codeOf(reply: Reply): string | undefined {
  return reply.body.error?.code;
}


export interface RawExchange {
  /** Everything the gate wrote back. */
  text: string;
  /** Whether the gate closed the connection before `timeoutMs`. */
  closed: boolean;
  /** The status of the first response, or 0 when there was none. */
  status: number;
}

/**
 * Bytes written as they are onto a fresh connection (anything an attacker could send), and what came back until the
 * gate closed it or `timeoutMs` passed (then the connection is closed here). Write errors after the gate closed are
 * expected and ignored.
 */
export function raw(socketPath: string, chunks: readonly (string | Buffer)[], timeoutMs = 5000): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const received: Buffer[] = [];
    let timedOut = false;
    const finish = () => {
      const text = Buffer.concat(received).toString('latin1');
      resolve({ text, closed: !timedOut, status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0) });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, timeoutMs);
    socket.on('data', (c: Buffer) => received.push(c));
    let connected = false;
    // Before the connection, an error is the test's failure; after it, the gate closing while bytes were still being
    // written (EPIPE, ECONNRESET) is the outcome to look at, and 'close' follows.
    socket.on('error', (error) => {
      if (!connected) reject(error);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      finish();
    });
    socket.once('connect', () => {
      connected = true;
      // One write: after the gate has answered and closed, a second write would fail (EPIPE), and Node's socket would
      // then be destroyed before it read the answer waiting for it.
      if (chunks.length > 0) socket.write(Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c, 'latin1') : c))));
    });
  });
}

/** Events of the ledger of a (running or stopped) gate whose type starts with `prefix`, read from its database. */
export function ledgerEvents(home: string, prefix: string): { seq: number; type: string; principal: string | null; payload: Record<string, unknown> }[] {
  const db = openReadOnly(homePaths(home).db);
  try {
    const rows = db.prepare(`SELECT seq, type, principal, payload FROM events WHERE substr(type, 1, ?) = ? ORDER BY seq`).all(prefix.length, prefix) as { seq: number; type: string; principal: string | null; payload: string }[];
    return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as Record<string, unknown> }));
  } finally {
    db.close();
  }
}

/** Polls until `check` holds (or throws after `ms`). */
export async function eventually(check: () => boolean, ms = 5000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
