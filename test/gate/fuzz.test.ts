/**
 * A fuzz pass (fast-check) over every route of both sockets of a real gate process: random methods, paths with
 * random %-encodings (well-formed and not), headers, bodies (JSON, invalid UTF-8, deep, oversized, not JSON) and
 * DPoP headers (garbage, proofs by a key that is not enrolled, the enrolled key's proofs for another request; never
 * one that would let an action run). Each request goes on a connection of its own, and must be answered (no hang)
 * with no 5xx (everything sent is the client's fault) and at most one refusal event recorded; afterwards the gate
 * answers health on both sockets and its ledger verifies. FUZZ_RUNS sets the number of requests (default 300),
 * FUZZ_TIME_MS the time after which no more are made (default 50 s).
 */
import * as DPoP from 'dpop';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { lattice } from '../helpers.ts';
import { BASE, call, gate, ledgerEvents, newAgent, type Agent } from './harness.ts';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
/** The runs stop here even if fewer were made (a slow machine), so the test stays within CI's budget. */
const TIME_LIMIT_MS = Number(process.env['FUZZ_TIME_MS'] ?? 50_000);
/** Longer than the gate's request timeout in this test (2 s), so an incomplete request is answered 408, not a hang. */
const ANSWER_MS = 4000;

/** Every route the gate serves, pinned here as literals (operator-only routes are on the admin socket). */
const ROUTES: readonly (readonly [string, string])[] = [
  ['GET', '/api/v1/health'],
  ['POST', '/api/v1/agent-enroll'],
  ['GET', '/api/v1/whoami'],
  ['POST', '/api/v1/peers/:id/renew'],
  ['DELETE', '/api/v1/peers/:id'],
  ['GET', '/api/v1/peers'],
  ['GET', '/api/v1/peers/rules'],
  ['GET', '/api/v1/peers/:id'],
  ['POST', '/api/v1/tokens'],
  ['GET', '/api/v1/tokens'],
  ['POST', '/api/v1/revoke'],
  ['POST', '/api/v1/secrets/:name'],
  ['GET', '/api/v1/secrets'],
  ['DELETE', '/api/v1/secrets/:name'],
  ['POST', '/api/v1/delegations'],
  ['GET', '/api/v1/delegations'],
  ['DELETE', '/api/v1/delegations/:id'],
  ['GET', '/api/v1/actions'],
  ['GET', '/api/v1/actions/:id'],
  ['POST', '/api/v1/actions'],
  ['POST', '/api/v1/actions/:id/execute'],
  ['POST', '/api/v1/can-i'],
  ['GET', '/api/v1/approvals'],
  ['GET', '/api/v1/approvals/:id'],
  ['POST', '/api/v1/approvals/:id/approve'],
  ['POST', '/api/v1/approvals/:id/deny'],
  ['GET', '/api/v1/budgets'],
  ['POST', '/api/v1/budgets'],
  ['DELETE', '/api/v1/budgets/:scope/:subject'],
  ['GET', '/api/v1/policies'],
  ['POST', '/api/v1/policies'],
  ['POST', '/api/v1/reports'],
  ['GET', '/api/v1/audit'],
  ['GET', '/api/v1/audit/verify'],
  ['GET', '/api/v1/posture'],
  ['GET', '/api/v1/events'],
  ['GET', '/api/v1/admin/status'],
  ['POST', '/api/v1/admin/sandbox-events'],
  ['POST', '/api/v1/admin/sandboxes'],
  ['POST', '/api/v1/admin/sandboxes/close'],
  ['POST', '/api/v1/admin/webhooks/:name/retry'],
  // POST /api/v1/admin/shutdown is left out: the admin socket may stop the gate, and this test needs it running.
];

interface Case {
  readonly socket: 'gate' | 'admin';
  readonly head: string;
  readonly body: Buffer;
  readonly framing: 'length' | 'chunked' | 'short';
}

