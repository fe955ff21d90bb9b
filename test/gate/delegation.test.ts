/**
 * Delegation against a real gate over its unix socket: scoped children that act within their capabilities and
 * are denied outside them, Cedar telling delegated agents apart, narrower chains, listing, revocation of a
 * subtree by an ancestor (and by nobody else), and cascades when a parent is revoked or expires.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as DPoP from 'dpop';
import { exportJWK } from 'jose';
import { lattice, latticeJson } from '../helpers.ts';
import { asAgent, asOperator, codeOf, exited, gate, newAgent, type Agent, type Reply, type TestGate } from './harness.ts';

let g: TestGate;
before(async () => {
  g = await gate();
  const policy = `@id("echo-small-for-delegates")
permit (principal in Preset::"sandboxed", action == Action::"echo", resource)
unless { principal.delegated && context.params has count && context.params.count > 5 };`;
  const reply = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'delegation.cedar', text: policy }] });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

async function delegate(parent: Agent, capabilities: string[], ttl = '10m', name = 'helper'): Promise<{ reply: Reply; child?: Agent }> {
  const keys = await DPoP.generateKeyPair('Ed25519');
  const reply = await asAgent(g.gate, parent, 'POST', '/api/v1/delegations', JSON.stringify({ name, capabilities, ttl, publicJwk: await exportJWK(keys.publicKey) }));
  if (reply.status !== 201) return { reply };
  return { reply, child: { peerId: String(reply.body['peerId']), token: String(reply.body['enrollmentToken']), keys, overlayIP: '' } };
}

async function mustDelegate(parent: Agent, capabilities: string[], ttl = '10m'): Promise<Agent> {
  const { reply, child } = await delegate(parent, capabilities, ttl);
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return child!;
}

const execute = (agent: Agent, action: string, params: unknown) => asAgent(g.gate, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params }));
const whoami = (agent: Agent) => asAgent(g.gate, agent, 'GET', '/api/v1/whoami');

function events(type: string): { principal: string | null; payload: Record<string, unknown> }[] {
  return latticeJson<{ events: { principal: string | null; payload: Record<string, unknown> }[] }>(['audit', '--home', g.home, '--type', type, '--limit', '1000']).json.events;
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('delegation', () => {
  it('a child acts within its capabilities, is denied outside them, and Cedar sees it as delegated', async () => {
    const parent = await newAgent(g.admin, 'Ed25519');
    const child = await mustDelegate(parent, ['echo']);
    assert.equal((await whoami(child)).status, 200);

    const allowed = await execute(child, 'echo', { message: 'hi', count: 2 });
    assert.equal(allowed.body['status'], 'executed', JSON.stringify(allowed.body));
    const outside = await execute(child, 'fs.read', { path: 'notes.txt' });
    assert.equal(outside.status, 403);
    assert.equal(outside.body['denialReason'], 'CAPABILITY_DENIED');
    // The same request, told apart only by `principal.delegated` in the policy.
    assert.equal((await execute(parent, 'echo', { message: 'hi', count: 9 })).body['status'], 'executed');
    const big = await execute(child, 'echo', { message: 'hi', count: 9 });
    assert.deepEqual([big.status, big.body['denialReason']], [403, 'CONDITIONS_DENIED']);
    assert.ok(events('delegation.created').some((e) => e.principal === parent.peerId && e.payload['peerId'] === child.peerId));
  });

  it('refuses capabilities the parent lacks and lifetimes beyond a day or the parent, and chains only narrower', async () => {
    const parent = await newAgent(g.admin, 'Ed25519', { ttl: '1h' });
    const child = await mustDelegate(parent, ['echo', 'fs.*'], '30m');
    const wider = await delegate(child, ['github.*']);
    assert.deepEqual([wider.reply.status, codeOf(wider.reply)], [403, 'DELEGATION_INVALID']);
    assert.equal(codeOf((await delegate(child, ['*'])).reply), 'DELEGATION_INVALID');
    assert.equal(codeOf((await delegate(parent, ['echo'], '2h')).reply), 'TTL_TOO_LONG', 'longer than the parent lives');
    assert.equal(codeOf((await delegate(child, ['echo'], '31m')).reply), 'TTL_TOO_LONG', 'longer than the child lives');
    assert.equal(codeOf((await delegate(parent, ['not a pattern'])).reply), 'VALIDATION_FAILED');

    const grandchild = await mustDelegate(child, ['fs.read'], '5m');
    assert.equal((await execute(grandchild, 'echo', { message: 'x' })).body['denialReason'], 'CAPABILITY_DENIED', 'the chain narrowed to fs.read');
    assert.equal((await whoami(grandchild)).status, 200);
  });

  it('lists delegations by role, and an ancestor (only) revokes a child with everything below it', async () => {
    const parent = await newAgent(g.admin, 'Ed25519');
    const child = await mustDelegate(parent, ['echo']);
    const grandchild = await mustDelegate(child, ['echo'], '5m');

    const mine = await asAgent(g.gate, parent, 'GET', '/api/v1/delegations?role=parent&activeOnly=true');
    assert.deepEqual((mine.body['delegations'] as { id: string }[]).map((d) => d.id), [child.peerId]);
    const made = await asAgent(g.gate, child, 'GET', '/api/v1/delegations?role=child');
    assert.deepEqual((made.body['delegations'] as { parentId: string; state: string }[]).map((d) => [d.parentId, d.state]), [[parent.peerId, 'active']]);
    assert.equal(codeOf(await asAgent(g.gate, parent, 'GET', '/api/v1/delegations?role=owner')), 'VALIDATION_FAILED');

    const upward = await asAgent(g.gate, grandchild, 'DELETE', `/api/v1/delegations/${child.peerId}`);
    assert.deepEqual([upward.status, codeOf(upward)], [403, 'FORBIDDEN']);
    const stranger = await newAgent(g.admin, 'Ed25519');
    assert.equal(codeOf(await asAgent(g.gate, stranger, 'DELETE', `/api/v1/delegations/${grandchild.peerId}`)), 'FORBIDDEN');

    const revoked = await asAgent(g.gate, parent, 'DELETE', `/api/v1/delegations/${child.peerId}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.deepEqual(revoked.body['revoked'], [child.peerId, grandchild.peerId]);
    assert.equal(codeOf(await whoami(child)), 'TOKEN_INVALID');
    assert.equal(codeOf(await whoami(grandchild)), 'TOKEN_INVALID');
    assert.equal((await whoami(parent)).status, 200);
    const ended = events('delegation.revoked').filter((e) => [child.peerId, grandchild.peerId].includes(String(e.payload['peerId'])));
    assert.equal(ended.length, 2);
    assert.ok(ended.some((e) => e.payload['reason'] === `removed with ${child.peerId}`));
    const after = await asAgent(g.gate, parent, 'GET', '/api/v1/delegations?role=parent');
    assert.deepEqual((after.body['delegations'] as { state: string }[]).map((d) => d.state), ['ended']);
    assert.deepEqual((await asAgent(g.gate, parent, 'GET', '/api/v1/delegations?activeOnly=true')).body['delegations'], []);
  });

  it('delegation-depth: a chain 8 deep below an enrolled agent is made, a 9th level is refused 403, and peers list still works', async () => {
    const root = await newAgent(g.admin, 'Ed25519');
    let parent = root;
    for (let level = 1; level <= 8; level++) parent = await mustDelegate(parent, ['echo'], `${600 - level * 10}s`);
    assert.equal((await whoami(parent)).status, 200);
    const ninth = await delegate(parent, ['echo'], '60s');
    assert.equal(ninth.reply.status, 403, JSON.stringify(ninth.reply.body));
    assert.equal(codeOf(ninth.reply), 'DELEGATION_INVALID');
    assert.match(ninth.reply.body.error?.message ?? '', /at most 8 deep/);
    // The deepest identity still acts, and the operator's listings still walk every chain.
    assert.equal((await execute(parent, 'echo', { message: 'deep' })).status, 200);
    assert.equal(lattice(['peers', 'list', '--home', g.home]).status, 0);
    assert.equal(lattice(['peers', 'rules', '--home', g.home]).status, 0);
  });

  it('delegation-flood: an enrolled agent may have 64 live delegations below it at any depth; the 65th is refused 403 until one ends', async () => {
    const root = await newAgent(g.admin, 'Ed25519');
    const children: Agent[] = [];
    for (let i = 0; i < 4; i++) children.push(await mustDelegate(root, ['echo']));
    const grandchildren: Agent[] = [];
    for (const child of children) for (let i = 0; i < 15; i++) grandchildren.push(await mustDelegate(child, ['echo'], '5m'));
    for (const [who, ttl] of [[root, '10m'], [children[0]!, '5m'], [grandchildren[0]!, '1m']] as const) {
      const refused = await delegate(who, ['echo'], ttl);
      assert.equal(refused.reply.status, 403, JSON.stringify(refused.reply.body));
      assert.equal(codeOf(refused.reply), 'DELEGATION_INVALID');
      assert.match(refused.reply.body.error?.message ?? '', /64 live delegated identities/);
    }
    // The legitimate cases: another agent delegates as before, and a revoked delegation frees its place.
    await mustDelegate(await newAgent(g.admin, 'Ed25519'), ['echo']);
    assert.equal((await asAgent(g.gate, root, 'DELETE', `/api/v1/delegations/${grandchildren[0]!.peerId}`)).status, 200);
    await mustDelegate(children[1]!, ['echo'], '5m');
    assert.equal(codeOf((await delegate(root, ['echo'])).reply), 'DELEGATION_INVALID');
  });

  it('a parent\'s revocation or expiry takes its children with it', async () => {
    const parent = await newAgent(g.admin, 'Ed25519');
    const child = await mustDelegate(parent, ['echo']);
    const grandchild = await mustDelegate(child, ['echo'], '5m');
    assert.equal((await asOperator(g, 'POST', '/api/v1/revoke', { id: parent.peerId })).status, 200);
    assert.equal(codeOf(await whoami(child)), 'TOKEN_INVALID');
    assert.equal(codeOf(await whoami(grandchild)), 'TOKEN_INVALID');

    const mortal = await newAgent(g.admin, 'Ed25519');
    const orphan = await mustDelegate(mortal, ['echo'], '10m');
    // The parent shortens its own life below its child's; when it expires, the child goes with it.
    assert.equal((await asAgent(g.gate, mortal, 'POST', `/api/v1/peers/${mortal.peerId}/renew`, JSON.stringify({ ttl: '1s' }))).status, 200);
    await until(async () => (await whoami(orphan)).status === 401);
    await until(() => Promise.resolve(events('delegation.expired').some((e) => e.payload['peerId'] === orphan.peerId)));
    const expired = events('delegation.expired').find((e) => e.payload['peerId'] === orphan.peerId);
    assert.equal(expired?.payload['reason'], `expired with ${mortal.peerId}`);
  });
});

describe('delegation lifetimes', () => {
  const renew = (agent: Agent, ttl: string) => asAgent(g.gate, agent, 'POST', `/api/v1/peers/${agent.peerId}/renew`, JSON.stringify({ ttl }));
  const expiry = (reply: Reply) => Date.parse(String(reply.body['expiresAt']));

  it('renewal-escape: a child delegated for seconds cannot renew itself past its grant, and still ends when granted', async () => {
    const parent = await newAgent(g.admin, 'Ed25519', { ttl: '1h' });
    const child = await mustDelegate(parent, ['echo'], '4s');
    const granted = expiry(await whoami(child));
    const renewed = await renew(child, '2h');
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.ok(expiry(renewed) <= granted, `renewed to ${String(renewed.body['expiresAt'])}, past its grant ${new Date(granted).toISOString()}`);
    const listed = (await asAgent(g.gate, parent, 'GET', '/api/v1/delegations?role=parent')).body['delegations'] as { id: string; expiresAt: string }[];
    assert.equal(Date.parse(listed.find((d) => d.id === child.peerId)?.expiresAt ?? ''), expiry(renewed), 'delegations.expires_at says when it ends');
    const recorded = events('peer.renewed').find((e) => e.payload['peerId'] === child.peerId);
    assert.equal(recorded?.payload['limitedBy'], 'delegation');
    assert.equal(typeof recorded?.payload['requestedExpiresAt'], 'string', 'the event keeps what was asked for');
    await until(async () => (await whoami(child)).status === 401, granted - Date.now() + 5_000);
    assert.equal((await whoami(parent)).status, 200);
  });

  it('renewal-escape: shortening a parent shortens everything below it; a child renews only within the chain, and may shorten itself', async () => {
    const parent = await newAgent(g.admin, 'Ed25519', { ttl: '1h' });
    const child = await mustDelegate(parent, ['echo'], '30m');
    const grandchild = await mustDelegate(child, ['echo'], '20m');
    const shortened = await renew(parent, '10m');
    assert.equal(shortened.status, 200, JSON.stringify(shortened.body));
    const parentEnds = expiry(shortened);
    for (const agent of [child, grandchild]) assert.ok(expiry(await whoami(agent)) <= parentEnds, 'nothing below outlives the parent');
    const mine = (await asAgent(g.gate, child, 'GET', '/api/v1/delegations?role=child')).body['delegations'] as { expiresAt: string }[];
    assert.ok(Date.parse(mine[0]?.expiresAt ?? '') <= parentEnds, 'the delegation row too');

    const asked = await renew(grandchild, '1h');
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    assert.ok(expiry(asked) <= parentEnds, 'clamped to the chain, not the hour asked for');

    const before = Date.now();
    const shorter = await renew(child, '2m');
    assert.equal(shorter.status, 200, JSON.stringify(shorter.body));
    assert.ok(Math.abs(expiry(shorter) - (before + 120_000)) < 5_000, 'a child may shorten its own life');
    assert.ok(expiry(await whoami(grandchild)) <= expiry(shorter), 'and its own children end with it');
    assert.equal(codeOf(await renew(child, '3h')), 'TTL_TOO_LONG', 'over the maximum is still refused');
  });
});

describe('delegation and what an agent may spend', () => {
  const setBudget = async (subject: string, calls: number) => {
    const reply = await asOperator(g, 'POST', '/api/v1/budgets', { scope: 'agent', subject, calls, window: '1h' });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
  };
  const echo = async (agent: Agent) => {
    const reply = await execute(agent, 'echo', { message: 'spend' });
    return String(reply.body['status'] === 'denied' ? reply.body['denialReason'] : reply.body['status']);
  };

  it('budget-delegation-bypass: the root\'s budget of 1 call an hour stops three children (and the root)', async () => {
    const root = await newAgent(g.admin, 'Ed25519');
    await setBudget(root.peerId, 1);
    const children = [await mustDelegate(root, ['echo']), await mustDelegate(root, ['echo']), await mustDelegate(root, ['echo'])];
    assert.equal(await echo(root), 'executed');
    assert.equal(await echo(root), 'BUDGET_EXHAUSTED');
    for (const child of children) assert.equal(await echo(child), 'BUDGET_EXHAUSTED', 'a child spends its root\'s budget');
    const grandchild = await mustDelegate(children[0]!, ['echo'], '5m');
    const deep = await execute(grandchild, 'echo', { message: 'spend' });
    assert.equal(deep.body['denialReason'], 'BUDGET_EXHAUSTED', 'and so does a grandchild');
    assert.match(String(deep.body['message']), new RegExp(`the agent budget for ${root.peerId} \\(which delegated this identity\\)`));
  });

  it('budget-delegation-bypass: children and their root share its budget, and nobody else\'s', async () => {
    const root = await newAgent(g.admin, 'Ed25519');
    await setBudget(root.peerId, 2);
    const [a, b] = [await mustDelegate(root, ['echo']), await mustDelegate(root, ['echo'])];
    assert.equal(await echo(a), 'executed');
    assert.equal(await echo(b), 'executed');
    assert.equal(await echo(a), 'BUDGET_EXHAUSTED');
    assert.equal(await echo(root), 'BUDGET_EXHAUSTED', 'the children spent it');
    const stranger = await newAgent(g.admin, 'Ed25519');
    const strangersChild = await mustDelegate(stranger, ['echo']);
    assert.equal(await echo(stranger), 'executed', 'another agent has its own room');
    assert.equal(await echo(strangersChild), 'executed');
  });

  it('anomaly-delegation-bypass: denials spread over children make a burst of their root, which is revoked with them', async () => {
    const strict = await gate('[anomaly]\ndenials = 3\nwindow = "60s"\non_burst = "revoke"\n');
    try {
      const root = await newAgent(strict.admin, 'Ed25519');
      const quiet = await newAgent(strict.admin, 'Ed25519');
      const children: Agent[] = [];
      for (let i = 0; i < 3; i++) {
        const keys = await DPoP.generateKeyPair('Ed25519');
        const reply = await asAgent(strict.gate, root, 'POST', '/api/v1/delegations', JSON.stringify({ name: `probe-${i}`, capabilities: ['echo'], ttl: '10m', publicJwk: await exportJWK(keys.publicKey) }));
        assert.equal(reply.status, 201, JSON.stringify(reply.body));
        children.push({ peerId: String(reply.body['peerId']), token: String(reply.body['enrollmentToken']), keys, overlayIP: '' });
      }
      // Each child is denied once (outside its capabilities): no child alone reaches a burst, their root does.
      for (const child of children) {
        const denied = await asAgent(strict.gate, child, 'POST', '/api/v1/actions/fs.read/execute', JSON.stringify({ params: { path: 'x.txt' } }));
        assert.equal(denied.body['denialReason'], 'CAPABILITY_DENIED');
      }
      await until(async () => (await asAgent(strict.gate, root, 'GET', '/api/v1/whoami')).status === 401);
      const anomalies = latticeJson<{ events: { payload: Record<string, unknown> }[] }>(['audit', '--home', strict.home, '--type', 'anomaly.detected']).json.events;
      const burst = anomalies.find((e) => e.payload['peerId'] === root.peerId);
      assert.deepEqual([burst?.payload['denials'], [...((burst?.payload['agents'] as string[] | undefined) ?? [])].sort()], [3, children.map((c) => c.peerId).sort()]);
      for (const child of children) assert.equal((await asAgent(strict.gate, child, 'GET', '/api/v1/whoami')).status, 401, 'revoked with the root');
      assert.equal((await asAgent(strict.gate, quiet, 'GET', '/api/v1/whoami')).status, 200, 'another agent is untouched');
    } finally {
      strict.child.kill('SIGTERM');
      await exited(strict.child);
    }
  });
});
