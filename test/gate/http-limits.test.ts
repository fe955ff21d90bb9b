/**
 * What a flood costs the gate, against a real gate process over its unix sockets: refusals aggregated in the
 * ledger, refused connections closed, connections capped per listener and per agent, and how far back an agent's
 * event stream may replay. Each limit next to the legitimate traffic it must leave alone.
 */
import * as DPoP from 'dpop';
import assert from 'node:assert/strict';
import { Agent as HttpAgent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, tempDir } from '../helpers.ts';
import { BASE, asAgent, asOperator, call, codeOf, gate, ledgerEvents, newAgent, raw, startGate, type Agent } from './harness.ts';

/** A GET over a given keep-alive http.Agent: its status, and whether the gate asked to close the connection. */
function getOver(agent: HttpAgent, socketPath: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; close: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, close: res.headers.connection === 'close' }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET over TCP to the loopback gate from a chosen loopback source address. */
function getFrom(port: number, localAddress: string, path: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, localAddress, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One connection that sends nothing yet; a full accept queue (EAGAIN: the gate accepts slower than this connects) is retried. */
async function connectIdle(socketPath: string): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(socketPath);
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN' || attempt === 50) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** What the gate writes on a connection until it closes it (or `ms` pass): its text, status, and whether it closed. */
function answerOf(socket: Socket, ms: number): Promise<{ text: string; status: number; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, ms);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined); // 'close' follows
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0), closed: !timedOut });
    });
  });
}

/** Opens `count` connections that send nothing yet, and waits until every one is connected. */
async function idle(socketPath: string, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 100) sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => connectIdle(socketPath)))));
  return sockets;
}

/** A whoami on a connection of its own, as raw HTTP/1.1 kept alive: the status line's code. */
async function whoamiOn(socketPath: string, agent: Agent, sockets: Socket[]): Promise<number> {
  const proof = await DPoP.generateProof(agent.keys, `${BASE}/api/v1/whoami`, 'GET', undefined, agent.token);
  const socket = await connectIdle(socketPath);
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('data', (c: Buffer) => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(c.toString('latin1'))?.[1] ?? 0)));
    socket.write(`GET /api/v1/whoami HTTP/1.1\r\nhost: localhost\r\nauthorization: DPoP ${agent.token}\r\ndpop: ${proof}\r\n\r\n`);
  });
}