/** A %-escape, well-formed or not. */
const escape = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`),
  fc.constantFrom('%', '%Z', '%ZZ', '%G1', '%C0%80', '%ED%A0%80', '%E0%A4%A', '%F0%9F%98', '%25', '%2F', '%00'),
);
const segment = fc.oneof(
  fc.constantFrom('echo', 'peer_abc', 'apr_x', 'agent', 'ws-test', 'github.create_issue', 'x'.repeat(300)),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s)),
  fc.array(fc.oneof(escape, fc.constantFrom('a', '.', '-', '_', '~', '..')), { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')),
);
const query = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.constantFrom('events', 'agent', 'state', 'scope', 'role', 'activeOnly', 'format', 'limit', 'cursor', 'x'), fc.oneof(segment, fc.constantFrom('all', 'true', 'own', 'org', 'action.executed,nope'))), { maxLength: 3 })
    .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`)),
);
const path = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.array(segment, { minLength: 3, maxLength: 3 }), query).map(([[, template], params, q]) => `${template.replace(/:[a-z]+/g, () => params.pop() ?? 'x')}${q}`) },
  { weight: 1, arbitrary: fc.array(segment, { minLength: 1, maxLength: 6 }).map((parts) => `/${parts.join('/')}`) },
  { weight: 1, arbitrary: fc.constantFrom('*', '//', '/api/v1/../../etc', 'http://127.0.0.1/api/v1/health', '/api/v1/health#x', '/%2e%2e/api') },
);
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('PUT', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'BREW', 'get', 'G\u00e9T') },
);
const json = fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v)));
const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 3, arbitrary: json },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      { agentName: 'a' },
      { params: { message: 'x' }, eventId: 'e1' },
      { scopes: ['enroll'] },
      { ttl: '1h' },
      { events: [{ type: 'sandbox.proxy', payload: {} }] },
      { files: [{ name: 'a.cedar', text: 'permit(principal, action, resource);' }] },
      { action: 'echo', params: {} },
      { auditEventId: 1, status: 'success', message: 'x' },
      { name: 'c', capabilities: ['*'], ttl: '1m', publicJwk: {} },
    ).map((v) => Buffer.from(JSON.stringify(v))),
  },
  { weight: 1, arbitrary: fc.tuple(json, fc.integer({ min: 0, max: 255 })).map(([b, byte]) => Buffer.concat([b.subarray(0, 1), Buffer.from([0xff, byte]), b.subarray(1)])) },
  { weight: 1, arbitrary: fc.integer({ min: 30, max: 100_000 }).map((n) => Buffer.from(`{"params":{"x":${'['.repeat(n)}${']'.repeat(n)}}}`)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(1024 * 1024 + 10, 0x20)) },
);

