/**
 * The agent-facing read and report API against a real gate over its unix sockets: outcome reports (only on one's
 * own actions), the audit trail (an agent sees only its own events), chain verification, the posture score,
 * policies in scope, the realtime event stream (filters, isolation between agents, resume with Last-Event-ID),
 * and what raises enforcement.triggered and anomaly.detected (a budget stop; a burst of denials, then revocation).
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as DPoP from 'dpop';
import { spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, lattice, latticeJson } from '../helpers.ts';
import { BASE, asAgent, asOperator, codeOf, exited, gate, newAgent, type Agent, type TestGate } from './harness.ts';

let g: TestGate;
before(async () => {
  g = await gate(`[anomaly]\ndenials = 3\nwindow = "60s"\non_burst = "revoke"\n\n[[budgets]]\nworkspace = "ws-budget"\ncalls = 1\nwindow = "1h"\n`);
  const policy = `@id("echo-unless-bad")
permit (principal, action == Action::"echo", resource) when { !(context.params has message && context.params.message == "bad") };
@id("writes-held")
@approval("required")
permit (principal in Preset::"sandboxed", action == Action::"fs.write", resource);
@id("coordinators-read")
permit (principal in Preset::"coordinator", action == Action::"fs.read", resource);`;
  const reply = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'api.cedar', text: policy }] });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

const execute = (agent: Agent, action: string, params: unknown) => asAgent(g.gate, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params }));
const report = (agent: Agent, body: unknown) => asAgent(g.gate, agent, 'POST', '/api/v1/reports', JSON.stringify(body));

interface StreamEvent {
  id: string;
  event: string;
  data: { type: string; seq: number; ledgerType: string; principal: string | null; payload: Record<string, unknown> };
}

/** An SSE client over the unix socket: as an agent (DPoP) or, with no agent, on the admin socket. */
async function stream(agent: Agent | null, query = '', lastEventId?: string) {
  const path = `/api/v1/events${query}`;
  const headers: Record<string, string> = lastEventId === undefined ? {} : { 'last-event-id': lastEventId };
  if (agent !== null) {
    headers['authorization'] = `DPoP ${agent.token}`;
    headers['dpop'] = await DPoP.generateProof(agent.keys, `${BASE}/api/v1/events`, 'GET', undefined, agent.token);
  }
  const events: StreamEvent[] = [];
  let buffer = '';
  let ended = false;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request({ socketPath: agent === null ? g.admin : g.gate, path, method: 'GET', headers, agent: false }, resolve);
    req.on('error', reject);
    req.end();
  });
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) => block.split('\n').find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      const data = field('data');
      if (data !== undefined) events.push({ id: field('id') ?? '', event: field('event') ?? '', data: JSON.parse(data) as StreamEvent['data'] });
    }
  });
  res.on('end', () => (ended = true));
  return {
    status: res.statusCode,
    events,
    get ended() {
      return ended;
    },
    async until(check: (events: StreamEvent[]) => boolean, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!check(events)) {
        if (Date.now() > deadline) throw new Error(`timed out; got ${events.map((e) => e.event).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => res.destroy(),
  };
}

describe('outcome reports', () => {
  it('an agent reports on its own executed action; the report is an event linked to it', async () => {
    const agent = await newAgent(g.admin);
    const ran = await execute(agent, 'echo', { message: 'hi' });
    assert.equal(ran.body['status'], 'executed', JSON.stringify(ran.body));
    const auditEventId = ran.body['auditEventId'] as number;
    const reply = await report(agent, { auditEventId, status: 'partial', message: 'half done' });
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    const seq = reply.body['reportEventId'] as number;
    const audit = await asAgent(g.gate, agent, 'GET', '/api/v1/audit?type=action.reported');
    const recorded = (audit.body['events'] as { seq: number; payload: Record<string, unknown> }[]).find((e) => e.seq === seq);
    assert.deepEqual(recorded?.payload, { auditEventId, status: 'partial', message: 'half done' });
  });

  it("refuses reports on another agent's action, on events that are not outcomes, and malformed reports", async () => {
    const owner = await newAgent(g.admin);
    const other = await newAgent(g.admin);
    const ran = await execute(owner, 'echo', { message: 'mine' });
    const auditEventId = ran.body['auditEventId'] as number;
    const stolen = await report(other, { auditEventId, status: 'success', message: 'not mine' });
    assert.deepEqual([stolen.status, codeOf(stolen)], [404, 'NOT_FOUND']);
    const genesis = await report(owner, { auditEventId: 1, status: 'success', message: 'x' });
    assert.deepEqual([genesis.status, codeOf(genesis)], [404, 'NOT_FOUND'], 'the genesis event is not the agent\'s');
    assert.equal(codeOf(await report(owner, { auditEventId, status: 'great', message: 'x' })), 'VALIDATION_FAILED');
    assert.equal(codeOf(await report(owner, { auditEventId, status: 'success', message: 'x'.repeat(5000) })), 'VALIDATION_FAILED');
    const unsigned = await asOperator(g, 'POST', '/api/v1/reports', { auditEventId, status: 'success', message: 'x' });
    assert.equal(unsigned.status, 404, 'reports are not an operator route');
  });
});

describe('audit, verify, posture and policies over the API', () => {
  it("an agent reads only its own events; an operator reads everyone's", async () => {
    const a = await newAgent(g.admin);
    const b = await newAgent(g.admin);
    await execute(a, 'echo', { message: 'from a' });
    await execute(b, 'echo', { message: 'from b' });
    const own = await asAgent(g.gate, a, 'GET', '/api/v1/audit?actionType=echo&limit=50');
    const principals = new Set((own.body['events'] as { principal: string }[]).map((e) => e.principal));
    assert.deepEqual([...principals], [a.peerId]);
    const spying = await asAgent(g.gate, a, 'GET', `/api/v1/audit?agent=${b.peerId}`);
    assert.deepEqual([spying.status, codeOf(spying)], [403, 'FORBIDDEN']);
    const all = await asOperator(g, 'GET', `/api/v1/audit?agent=${b.peerId}&actionType=echo`);
    assert.ok((all.body['events'] as { principal: string }[]).every((e) => e.principal === b.peerId));
    assert.ok((all.body['events'] as unknown[]).length >= 1);
    assert.equal(codeOf(await asAgent(g.gate, a, 'GET', '/api/v1/audit?limit=100000')), 'VALIDATION_FAILED');
    assert.equal(codeOf(await asAgent(g.gate, a, 'GET', '/api/v1/audit?cursor=forged')), 'INVALID_ARGUMENT');
  });

  it('pages with a cursor without repeating events', async () => {
    const a = await newAgent(g.admin);
    for (let i = 0; i < 5; i++) await execute(a, 'echo', { message: `n${i}` });
    const first = await asAgent(g.gate, a, 'GET', '/api/v1/audit?limit=3');
    const cursor = String(first.body['nextCursor']);
    const second = await asAgent(g.gate, a, 'GET', `/api/v1/audit?limit=3&cursor=${cursor}`);
    const seqs = [...(first.body['events'] as { seq: number }[]), ...(second.body['events'] as { seq: number }[])].map((e) => e.seq);
    assert.equal(new Set(seqs).size, seqs.length);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x));
  });

  it('verifies the chain and scores posture with named components that sum to the score', async () => {
    const a = await newAgent(g.admin);
    const verified = await asAgent(g.gate, a, 'GET', '/api/v1/audit/verify');
    assert.equal(verified.body['ok'], true, JSON.stringify(verified.body));
    assert.ok((verified.body['events'] as number) > 5);
    const posture = await asOperator(g, 'GET', '/api/v1/posture');
    const components = posture.body['components'] as { id: string; score: number; max: number; fix: string | null }[];
    assert.deepEqual(components.map((c) => c.id), ['default_deny', 'approvals_high_risk', 'secrets_encrypted', 'key_rotated', 'sandbox_used', 'ledger_verified']);
    assert.equal(components.reduce((s, c) => s + c.max, 0), 100);
    assert.equal(posture.body['score'], components.reduce((s, c) => s + c.score, 0));
    const byId = Object.fromEntries(components.map((c) => [c.id, c]));
    // This test's policy permits echo for any principal: default deny is not on, and the fix says what to do.
    assert.equal(byId['default_deny']!.score, 0);
    assert.match(String(byId['default_deny']!.fix), /scope every permit/);
    assert.equal(byId['key_rotated']!.score, 15, 'a fresh key');
    assert.equal(byId['ledger_verified']!.score, 15);
    assert.equal(byId['sandbox_used']!.score, 0, 'no sandbox session on this home');
  });

  it("answers an agent's verify from a recent report (up to a minute old); an operator's from one a few seconds old", async () => {
    const a = await newAgent(g.admin);
    const first = (await asAgent(g.gate, a, 'GET', '/api/v1/audit/verify')).body;
    await execute(a, 'echo', { message: 'moves the head' });
    await new Promise((r) => setTimeout(r, 5_500));
    const again = (await asAgent(g.gate, a, 'GET', '/api/v1/audit/verify')).body;
    assert.equal(again['verifiedAt'], first['verifiedAt'], 'an agent cannot make the gate verify the whole ledger at will');
    const operator = (await asOperator(g, 'GET', '/api/v1/audit/verify')).body;
    assert.notEqual(operator['verifiedAt'], first['verifiedAt']);
    assert.ok((operator['events'] as number) > (first['events'] as number));
  });

  it('posture gives default deny its points once every permit is scoped, and checks the key that seals secrets', async () => {
    const scoped = await gate();
    try {
      const component = async (id: string) => ((await asOperator(scoped, 'GET', '/api/v1/posture')).body['components'] as { id: string; score: number; detail: string; fix: string | null }[]).find((c) => c.id === id)!;
      assert.equal((await component('default_deny')).score, 20, 'the built-in presets name their principals');
      assert.equal((await component('secrets_encrypted')).score, 15, 'nothing stored yet');
      assert.equal((await asOperator(scoped, 'POST', '/api/v1/secrets/POSTURE_TEST', { value: 'x' })).status, 200);
      assert.match((await component('secrets_encrypted')).detail, /^1 secrets sealed/);
      chmodSync(join(scoped.home, 'master.key'), 0o644);
      const exposed = await component('secrets_encrypted');
      assert.deepEqual([exposed.score, /readable by others/.test(exposed.detail)], [0, true]);
      assert.match(exposed.fix ?? '', /chmod 600/);
    } finally {
      scoped.child.kill('SIGTERM');
      await exited(scoped.child);
    }
  });

  it('lists the policies that apply to the agent (own) or all of them (org)', async () => {
    const coordinator = await newAgent(g.admin, 'ES256', { policyPreset: 'coordinator' });
    const own = await asAgent(g.gate, coordinator, 'GET', '/api/v1/policies?scope=own');
    assert.deepEqual((own.body['policies'] as { id: string }[]).map((p) => p.id).sort(), ['coordinators-read', 'echo-unless-bad']);
    const org = await asAgent(g.gate, coordinator, 'GET', '/api/v1/policies?scope=org');
    assert.deepEqual((org.body['policies'] as { id: string }[]).map((p) => p.id).sort(), ['coordinators-read', 'echo-unless-bad', 'writes-held']);
    assert.equal((org.body['policies'] as { id: string; approval: boolean }[]).find((p) => p.id === 'writes-held')?.approval, true);
    assert.equal(codeOf(await asAgent(g.gate, coordinator, 'GET', '/api/v1/policies?scope=everything')), 'VALIDATION_FAILED');
  });
});

describe('operator commands', () => {
  it('lattice posture prints the score with fixes and exits 1 below 100', () => {
    const json = latticeJson<{ score: number; components: unknown[] }>(['posture', '--home', g.home, '--json']);
    assert.equal(json.status, 1, json.stderr);
    assert.equal(json.json.components.length, 6);
    const text = lattice(['posture', '--home', g.home]);
    assert.match(text.stdout, /^posture \d+\/100/);
    assert.match(text.stdout, /fix default_deny: /);
  });

  it('lattice events follows committed events, filtered, and replays after --since-seq', async () => {
    const agent = await newAgent(g.admin);
    const earlier = await execute(agent, 'echo', { message: 'before' });
    const since = String((earlier.body['auditEventId'] as number) - 1);
    const child = spawn(process.execPath, [CLI, 'events', '--home', g.home, '--events', 'action.executed', '--agent', agent.peerId, '--since-seq', since, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const lines = async (n: number) => {
      const deadline = Date.now() + 15_000;
      while (out.split('\n').length <= n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return out.split('\n').slice(0, n).map((l) => JSON.parse(l) as { seq: number; type: string; principal: string });
    };
    try {
      const [replayed] = await lines(1); // replayed from the ledger: the stream is open
      assert.deepEqual([replayed!.seq, replayed!.type, replayed!.principal], [earlier.body['auditEventId'], 'action.executed', agent.peerId]);
      await execute(agent, 'echo', { message: 'forbidden-not-matching' });
      const denied = await execute(agent, 'echo', { message: 'bad' }); // action.denied: filtered out
      assert.equal(denied.body['status'], 'denied');
      const live = await execute(agent, 'echo', { message: 'followed' });
      const [, , followed] = await lines(3);
      assert.equal(followed!.seq, live.body['auditEventId']);
    } finally {
      child.kill('SIGINT');
      await exited(child);
    }
    assert.equal(child.exitCode, 0, 'Ctrl-C ends it cleanly');
  });
});

describe('realtime events', () => {
  it('streams the events of a run to the agent that made them, filtered by type, and none of another agent', async () => {
    const a = await newAgent(g.admin);
    const b = await newAgent(g.admin);
    const mine = await stream(a, '?events=action.executed,approval.requested');
    assert.equal(mine.status, 200);
    const everything = await stream(null, `?agent=${a.peerId}`);
    await execute(b, 'echo', { message: 'from b' });
    const ran = await execute(a, 'echo', { message: 'from a' });
    const held = await execute(a, 'fs.write', { path: 'x.txt', content: 'x' });
    assert.equal(held.body['status'], 'requested', JSON.stringify(held.body));
    await mine.until((events) => events.some((e) => e.event === 'approval.requested'));
    assert.deepEqual(mine.events.map((e) => e.event), ['action.executed', 'approval.requested']);
    assert.equal(mine.events[0]!.id, String(ran.body['auditEventId']), 'the SSE id is the ledger seq');
    assert.ok(mine.events.every((e) => e.data.principal === a.peerId));

    // The operator denies the hold: the requester hears approval.decided, though the operator is its principal.
    const decided = await stream(a, '?events=approval.decided');
    await asOperator(g, 'POST', `/api/v1/approvals/${String(held.body['approvalId'])}/deny`, { reason: 'not today' });
    await decided.until((events) => events.length === 1);
    assert.equal(decided.events[0]!.data.ledgerType, 'approval.denied');
    await everything.until((events) => events.some((e) => e.event === 'approval.decided'));
    assert.ok(everything.events.every((e) => e.data.principal !== b.peerId), 'agent= narrows the operator stream');
    for (const s of [mine, decided, everything]) s.close();

    const refused = await stream(a, `?agent=${b.peerId}`);
    assert.equal(refused.status, 403);
    assert.equal((await stream(a, '?events=action.nonsense')).status, 400);
  });

  it('holds an agent to 8 open streams: a 9th is refused with 429 until one closes', async () => {
    const a = await newAgent(g.admin);
    const open = [];
    for (let i = 0; i < 8; i++) {
      const s = await stream(a, '?events=action.executed');
      assert.equal(s.status, 200, `stream ${i + 1}`);
      open.push(s);
    }
    const refused = await stream(a, '?events=action.executed');
    assert.equal(refused.status, 429);
    const other = await stream(await newAgent(g.admin), '?events=action.executed');
    assert.equal(other.status, 200, 'the cap is per agent');
    other.close();
    open.pop()!.close();
    let again = await stream(a, '?events=action.executed');
    for (let i = 0; again.status !== 200 && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the gate hears the close asynchronously
      again = await stream(a, '?events=action.executed');
    }
    assert.equal(again.status, 200);
    for (const s of [...open, again]) s.close();
  });

  it('resumes after Last-Event-ID from the ledger, missing nothing in between', async () => {
    const a = await newAgent(g.admin);
    const live = await stream(a, '?events=action.executed');
    await execute(a, 'echo', { message: 'one' });
    await live.until((events) => events.length === 1);
    live.close();
    await execute(a, 'echo', { message: 'two' });
    await execute(a, 'echo', { message: 'three' });
    const resumed = await stream(a, '?events=action.executed', live.events[0]!.id);
    await resumed.until((events) => events.length === 2);
    assert.ok(resumed.events.every((e) => Number(e.id) > Number(live.events[0]!.id)));
    resumed.close();
    assert.equal((await stream(a, '', 'not-a-seq')).status, 400);
  });

  it('a budget stop raises enforcement.triggered naming the denied action', async () => {
    const a = await newAgent(g.admin, 'ES256', { workspaceId: 'ws-budget' });
    const watch = await stream(null, '?events=enforcement.triggered');
    assert.equal((await execute(a, 'echo', { message: 'first' })).body['status'], 'executed');
    const stopped = await execute(a, 'echo', { message: 'second' });
    assert.equal(stopped.body['denialReason'], 'BUDGET_EXHAUSTED');
    await watch.until((events) => events.some((e) => e.data.payload['peerId'] === a.peerId));
    const event = watch.events.find((e) => e.data.payload['peerId'] === a.peerId)!;
    assert.deepEqual([event.data.payload['trigger'], event.data.payload['auditEventId']], ['budget', stopped.body['auditEventId']]);
    watch.close();
  });

  it('a burst of denials raises anomaly.detected and, with on_burst = "revoke", revokes the agent', async () => {
    const a = await newAgent(g.admin);
    const quiet = await newAgent(g.admin);
    const watch = await stream(null, '?events=anomaly.detected,enforcement.triggered');
    const own = await stream(a, '?events=action.denied');
    await execute(quiet, 'echo', { message: 'bad' }); // one denial is not a burst
    for (let i = 0; i < 3; i++) assert.equal((await execute(a, 'echo', { message: 'bad' })).body['denialReason'], 'CONDITIONS_DENIED');
    await watch.until((events) => events.some((e) => e.event === 'enforcement.triggered' && e.data.payload['peerId'] === a.peerId));
    const anomaly = watch.events.find((e) => e.event === 'anomaly.detected')!;
    assert.deepEqual([anomaly.data.payload['peerId'], anomaly.data.payload['denials'], anomaly.data.payload['kind']], [a.peerId, 3, 'denial_burst']);
    assert.ok(!watch.events.some((e) => e.data.payload['peerId'] === quiet.peerId));
    const revoked = await execute(a, 'echo', { message: 'fine' });
    assert.equal(revoked.status, 401, 'the agent was revoked');
    await own.until(() => own.ended);
    assert.equal((await execute(quiet, 'echo', { message: 'fine' })).body['status'], 'executed');
    watch.close();
  });
});
