/**
 * The action pipeline end to end, over the real gate socket with real DPoP proofs: allowed, denied with conditions,
 * default deny, held → approved/denied/expired/cancelled, budgets, idempotent eventIds, policy tampering — and
 * can-i agreeing with execute each time.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, lattice, latticeJson, tempDir } from '../helpers.ts';
import { asAgent, asOperator, call, codeOf, exited, gate, newAgent, type Agent, type Reply, type TestGate } from './harness.ts';

function execute(g: TestGate, agent: Agent, action: string, params: unknown, extra: Record<string, unknown> = {}): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params, ...extra }));
}

function canI(g: TestGate, agent: Agent, action: string, params: unknown): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', '/api/v1/can-i', JSON.stringify({ action, params }));
}

/** can-i's decision must be the one execute then makes. */
async function agrees(g: TestGate, agent: Agent, action: string, params: unknown, expected: 'allow' | 'hold' | 'deny', denialReason: string | null = null): Promise<void> {
  const reply = await canI(g, agent, action, params);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assert.equal(reply.body['decision'], expected, JSON.stringify(reply.body));
  assert.equal(reply.body['denialReason'], denialReason);
}

async function applyPolicy(g: TestGate, text: string): Promise<void> {
  const reply = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'test.cedar', text }] });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
}

interface AuditEvent {
  seq: number;
  principal: string | null;
  payload: Record<string, unknown>;
}

function events(home: string, type: string): AuditEvent[] {
  return latticeJson<{ events: AuditEvent[] }>(['audit', '--home', home, '--type', type, '--limit', '1000']).json.events;
}