async function cases(agent: Agent): Promise<fc.Arbitrary<Case>> {
  const stranger = await DPoP.generateKeyPair('ES256');
  // A pool of proofs made up front (signing inside the property would be slow): none is valid for the request it is
  // sent with, so nothing the fuzzer sends can run an action.
  const proofs = await Promise.all([
    DPoP.generateProof(stranger, `${BASE}/api/v1/actions/echo/execute`, 'POST', undefined, agent.token),
    DPoP.generateProof(stranger, `${BASE}/api/v1/whoami`, 'GET', undefined, agent.token),
    DPoP.generateProof(agent.keys, 'http://elsewhere.test/api/v1/whoami', 'GET', undefined, agent.token),
    DPoP.generateProof(agent.keys, `${BASE}/api/v1/nope`, 'DELETE', undefined, agent.token),
    DPoP.generateProof(agent.keys, `${BASE}/api/v1/whoami`, 'GET', undefined, 'another-token'),
  ]);
  const b64 = fc.base64String({ maxLength: 60 }).map((s) => s.replace(/[+/=]/g, 'A'));
  const dpop = fc.oneof(
    fc.constantFrom(...proofs),
    fc.tuple(b64, b64, b64).map((parts) => parts.join('.')),
    fc.constantFrom('', 'x', 'a.b.c', '..', 'e30.e30.', 'x'.repeat(9000)),
  );
  const authorization = fc.oneof(
    fc.constant(`DPoP ${agent.token}`),
    b64.map((s) => `DPoP ${s}`),
    b64.map((s) => `Bearer ${s}`),
    fc.constantFrom('Bearer tok_x.y', 'DPoP lease_x.y', 'Basic YTpi', 'DPoP', `DPoP ${agent.token} x`),
  );
  const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 2 });
  const headerValue = fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, 'x'));
  return fc
    .record({
      socket: fc.constantFrom<'gate' | 'admin'>('gate', 'gate', 'admin'),
      method,
      path,
      contentType: optional(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/json;;', 'x')),
      authorization: optional(authorization),
      twoAuthorizations: fc.boolean(),
      dpop: optional(dpop),
      lastEventId: optional(fc.constantFrom('0', '1', '999999999999999', '-1', 'x', '1e3')),
      extra: fc.array(
        fc.oneof(
          fc.tuple(fc.constantFrom('x-a', 'upgrade', 'expect', 'accept', 'content-encoding', 'x-forwarded-for'), headerValue),
          fc.constantFrom<[string, string]>(['expect', '100-continue'], ['connection', 'upgrade'], ['upgrade', 'websocket'], ['transfer-encoding', 'gzip']),
        ),
        { maxLength: 3 },
      ),
      keepAlive: fc.boolean(),
      framing: fc.constantFrom<Case['framing']>('length', 'length', 'length', 'length', 'chunked', 'short'),
      body,
    })
    .map((r) => {
      const headers: [string, string][] = [['host', 'localhost']];
      if (r.contentType !== null) headers.push(['content-type', r.contentType]);
      if (r.authorization !== null) {
        headers.push(['authorization', r.authorization]);
        if (r.twoAuthorizations) headers.push(['authorization', `DPoP ${agent.token}`]);
      }
      if (r.dpop !== null) headers.push(['dpop', r.dpop]);
      if (r.lastEventId !== null) headers.push(['last-event-id', r.lastEventId]);
      headers.push(...r.extra);
      if (!r.keepAlive) headers.push(['connection', 'close']);
      // 'short' declares more than it sends: the gate must answer 408 (or refuse first), not wait for ever.
      if (r.framing === 'chunked') headers.push(['transfer-encoding', 'chunked']);
      else if (r.body.length > 0 || r.framing === 'short') headers.push(['content-length', String(r.body.length + (r.framing === 'short' ? 10 : 0))]);
      const head = `${r.method} ${r.path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      const sent = r.framing === 'chunked' ? Buffer.concat([...(r.body.length > 0 ? [Buffer.from(`${r.body.length.toString(16)}\r\n`), r.body, Buffer.from('\r\n')] : []), Buffer.from('0\r\n\r\n')]) : r.body;
      return { socket: r.socket, head, body: sent, framing: r.framing };
    });
}

/** Sends a case on a fresh connection; the status of its first answer (0: none), once the gate closed or answered. */
function exchange(socketPath: string, c: Case): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    let text = '';
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      // The first final answer: Node answers `Expect: 100-continue` with an interim 100 first.
      const final = [...text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1])).find((s) => s >= 200);
      resolve({ status: final ?? 0, text });
    };
    const timer = setTimeout(done, ANSWER_MS);
    socket.on('error', () => undefined); // the gate closing while this still writes: 'close' follows
    socket.on('close', done);
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (/^HTTP\/1\.1 [2-5]\d\d [^]*?\r\n\r\n/m.test(text)) setTimeout(done, 50); // a final response head (a stream stays open): answered
    });
    // One write: a second one after the gate answered and closed would fail (EPIPE), and Node's socket would then be
    // destroyed before it read the answer waiting for it.
    socket.once('connect', () => socket.write(Buffer.concat([Buffer.from(c.head, 'latin1'), c.body])));
  });
}

/**
 * The count once it has stopped moving for 60 ms: a connection refused before it was a request is answered first
 * and recorded right after, so its event may land after its answer (and must not be counted against the next).
 */
async function settled(count: () => number): Promise<number> {
  let last = count();
  for (;;) {
    await new Promise((r) => setTimeout(r, 60));
    const now = count();
    if (now === last) return now;
    last = now;
  }
}

describe('fuzzing the gate', () => {
  it('answers every random request to every route of both sockets without a 5xx, a hang or more than one refusal event', async () => {
    const g = await gate('[gate]\nrequest_timeout = "2s"\n');
    const agent = await newAgent(g.admin);
    // Events for single refusals (aggregates are written per window, not per connection).
    const refusals = () => ledgerEvents(g.home, 'request.refused').filter((e) => e.type === 'request.refused').length;
    const statuses = new Map<number, number>();
    let requests = 0;
    let recorded = refusals();
    await fc.assert(
      fc.asyncProperty(await cases(agent), async (c) => {
        const before = recorded;
        const { status, text } = await exchange(c.socket === 'gate' ? g.gate : g.admin, c);
        requests++;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert.ok(status >= 200, `no answer to ${JSON.stringify(c.head.slice(0, 300))}`);
        assert.ok(status < 500, `${status} for a client's request ${JSON.stringify(c.head.slice(0, 300))}: ${text.slice(0, 400)}`);
        recorded = await settled(refusals);
        assert.ok(recorded - before <= 1, `${recorded - before} refusal events for one connection: ${JSON.stringify(c.head.slice(0, 300))}`);
      }),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false },
    );
    assert.equal((await call({ socketPath: g.gate }, 'GET', '/api/v1/health')).status, 200);
    assert.equal((await call({ socketPath: g.admin }, 'GET', '/api/v1/health')).status, 200);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    const events = ledgerEvents(g.home, 'request.refused');
    const counted = events.reduce((n, e) => n + (typeof e.payload['count'] === 'number' ? e.payload['count'] : 1), 0);
    process.stderr.write(
      `fuzz: ${requests} requests, answered ${JSON.stringify(Object.fromEntries(statuses))}; ${events.length} refusal events for ${counted} refusals (${(events.length / requests).toFixed(3)} events per request)\n`,
    );
    const verify = lattice(['verify', '--home', g.home]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });
});
