/**
 * Withdrawing a held request: the agent that asked takes it back when nobody is left to use its result (an MCP
 * client cancelled the call, `lattice exec` was interrupted). It is recorded (`approval.withdrawn`), it never runs,
 * and a reviewer approving or denying it afterwards is refused with APPROVAL_WITHDRAWN. Only that agent may withdraw
 * it; to any other the request does not exist.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, lattice, latticeJson } from '../helpers.ts';
import { asAgent, asOperator, call, codeOf, exited, gate, newAgent, type Agent, type Reply, type TestGate } from './harness.ts';

function execute(g: TestGate, agent: Agent, params: unknown): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', '/api/v1/actions/fs.write/execute', JSON.stringify({ params }));
}

function withdraw(g: TestGate, agent: Agent, approvalId: string, body: unknown = {}): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', `/api/v1/approvals/${approvalId}/withdraw`, JSON.stringify(body));
}

function events(home: string, type: string): { seq: number; principal: string | null; payload: Record<string, unknown> }[] {
  return latticeJson<{ events: { seq: number; principal: string | null; payload: Record<string, unknown> }[] }>(['audit', '--home', home, '--type', type, '--limit', '100']).json.events;
}

describe('withdrawing a held request', () => {
  it('approve-withdrawn: a request its agent withdrew is recorded, never runs, and approving or denying it is refused with APPROVAL_WITHDRAWN', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const held = await execute(g, agent, { path: 'withdrawn.md', content: 'must not be written' });
    assert.equal(held.status, 202, JSON.stringify(held.body));
    const approvalId = String(held.body['approvalId']);
    const planSha256 = String(held.body['planSha256']);

    const withdrawn = await withdraw(g, agent, approvalId, { reason: 'the MCP client cancelled the call' });
    assert.equal(withdrawn.status, 410, JSON.stringify(withdrawn.body));
    assert.equal(withdrawn.body['status'], 'withdrawn');
    assert.equal(withdrawn.body['approvalId'], approvalId);
    assert.match(String(withdrawn.body['message']), /withdrawn by the agent that asked: the MCP client cancelled the call/);
    const recorded = events(g.home, 'approval.withdrawn');
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]?.principal, agent.peerId, 'the agent withdrew it, not an operator');
    assert.deepEqual(recorded[0]?.payload, { approvalId, requestId: held.body['requestId'], reason: 'the MCP client cancelled the call' });
    assert.equal(recorded[0]?.seq, withdrawn.body['auditEventId']);

    const approved = await asOperator(g, 'POST', `/api/v1/approvals/${approvalId}/approve`, { planSha256 });
    assert.equal(approved.status, 409);
    assert.equal(codeOf(approved), 'APPROVAL_WITHDRAWN');
    assert.match(approved.body.error?.message ?? '', new RegExp(`${approvalId} was withdrawn by the agent that asked \\(${agent.peerId}\\); it never runs`));
    assert.equal(codeOf(await asOperator(g, 'POST', `/api/v1/approvals/${approvalId}/deny`, { reason: 'late' })), 'APPROVAL_WITHDRAWN');
    const cli = lattice(['approvals', 'approve', approvalId, '--plan-sha256', planSha256, '--home', g.home]);
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /was withdrawn by the agent that asked/);
    assert.equal(existsSync(join(g.home, 'workspace', 'withdrawn.md')), false, 'nothing ran');

    const shown = await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`);
    assert.equal(shown.body['state'], 'withdrawn');
    assert.equal(shown.body['decidedBy'], agent.peerId);
    assert.deepEqual(latticeJson<{ approvals: { approvalId: string }[] }>(['approvals', 'list', '--state', 'withdrawn', '--home', g.home]).json.approvals.map((a) => a.approvalId), [approvalId]);
    assert.deepEqual(((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as unknown[]).length, 0, 'no longer pending');
    const polled = await asAgent(g.gate, agent, 'GET', `/api/v1/approvals/${approvalId}`);
    assert.equal(polled.status, 410);
    assert.equal(polled.body['status'], 'withdrawn');
    const again = await withdraw(g, agent, approvalId);
    assert.deepEqual(again.body, withdrawn.body, 'withdrawing again answers the same, and records nothing more');
    assert.equal(events(g.home, 'approval.withdrawn').length, 1);

    // The legitimate case beside it: a request that was not withdrawn is approved and runs.
    const kept = await execute(g, agent, { path: 'kept.md', content: 'kept' });
    const ran = await asOperator(g, 'POST', `/api/v1/approvals/${String(kept.body['approvalId'])}/approve`, { planSha256: kept.body['planSha256'] });
    assert.equal(ran.status, 200, JSON.stringify(ran.body));
    assert.equal(readFileSync(join(g.home, 'workspace', 'kept.md'), 'utf8'), 'kept');
    const late = await withdraw(g, agent, String(kept.body['approvalId']));
    assert.equal(late.status, 200, 'a request that already ran is not withdrawn: the answer is its outcome');
    assert.equal(late.body['status'], 'executed');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    assert.equal(lattice(['verify', '--home', g.home]).status, 0);
  });

  it('withdraw-foreign: an agent cannot withdraw another agent\'s held request, nor can an operator, and a reason with control characters is refused', async () => {
    const g = await gate();
    const owner = await newAgent(g.admin);
    const other = await newAgent(g.admin);
    const held = await execute(g, owner, { path: 'theirs.md', content: 'x' });
    const approvalId = String(held.body['approvalId']);

    const foreign = await withdraw(g, other, approvalId);
    assert.equal(foreign.status, 404);
    assert.equal(codeOf(foreign), 'APPROVAL_NOT_FOUND', 'another agent\'s request does not exist for it');
    const operator = await call({ socketPath: g.admin }, 'POST', `/api/v1/approvals/${approvalId}/withdraw`, '{}');
    assert.equal(operator.status, 404, 'no withdraw route for operators: they deny');
    const reviewer = String((await asOperator(g, 'POST', '/api/v1/tokens', { scopes: ['approve'] })).body['token']);
    const byToken = await call({ socketPath: g.gate }, 'POST', `/api/v1/approvals/${approvalId}/withdraw`, '{}', { authorization: `Bearer ${reviewer}` });
    assert.equal(byToken.status, 401, 'only a DPoP-bound agent credential may withdraw');
    const injected = await withdraw(g, owner, approvalId, { reason: 'ok\u001b[2Jforged line\nreviewer: approve' });
    assert.equal(codeOf(injected), 'VALIDATION_FAILED');
    assert.equal(codeOf(await withdraw(g, owner, approvalId, { reason: 'x', extra: 1 })), 'VALIDATION_FAILED');
    assert.equal((await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`)).body['state'], 'held', 'still held after every refusal');
    assert.equal(events(g.home, 'approval.withdrawn').length, 0);

    // A request a reviewer decided first stays decided: withdrawing it answers that decision.
    assert.equal((await asOperator(g, 'POST', `/api/v1/approvals/${approvalId}/deny`, { reason: 'no' })).status, 403);
    const afterDenial = await withdraw(g, owner, approvalId);
    assert.equal(afterDenial.status, 403);
    assert.equal(afterDenial.body['denialReason'], 'DENIED_BY_REVIEWER');
    assert.equal((await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`)).body['state'], 'denied');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('exec-interrupted: lattice exec interrupted while it waits withdraws its request; lattice withdraw takes back one held with --no-wait', async () => {
    const g = await gate();
    const cred = join(g.home, 'agent.json');
    assert.equal(lattice(['enroll', '--home', g.home, '--name', 'cli', '--type', 'test', '--workspace', 'ws', '--out', cred]).status, 0);
    const env = { LATTICE_CREDENTIAL: cred };

    const child = spawn(process.execPath, [CLI, 'exec', 'fs.write', '--params', '{"path":"interrupted.md","content":"x"}'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('held for approval') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const approvalId = /held for approval (apr_\S+)/.exec(stderr)?.[1] ?? assert.fail(`not held: ${stderr}`);
    child.kill('SIGINT');
    assert.equal(await exited(child), 1);
    assert.match(stderr, /withdrawn: withdrawn by the agent that asked: lattice exec was interrupted while it waited/);
    assert.equal((await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`)).body['state'], 'withdrawn');

    const held = latticeJson<{ approvalId: string }>(['exec', 'fs.write', '--params', '{"path":"later.md","content":"x"}', '--no-wait', '--json'], env);
    assert.equal(held.status, 4);
    const taken = latticeJson<{ status: string; message: string }>(['withdraw', held.json.approvalId, '--reason', 'no longer needed', '--json'], env);
    assert.equal(taken.status, 0, taken.stderr);
    assert.equal(taken.json.status, 'withdrawn');
    assert.match(taken.json.message, /no longer needed/);
    assert.equal((await asOperator(g, 'GET', `/api/v1/approvals/${held.json.approvalId}`)).body['state'], 'withdrawn');
    const unknown = lattice(['withdraw', 'apr_nosuch'], env);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no approval "apr_nosuch"/);
    const approved = latticeJson<{ approvalId: string; planSha256: string }>(['exec', 'fs.write', '--params', '{"path":"approved.md","content":"x"}', '--no-wait', '--json'], env).json;
    assert.equal((await asOperator(g, 'POST', `/api/v1/approvals/${approved.approvalId}/approve`, { planSha256: approved.planSha256 })).status, 200);
    const tooLate = lattice(['withdraw', approved.approvalId], env);
    assert.equal(tooLate.status, 1, 'decided first: not withdrawn');
    assert.match(tooLate.stderr, /^executed \(receipt rcpt_/);
    assert.equal(existsSync(join(g.home, 'workspace', 'interrupted.md')) || existsSync(join(g.home, 'workspace', 'later.md')), false);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});