describe('action pipeline', () => {
  it('runs an allowed echo, answers only after its receipt is durable, and can-i agrees', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    await agrees(g, agent, 'echo', { message: 'hi', count: 2 }, 'allow');
    const reply = await execute(g, agent, 'echo', { message: 'hi', count: 2 });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body['status'], 'executed');
    assert.deepEqual(reply.body['output'], { message: 'hi', count: 2 });
    assert.equal(reply.body['policy'], 'sandboxed-read');
    assert.match(String(reply.body['receiptId']), /^rcpt_/);
    const executed = events(g.home, 'action.executed');
    assert.equal(executed.length, 1);
    assert.equal(executed[0]?.seq, reply.body['auditEventId']);
    assert.equal((executed[0]?.payload['receipt'] as { id: string }).id, reply.body['receiptId']);
    assert.equal(events(g.home, 'action.started').length, 1);
    // can-i recorded nothing
    assert.equal(events(g.home, 'action.denied').length + events(g.home, 'approval.requested').length, 0);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    const verify = lattice(['verify', '--home', g.home]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  });

  it('refuses invalid params with 400 naming the field, and records the refusal', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const reply = await execute(g, agent, 'echo', { message: 7 });
    assert.equal(reply.status, 400);
    assert.equal(codeOf(reply), 'VALIDATION_FAILED');
    assert.match(reply.body.error?.message ?? '', /params\.message must be string/);
    assert.equal(codeOf(await execute(g, agent, 'echo', { message: 'x', extra: 1 })), 'VALIDATION_FAILED');
    assert.equal(codeOf(await execute(g, agent, 'no.such', {})), 'ACTION_NOT_FOUND');
    assert.equal(codeOf(await asAgent(g.gate, agent, 'POST', '/api/v1/actions/echo/execute', JSON.stringify({ params: { message: 'x' }, eventId: 'bad id!' }))), 'VALIDATION_FAILED');
    const deep = `{"params":{"message":"x","count":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    assert.equal(codeOf(await asAgent(g.gate, agent, 'POST', '/api/v1/actions/echo/execute', deep)), 'VALIDATION_FAILED');
    assert.equal(events(g.home, 'request.refused').filter((e) => e.payload['code'] === 'VALIDATION_FAILED').length, 4);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('denies with the failed condition (CONDITIONS_DENIED) and by default (NO_POLICY)', async () => {
    const g = await gate();
    await applyPolicy(
      g,
      `@id("small-echo")
@reason("echo at most 49 times")
permit (principal in Preset::"sandboxed", action == Action::"echo", resource) when { context.params has count && context.params.count < 50 };`,
    );
    const agent = await newAgent(g.admin);
    await agrees(g, agent, 'echo', { message: 'x', count: 73 }, 'deny', 'CONDITIONS_DENIED');
    const denied = await execute(g, agent, 'echo', { message: 'x', count: 73 });
    assert.equal(denied.status, 403);
    assert.equal(denied.body['status'], 'denied');
    assert.equal(denied.body['denialReason'], 'CONDITIONS_DENIED');
    assert.equal(denied.body['policy'], 'small-echo');
    assert.equal(denied.body['reason'], 'echo at most 49 times');
    const conditions = denied.body['conditions'] as Record<string, unknown>[];
    assert.ok(conditions.some((c) => c['field'] === 'params.count' && c['operator'] === 'lt' && c['expected'] === 50 && c['actual'] === 73 && c['result'] === false), JSON.stringify(conditions));
    await agrees(g, agent, 'echo', { message: 'x', count: 3 }, 'allow');
    assert.equal((await execute(g, agent, 'echo', { message: 'x', count: 3 })).status, 200);
    await agrees(g, agent, 'fs.read', { path: 'notes.md' }, 'deny', 'NO_POLICY');
    const none = await execute(g, agent, 'fs.read', { path: 'notes.md' });
    assert.equal(none.status, 403);
    assert.equal(none.body['denialReason'], 'NO_POLICY');
    assert.equal(events(g.home, 'action.denied').length, 2);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('holds a write for approval; a wrong hash and an agent credential are refused; the right hash runs the plan as approved', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const params = { path: 'docs/notes.md', content: 'approved text\n' };
    await agrees(g, agent, 'fs.write', params, 'hold');
    const held = await execute(g, agent, 'fs.write', params);
    assert.equal(held.status, 202, JSON.stringify(held.body));
    assert.equal(held.body['status'], 'requested');
    const approvalId = String(held.body['approvalId']);
    const planSha256 = String(held.body['planSha256']);
    assert.match(planSha256, /^[0-9a-f]{64}$/);
    const target = join(g.home, 'workspace', 'docs', 'notes.md');
    assert.equal(existsSync(target), false, 'nothing runs before approval');

    const shown = await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`);
    assert.equal(shown.body['planSha256'], planSha256);
    assert.deepEqual((shown.body['plan'] as { effects: unknown[] }).effects, [{ kind: 'fs.write', path: 'docs/notes.md', content: 'approved text\n', bytes: 14, sha256: String((shown.body['plan'] as { effects: { sha256: string }[] }).effects[0]?.sha256) }]);
    const list = latticeJson<{ approvals: { approvalId: string }[] }>(['approvals', 'list', '--home', g.home]);
    assert.deepEqual(list.json.approvals.map((a) => a.approvalId), [approvalId]);
    const pending = () => latticeJson<{ counts: { pendingApprovals: number } }>(['status', '--home', g.home]).json.counts.pendingApprovals;
    assert.equal(pending(), 1);

    const wrong = await asOperator(g, 'POST', `/api/v1/approvals/${approvalId}/approve`, { planSha256: 'a'.repeat(64) });
    assert.equal(wrong.status, 409);
    assert.equal(codeOf(wrong), 'PLAN_HASH_MISMATCH');
    const byAgent = await asAgent(g.gate, agent, 'POST', `/api/v1/approvals/${approvalId}/approve`, JSON.stringify({ planSha256 }));
    assert.equal(byAgent.status, 401, 'an agent credential cannot approve, even its own request');
    assert.equal((await asAgent(g.gate, agent, 'GET', `/api/v1/approvals/${approvalId}`)).status, 202, 'still held');
    assert.equal(existsSync(target), false);

    const approved = lattice(['approvals', 'approve', approvalId, '--plan-sha256', planSha256, '--home', g.home, '--json']);
    assert.equal(approved.status, 0, approved.stderr);
    assert.equal(readFileSync(target, 'utf8'), 'approved text\n');
    assert.equal(pending(), 0);
    const polled = await asAgent(g.gate, agent, 'GET', `/api/v1/approvals/${approvalId}`);
    assert.equal(polled.status, 200);
    assert.equal(polled.body['status'], 'executed');
    assert.deepEqual((polled.body['output'] as { path: string }).path, 'docs/notes.md');
    assert.equal(polled.body['approvalId'], approvalId);
    const again = await asOperator(g, 'POST', `/api/v1/approvals/${approvalId}/approve`, { planSha256 });
    assert.equal(codeOf(again), 'APPROVAL_NOT_PENDING', 'an approval runs once');
    const other = await newAgent(g.admin);
    assert.equal(codeOf(await asAgent(g.gate, other, 'GET', `/api/v1/approvals/${approvalId}`)), 'APPROVAL_NOT_FOUND', 'another agent cannot poll it');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    assert.equal(lattice(['verify', '--home', g.home]).status, 0);
  });

  it('lets a token with the approve scope decide over the agent socket, and refuses a token without it', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const held = await execute(g, agent, 'fs.write', { path: 't.md', content: 't' });
    const token = async (scopes: string[]) => String((await asOperator(g, 'POST', '/api/v1/tokens', { scopes })).body['token']);
    const reviewer = await token(['approve']);
    const auditor = await token(['audit:read']);
    const approve = (bearer: string) =>
      call({ socketPath: g.gate }, 'POST', `/api/v1/approvals/${String(held.body['approvalId'])}/approve`, JSON.stringify({ planSha256: held.body['planSha256'] }), { authorization: `Bearer ${bearer}` });
    const refused = await approve(auditor);
    assert.equal(refused.status, 403);
    assert.equal(codeOf(refused), 'FORBIDDEN');
    assert.equal(existsSync(join(g.home, 'workspace', 't.md')), false);
    const approved = await approve(reviewer);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(readFileSync(join(g.home, 'workspace', 't.md'), 'utf8'), 't');
    assert.equal(events(g.home, 'approval.approved')[0]?.payload['approvalId'], held.body['approvalId']);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('tells the agent DENIED_BY_REVIEWER, expires unanswered approvals, and cancels those of a revoked agent', async () => {
    // Long enough for a `lattice approvals deny` process to start on a loaded 2-core machine, short enough to wait out.
    const g = await gate('[approvals]\ntimeout = "4s"\n');
    const agent = await newAgent(g.admin);
    const denyMe = await execute(g, agent, 'fs.write', { path: 'a.md', content: 'a' });
    const deny = lattice(['approvals', 'deny', String(denyMe.body['approvalId']), '--reason', 'not today', '--home', g.home]);
    assert.equal(deny.status, 0, deny.stderr);
    const denied = await asAgent(g.gate, agent, 'GET', `/api/v1/approvals/${String(denyMe.body['approvalId'])}`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body['denialReason'], 'DENIED_BY_REVIEWER');
    assert.equal(denied.body['message'], 'not today');

    const expireMe = await execute(g, agent, 'fs.write', { path: 'b.md', content: 'b' });
    await new Promise((resolve) => setTimeout(resolve, 4300));
    const expired = await asAgent(g.gate, agent, 'GET', `/api/v1/approvals/${String(expireMe.body['approvalId'])}`);
    assert.equal(expired.status, 410);
    assert.equal(expired.body['status'], 'expired');
    const late = await asOperator(g, 'POST', `/api/v1/approvals/${String(expireMe.body['approvalId'])}/approve`, { planSha256: expireMe.body['planSha256'] });
    assert.equal(codeOf(late), 'APPROVAL_NOT_PENDING');
    assert.equal(existsSync(join(g.home, 'workspace', 'b.md')), false);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);

    const g2 = await gate();
    const doomed = await newAgent(g2.admin);
    const pending = await execute(g2, doomed, 'fs.write', { path: 'c.md', content: 'c' });
    assert.equal(lattice(['revoke', doomed.peerId, '--home', g2.home]).status, 0);
    const shown = await asOperator(g2, 'GET', `/api/v1/approvals/${String(pending.body['approvalId'])}`);
    assert.equal(shown.body['state'], 'cancelled');
    assert.equal(events(g2.home, 'approval.cancelled').length, 1);
    assert.equal(lattice(['down', '--home', g2.home]).status, 0);
  });

  it('denies with BUDGET_EXHAUSTED once an operator budget is used up, and can-i agrees', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const set = lattice(['budgets', 'set', '--agent', agent.peerId, '--calls', '2', '--window', '1h', '--home', g.home]);
    assert.equal(set.status, 0, set.stderr);
    assert.equal((await execute(g, agent, 'echo', { message: '1' })).status, 200);
    assert.equal((await execute(g, agent, 'echo', { message: '2' })).status, 200);
    await agrees(g, agent, 'echo', { message: '3' }, 'deny', 'BUDGET_EXHAUSTED');
    const third = await execute(g, agent, 'echo', { message: '3' });
    assert.equal(third.status, 403);
    assert.equal(third.body['denialReason'], 'BUDGET_EXHAUSTED');
    const other = await newAgent(g.admin);
    assert.equal((await execute(g, other, 'echo', { message: 'other agents are not limited' })).status, 200);
    const budgets = latticeJson<{ budgets: { subject: string; calls: number }[] }>(['budgets', 'list', '--home', g.home]);
    assert.deepEqual(budgets.json.budgets.map((b) => [b.subject, b.calls]), [[agent.peerId, 2]]);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'POST', '/api/v1/budgets', JSON.stringify({ scope: 'agent', subject: agent.peerId, calls: 99, window: '1h' }))), 'NOT_FOUND', 'no budget route for agents');
    // Concurrent requests all pass the check before any reserves: the reservation at commit decides, exactly.
    const racer = await newAgent(g.admin);
    assert.equal(lattice(['budgets', 'set', '--agent', racer.peerId, '--calls', '2', '--window', '1h', '--home', g.home]).status, 0);
    const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => execute(g, racer, 'echo', { message: `race ${i}` })));
    assert.deepEqual(raced.map((r) => r.status).sort(), [200, 200, 403, 403, 403, 403, 403, 403]);
    assert.ok(raced.every((r) => r.status === 200 || r.body['denialReason'] === 'BUDGET_EXHAUSTED'));
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    const mine = (type: string) => events(g.home, type).filter((e) => e.principal === racer.peerId).length;
    assert.deepEqual([mine('action.started'), mine('action.executed'), mine('action.denied')], [2, 2, 6]);
    assert.equal(lattice(['verify', '--home', g.home]).status, 0);
  });

  it('answers a repeated eventId with the first answer and runs nothing twice; other params under it are refused', async () => {
    const g = await gate();
    await applyPolicy(g, 'permit (principal in Preset::"sandboxed", action == Action::"fs.write", resource);');
    const agent = await newAgent(g.admin);
    const first = await execute(g, agent, 'fs.write', { path: 'once.md', content: '1' }, { eventId: 'job-1' });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    writeFileSync(join(g.home, 'workspace', 'once.md'), 'changed by someone else');
    const [a, b] = await Promise.all([
      execute(g, agent, 'fs.write', { path: 'once.md', content: '1' }, { eventId: 'job-1' }),
      execute(g, agent, 'fs.write', { path: 'once.md', content: '1' }, { eventId: 'job-1' }),
    ]);
    assert.deepEqual(a.body, first.body);
    assert.deepEqual(b.body, first.body);
    assert.equal(readFileSync(join(g.home, 'workspace', 'once.md'), 'utf8'), 'changed by someone else', 'the write did not run again');
    assert.equal(codeOf(await execute(g, agent, 'fs.write', { path: 'once.md', content: '2' }, { eventId: 'job-1' })), 'EVENT_ID_REUSED');
    const concurrent = await Promise.all([1, 2, 3].map(() => execute(g, agent, 'fs.write', { path: 'race.md', content: 'r' }, { eventId: 'job-2' })));
    assert.equal(new Set(concurrent.map((r) => r.body['receiptId'])).size, 1);
    assert.equal(events(g.home, 'action.executed').length, 2);
    const other = await newAgent(g.admin);
    assert.equal((await execute(g, other, 'fs.write', { path: 'o.md', content: 'o' }, { eventId: 'job-1' })).status, 200, 'eventIds are per agent');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('denies with POLICY_TAMPERED when the policy files change behind the gate, until an operator applies a set', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    assert.equal((await execute(g, agent, 'echo', { message: 'before' })).status, 200);
    const file = join(g.home, 'policies', 'sandboxed.cedar');
    const original = readFileSync(file, 'utf8');
    writeFileSync(file, `${original}\npermit (principal, action, resource);\n`);
    await agrees(g, agent, 'echo', { message: 'during' }, 'deny', 'POLICY_TAMPERED');
    const tampered = await execute(g, agent, 'github.pr.merge', { owner: 'a', repo: 'b', number: 1 });
    assert.equal(tampered.status, 403);
    assert.equal(tampered.body['denialReason'], 'POLICY_TAMPERED');
    assert.equal(events(g.home, 'policy.tampered').length, 1);
    writeFileSync(file, original);
    assert.equal((await execute(g, agent, 'echo', { message: 'restored' })).status, 200, 'restoring the files restores the set');
    writeFileSync(file, `${original}\n// an edit\n`);
    assert.equal((await execute(g, agent, 'echo', { message: 'x' })).body['denialReason'], 'POLICY_TAMPERED');
    const apply = lattice(['policy', 'apply', ...['coordinator', 'isolated', 'sandboxed'].map((n) => join(g.home, 'policies', `${n}.cedar`)), '--home', g.home]);
    assert.equal(apply.status, 0, apply.stderr);
    assert.equal((await execute(g, agent, 'echo', { message: 'applied' })).status, 200);
    const bad = lattice(['policy', 'apply', join(g.home, 'policies', 'sandboxed.cedar'), '--home', g.home]);
    assert.equal(bad.status, 0, 'a subset is a valid set');
    writeFileSync(join(g.home, 'bad.cedar'), 'permit (principal, action == Action::"no.such.action", resource);');
    const refused = lattice(['policy', 'apply', join(g.home, 'bad.cedar'), '--home', g.home]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /no\.such\.action/);
    assert.equal((await execute(g, agent, 'echo', { message: 'still applied' })).status, 200, 'a refused set changes nothing');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('lattice exec exits 0 executed, 3 denied, 4 held with --no-wait, 5 expired, and waits for a decision by default', async () => {
    const g = await gate('[approvals]\ntimeout = "2s"\n');
    const cred = join(g.home, 'agent.json');
    assert.equal(lattice(['enroll', '--home', g.home, '--name', 'cli', '--type', 'test', '--workspace', 'ws', '--out', cred]).status, 0);
    const env = { LATTICE_CREDENTIAL: cred };
    const ok = latticeJson<{ status: string; output: unknown }>(['exec', 'echo', '--params', '{"message":"hi"}'], env);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(ok.json.output, { message: 'hi' });
    assert.equal(lattice(['exec', 'github.pr.merge', '--params', '{"owner":"a","repo":"b","number":1}'], env).status, 3);
    const held = latticeJson<{ status: string; approvalId: string; planSha256: string }>(['exec', 'fs.write', '--params', '{"path":"w.md","content":"w"}', '--no-wait'], env);
    assert.equal(held.status, 4);
    assert.equal(held.json.status, 'requested');
    assert.equal(lattice(['exec', 'fs.write', '--params', '{"path":"x.md","content":"x"}'], env).status, 5, 'waited, then the approval expired');
    assert.equal(lattice(['exec', 'echo', '--params', '[1]'], env).status, 2, 'params must be an object');
    assert.equal(lattice(['can-i', 'fs.write', '--params', '{"path":"w.md","content":"w"}'], env).status, 4);
    assert.equal(lattice(['can-i', 'echo', '--params', '{"message":"x"}'], env).status, 0);

    const child = spawn(process.execPath, [CLI, 'exec', 'fs.write', '--params', '{"path":"y.md","content":"y"}', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    let approvals: { approvalId: string; planSha256: string }[] = [];
    for (let i = 0; i < 50 && approvals.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      approvals = ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as typeof approvals).filter((a) => a.approvalId !== held.json.approvalId);
    }
    assert.equal(approvals.length, 1);
    assert.equal(lattice(['approvals', 'approve', approvals[0]!.approvalId, '--plan-sha256', approvals[0]!.planSha256, '--home', g.home]).status, 0);
    assert.equal(await exited(child), 0);
    assert.equal((JSON.parse(stdout) as { status: string }).status, 'executed');
    assert.equal(readFileSync(join(g.home, 'workspace', 'y.md'), 'utf8'), 'y');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('lattice policy test runs table-driven cases and exits 1 when one fails', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'presets.toml'),
      `[[case]]
name = "sandboxed agents echo"
action = "echo"
params = { message = "hi" }
expect = "allow"

[[case]]
name = "sandboxed agents never merge"
action = "github.pr.merge"
params = { owner = "acme", repo = "web", number = 7 }
expect = "deny"
denialReason = "CONDITIONS_DENIED"
policy = "sandboxed-never-merges"

[[case]]
name = "writes wait for a human"
action = "fs.write"
params = { path = "a.md", content = "a" }
expect = "hold"

[[case]]
name = "isolated agents read nothing"
action = "fs.read"
preset = "isolated"
params = { path = "a.md" }
expect = "deny"
denialReason = "NO_POLICY"
`,
    );
    const home = join(tempDir(), 'home');
    const passed = latticeJson<{ passed: number; failed: number }>(['policy', 'test', dir, '--home', home]);
    assert.equal(passed.status, 0, passed.stderr);
    assert.deepEqual([passed.json.passed, passed.json.failed], [4, 0]);
    writeFileSync(join(dir, 'strict.cedar'), 'permit (principal in Preset::"sandboxed", action == Action::"echo", resource);');
    const failed = lattice(['policy', 'test', dir, '--home', home]);
    assert.equal(failed.status, 1, 'with only strict.cedar, the merge case is NO_POLICY and the write is denied');
    assert.match(failed.stdout, /FAIL sandboxed agents never merge: expected deny CONDITIONS_DENIED, got deny NO_POLICY/);
    assert.match(failed.stdout, /2 passed, 2 failed/);
  });
});