describe('refusal floods', () => {
  it('refusal-flood: garbage past the first few refusals per source and reason becomes one aggregate event with the count', async () => {
    const g = await gate();
    const sent = 60;
    for (let i = 0; i < sent; i++) assert.equal((await call({ socketPath: g.gate }, 'GET', `/api/v1/nope-${i}`)).status, 404);
    // Refusals of an authenticated agent are its own: recorded in full while the anonymous ones are being counted.
    const agent = await newAgent(g.admin);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'POST', '/api/v1/actions/echo/execute', JSON.stringify({ params: { message: 7 } }))), 'VALIDATION_FAILED');
    assert.equal(ledgerEvents(g.home, 'request.refused').filter((e) => e.principal === agent.peerId).length, 1);
    assert.equal(lattice(['down', '--home', g.home]).status, 0); // writes what was counted
    const refused = ledgerEvents(g.home, 'request.refused').filter((e) => e.payload['code'] === 'NOT_FOUND');
    assert.deepEqual(refused.map((e) => e.type), [...Array<string>(5).fill('request.refused'), 'request.refused.aggregate']);
    const aggregate = refused[5]!.payload;
    assert.equal(aggregate['count'], sent - 5);
    assert.equal(aggregate['source'], 'gate');
    assert.equal((aggregate['sample'] as { route: string }).route, '/api/v1/nope-5');
    const verify = lattice(['verify', '--home', g.home]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });

  it('loopback-spread: refusals over TCP from many 127.0.0.0/8 addresses share one source and one aggregate', async () => {
    const home = join(tempDir(), 'home');
    const { admin, gate: gateSocket } = await startGate(home, '--listen', '127.0.0.1:0');
    const port = Number(String((await call({ socketPath: admin }, 'GET', '/api/v1/admin/status')).body['listen']).split(':').pop());
    const sources = ['127.0.0.1', '127.0.1.2', '127.0.3.4', '127.9.8.7'];
    const perSource = 10;
    for (const localAddress of sources) for (let i = 0; i < perSource; i++) assert.equal((await getFrom(port, localAddress, `/api/v1/nope-${i}`)).status, 404);
    // The legitimate case: another source (the unix socket) keeps its own window, its first refusals written in full.
    assert.equal((await call({ socketPath: gateSocket }, 'GET', '/api/v1/nope-unix')).status, 404);
    assert.equal(lattice(['down', '--home', home]).status, 0); // writes what was counted
    const refused = ledgerEvents(home, 'request.refused').filter((e) => e.payload['code'] === 'NOT_FOUND');
    assert.deepEqual(refused.filter((e) => e.payload['listener'] === 'tcp').length, 5, 'five written in full across all loopback addresses');
    const aggregates = refused.filter((e) => e.type === 'request.refused.aggregate');
    assert.deepEqual(aggregates.map((e) => [e.payload['source'], e.payload['count']]), [['tcp:loopback', sources.length * perSource - 5]]);
    assert.equal(refused.filter((e) => e.payload['listener'] === 'gate').length, 1);
  });

  it('refusal-keepalive: a connection refused more than 16 times in 10 s without a credential is answered 429 and closed', async () => {
    const g = await gate();
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const answers = [];
    for (let i = 0; i < 17; i++) answers.push(await getOver(keepAlive, g.gate, `/api/v1/nope-${i}`));
    assert.deepEqual(answers.slice(0, 16).map((a) => a.status), Array<number>(16).fill(404));
    assert.deepEqual(answers[16], { status: 429, close: true });
    keepAlive.destroy();
    // The legitimate case: an authenticated agent's refusals on one connection are not cut off.
    const agent = await newAgent(g.admin);
    const own = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 20; i++) {
      const proof = await DPoP.generateProof(agent.keys, `${BASE}/api/v1/actions/no.such`, 'GET', undefined, agent.token);
      const reply = await getOver(own, g.gate, '/api/v1/actions/no.such', { authorization: `DPoP ${agent.token}`, dpop: proof });
      assert.equal(reply.status, 404);
    }
    own.destroy();
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('connection caps', () => {
  it('connection-flood: connections past 1,024 on a socket are answered 429 and closed; the gate keeps serving', async () => {
    const g = await gate();
    const held = await idle(g.gate, 1024);
    // Answered on arrival, before they send anything.
    const extra = await Promise.all(Array.from({ length: 4 }, async () => answerOf(await connectIdle(g.gate), 5000)));
    for (const e of extra) {
      assert.equal(e.status, 429, e.text.slice(0, 300) || '(no answer)');
      assert.equal(e.closed, true);
    }
    assert.equal((await call({ socketPath: g.admin }, 'GET', '/api/v1/health')).status, 200, 'the admin socket has a cap of its own');
    for (const socket of held) socket.destroy();
    let health = 0;
    for (let i = 0; i < 50 && health !== 200; i++) {
      health = (await raw(g.gate, ['GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'], 2000)).status;
      if (health !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(health, 200, 'served again once the connections are gone');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('connection-hoarding: one agent\'s requests over more than 128 connections at once are refused RATE_LIMITED', async () => {
    const g = await gate();
    const [hoarder, other] = [await newAgent(g.admin), await newAgent(g.admin)];
    const sockets: Socket[] = [];
    const first = await Promise.all(Array.from({ length: 128 }, () => whoamiOn(g.gate, hoarder, sockets)));
    assert.deepEqual(first, Array<number>(128).fill(200));
    assert.equal(await whoamiOn(g.gate, hoarder, sockets), 429, 'a 129th connection');
    assert.equal(await whoamiOn(g.gate, other, sockets), 200, 'another agent is not held to the first one\'s connections');
    assert.ok(ledgerEvents(g.home, 'request.refused').some((e) => e.principal === hoarder.peerId && e.payload['code'] === 'RATE_LIMITED'));
    for (const socket of sockets.splice(0, 10)) socket.destroy();
    let again = 0;
    for (let i = 0; i < 50 && again !== 200; i++) {
      again = await whoamiOn(g.gate, hoarder, sockets);
      if (again !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(again, 200, 'a new connection once some are closed');
    for (const socket of sockets) socket.destroy();
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('event stream replay', () => {
  it('stream-replay-bound: an agent may resume at most 10,000 events back; an operator may replay all', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    // 10,496 events of someone else (the sandbox's proxy decisions, 256 per request through the admin socket).
    for (let i = 0; i < 41; i++) {
      const events = Array.from({ length: 256 }, (_, n) => ({ type: 'sandbox.proxy', decision: 'allow', payload: { host: 'example.test', n } }));
      assert.equal((await asOperator(g, 'POST', '/api/v1/admin/sandbox-events', { events })).status, 201);
    }
    const open = async (lastEventId: string, as: 'agent' | 'operator') => {
      const headers: Record<string, string> = { 'last-event-id': lastEventId };
      if (as === 'agent') {
        headers['authorization'] = `DPoP ${agent.token}`;
        headers['dpop'] = await DPoP.generateProof(agent.keys, `${BASE}/api/v1/events`, 'GET', undefined, agent.token);
      }
      const head = Object.entries({ host: 'localhost', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      return raw(as === 'agent' ? g.gate : g.admin, [`GET /api/v1/events HTTP/1.1\r\n${head}\r\n`], 1500);
    };
    const refused = await open('0', 'agent');
    assert.equal(refused.status, 400, refused.text.slice(0, 400));
    assert.match(refused.text, /at most 10000 events back/);
    const recent = await open(String((ledgerEvents(g.home, '').at(-1)?.seq ?? 0) - 100), 'agent');
    assert.equal(recent.status, 200, recent.text.slice(0, 400));
    const all = await open('0', 'operator');
    assert.equal(all.status, 200, all.text.slice(0, 400));
    assert.match(all.text, /event: /, 'the operator\'s replay sends events from the start');
    assert.equal((await call({ socketPath: g.gate }, 'GET', '/api/v1/health')).status, 200);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});
