/**
 * Operator tokens against a real gate: what a token's workspace and presets mean for each scope, enforced when
 * the token is made and each time it is used (core/identity/tokens.ts states the rules).
 */
import Database from 'better-sqlite3';
import * as DPoP from 'dpop';
import { exportJWK } from 'jose';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, latticeJson } from '../helpers.ts';
import { asAgent, asOperator, call, codeOf, enroll, gate, newAgent, type TestGate } from './harness.ts';

describe('what a token\'s workspace and presets mean, per scope', () => {
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const token = (g: TestGate, body: Record<string, unknown>) => asOperator(g, 'POST', '/api/v1/tokens', body);

  it('token-scope-misread: an enroll token grants only its presets (sandboxed unless it names others), in its workspace', async () => {
    const g = await gate();
    const keys = await DPoP.generateKeyPair('ES256');
    const plain = latticeJson<{ token: string; presets: string[] }>(['tokens', 'create', '--home', g.home, '--workspace', 'ws-test', '--scope', 'enroll']);
    const refused = await enroll(g.gate, keys, { policyPreset: 'coordinator' }, bearer(plain.json.token));
    assert.deepEqual([refused.status, codeOf(refused)], [403, 'FORBIDDEN'], 'a token naming no presets cannot grant coordinator');
    assert.match(String(refused.body.error?.message), /may enroll agents with preset sandboxed, not coordinator; make a token with --preset coordinator/);
    assert.deepEqual(plain.json.presets, ['sandboxed']);
    assert.equal((await enroll(g.gate, keys, { policyPreset: 'sandboxed' }, bearer(plain.json.token))).status, 201);

    const wider = latticeJson<{ token: string; presets: string[] }>(['tokens', 'create', '--home', g.home, '--workspace', 'ws-test', '--scope', 'enroll', '--preset', 'coordinator,sandboxed']);
    assert.equal(wider.status, 0, wider.stderr);
    assert.equal((await enroll(g.gate, keys, { policyPreset: 'coordinator' }, bearer(wider.json.token))).status, 201);
    assert.equal(codeOf(await enroll(g.gate, keys, { policyPreset: 'isolated' }, bearer(wider.json.token))), 'FORBIDDEN');
    assert.equal(codeOf(await enroll(g.gate, keys, { policyPreset: 'coordinator', workspaceId: 'ws-other' }, bearer(wider.json.token))), 'FORBIDDEN', 'and only in its workspace');
    const listed = latticeJson<{ peers: { policyPreset: string }[] }>(['peers', 'list', '--home', g.home]).json.peers.map((p) => p.policyPreset).sort();
    assert.deepEqual(listed, ['coordinator', 'sandboxed']);
    assert.equal(codeOf(await token(g, { scopes: ['approve'], presets: ['coordinator'] })), 'VALIDATION_FAILED', 'presets belong to enroll tokens');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('token-scope-misread: a workspace limit is refused for scopes that act on the whole gate, at creation and in use', async () => {
    const g = await gate();
    const made = lattice(['tokens', 'create', '--home', g.home, '--workspace', 'ws-test', '--scope', 'enroll,audit:read']);
    assert.equal(made.status, 2);
    assert.match(made.stderr, /a workspace limits only enroll and peers:write; audit:read act\(s\) on the whole gate/);
    for (const scope of ['approve', 'audit:read', 'policy:write', 'secrets:write']) {
      assert.equal(codeOf(await token(g, { scopes: [scope], workspace: 'ws-test' })), 'VALIDATION_FAILED', scope);
    }
    // A token stored with such a limit (as before this check existed) is refused when used, not read as unlimited.
    const reader = await token(g, { scopes: ['audit:read'] });
    assert.equal((await call({ socketPath: g.gate }, 'GET', '/api/v1/audit?limit=1', undefined, bearer(String(reader.body['token'])))).status, 200);
    const db = new Database(join(g.home, 'lattice.db'));
    db.prepare('UPDATE tokens SET workspace = ? WHERE id = ?').run('ws-test', String(reader.body['id']));
    db.close();
    const limited = await call({ socketPath: g.gate }, 'GET', '/api/v1/audit?limit=1', undefined, bearer(String(reader.body['token'])));
    assert.deepEqual([limited.status, codeOf(limited)], [403, 'FORBIDDEN']);
    assert.match(String(limited.body.error?.message), /is limited to workspace ws-test, and audit:read is not limited per workspace/);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('token-scope-misread: a workspace-limited peers:write token renews and removes peers of its workspace only', async () => {
    const g = await gate();
    const writer = String((await token(g, { scopes: ['peers:write'], workspace: 'ws-test' })).body['token']);
    const ours = await newAgent(g.admin);
    const theirs = await newAgent(g.admin, 'ES256', { workspaceId: 'ws-other' });
    const renew = (id: string) => call({ socketPath: g.gate }, 'POST', `/api/v1/peers/${id}/renew`, JSON.stringify({ ttl: '30m' }), bearer(writer));
    const remove = (id: string) => call({ socketPath: g.gate }, 'DELETE', `/api/v1/peers/${id}`, undefined, bearer(writer));
    assert.equal(codeOf(await renew(theirs.peerId)), 'FORBIDDEN');
    assert.equal(codeOf(await remove(theirs.peerId)), 'FORBIDDEN');
    const child = await asAgent(g.gate, theirs, 'POST', '/api/v1/delegations', JSON.stringify({ name: 'c', capabilities: ['echo'], ttl: '5m', publicJwk: await exportJWK((await DPoP.generateKeyPair('ES256')).publicKey) }));
    assert.equal(codeOf(await call({ socketPath: g.gate }, 'DELETE', `/api/v1/delegations/${String(child.body['peerId'])}`, undefined, bearer(writer))), 'FORBIDDEN');
    assert.equal((await asAgent(g.gate, theirs, 'GET', '/api/v1/whoami')).status, 200, 'untouched');
    assert.equal((await renew(ours.peerId)).status, 200);
    assert.equal((await remove(ours.peerId)).status, 200);
    assert.equal(codeOf(await asAgent(g.gate, ours, 'GET', '/api/v1/whoami')), 'TOKEN_INVALID');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});
