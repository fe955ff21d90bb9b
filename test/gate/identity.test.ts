/**
 * Agent identity against a real gate process on a temporary home, over its unix sockets: enrollment, DPoP with an
 * independent implementation (the `dpop` package), renewal, deletion, expiry, revocation, restarts, bad input.
 */
import * as DPoP from 'dpop';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, lattice, latticeJson, tempDir } from '../helpers.ts';
import { BASE, asAgent, asOperator, call, codeOf, enroll, exited, gate, newAgent, startGate, type SigningKey } from './harness.ts';

function refusedCodes(home: string): string[] {
  return latticeJson<{ events: { payload: { code: string } }[] }>(['audit', '--home', home, '--type', 'request.refused', '--limit', '1000']).json.events.map((e) => e.payload.code);
}

describe('enrollment and whoami', () => {
  it('enrolls through the admin socket and answers whoami to proofs from an independent DPoP implementation (ES256 and Ed25519)', async () => {
    const g = await gate();
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const agent = await newAgent(g.admin, alg);
      const me = await asAgent(g.gate, agent, 'GET', '/api/v1/whoami');
      assert.equal(me.status, 200, JSON.stringify(me.body));
      assert.equal(me.body['peerId'], agent.peerId);
      assert.equal(me.body['policyPreset'], 'sandboxed');
      assert.equal(me.body['workspaceId'], 'ws-test');
      assert.match(String(me.body['overlayIP']), /^10\.96\.\d+\.\d+$/);
    }
    const enrolled = latticeJson<{ events: { principal: string }[] }>(['audit', '--home', g.home, '--type', 'peer.enrolled']);
    assert.equal(enrolled.json.events.length, 2);
    assert.equal(enrolled.json.events[0]?.principal, 'operator');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('returns a real wg-quick configuration whose private key matches nothing but the agent', async () => {
    const g = await gate();
    const reply = await enroll(g.admin, await DPoP.generateKeyPair('ES256'));
    const config = String(reply.body['wireguardConfig']);
    assert.match(config, /^\[Interface\]\nPrivateKey = [A-Za-z0-9+/]{43}=\nAddress = 10\.96\.\d+\.\d+\/32\n/);
    assert.match(config, /\[Peer\]\nPublicKey = [A-Za-z0-9+/]{43}=\nEndpoint = 127\.0\.0\.1:51820\nAllowedIPs = 10\.96\.0\.1\/32\n/);
    const privateKey = /PrivateKey = (\S+)/.exec(config)?.[1] ?? '';
    const pub = spawnSync('wg', ['pubkey'], { input: privateKey, encoding: 'utf8' });
    assert.equal(pub.status, 0, `wg pubkey failed (install wireguard-tools): ${pub.stderr}`);
    assert.notEqual(pub.stdout.trim(), /PublicKey = (\S+)/.exec(config)?.[1], 'the agent key is not the gate key');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('enrolls with a workspace token, and refuses one for another workspace, without the scope, or revoked', async () => {
    const g = await gate();
    const created = latticeJson<{ id: string; token: string }>(['tokens', 'create', '--home', g.home, '--workspace', 'ws-test', '--scope', 'enroll']);
    const other = latticeJson<{ token: string }>(['tokens', 'create', '--home', g.home, '--workspace', 'ws-other', '--scope', 'enroll']);
    const noScope = latticeJson<{ token: string }>(['tokens', 'create', '--home', g.home, '--scope', 'audit:read']);
    const keys = await DPoP.generateKeyPair('ES256');
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    assert.equal((await enroll(g.gate, keys, {}, bearer(created.json.token))).status, 201);
    assert.equal(codeOf(await enroll(g.gate, keys, {}, bearer(other.json.token))), 'FORBIDDEN');
    assert.equal(codeOf(await enroll(g.gate, keys, {}, bearer(noScope.json.token))), 'FORBIDDEN');
    assert.equal(codeOf(await enroll(g.gate, keys)), 'UNAUTHENTICATED');
    assert.equal(codeOf(await enroll(g.gate, keys, {}, bearer('lt1.tok_AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'))), 'TOKEN_INVALID');
    assert.equal(lattice(['revoke', '--home', g.home, created.json.id]).status, 0);
    assert.equal(codeOf(await enroll(g.gate, keys, {}, bearer(created.json.token))), 'TOKEN_REVOKED');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

/** A DPoP proof for `path` signed by WebCrypto itself (crypto.subtle.sign), with `jwk` in its header as given. */
async function webCryptoProof(privateKey: CryptoKey, jwk: JWK, alg: 'ES256' | 'Ed25519', method: string, path: string, token: string): Promise<string> {
  const b64u = (bytes: string | ArrayBuffer) => Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes) : new Uint8Array(bytes)).toString('base64url');
  const ath = b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
  const claims = { htm: method, htu: `${BASE}${path}`, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ath };
  const input = `${b64u(JSON.stringify({ typ: 'dpop+jwt', alg, jwk }))}.${b64u(JSON.stringify(claims))}`;
  const algorithm = alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'Ed25519' };
  return `${input}.${b64u(await crypto.subtle.sign(algorithm, privateKey, new TextEncoder().encode(input)))}`;
}

describe('standard public JWKs at the gate', () => {
  it('standard-jwk-refused: keys exported by WebCrypto, the dpop package and jose (ES256, EdDSA, Ed25519) enroll, then authenticate with their own proofs', async () => {
    const g = await gate();
    type Pair = { publicKey: CryptoKey; privateKey: CryptoKey };
    type Maker = { name: string; jwk: JWK; prove: (token: string, method: string, path: string) => Promise<string> };
    const makers: Maker[] = [];
    for (const alg of ['ES256', 'Ed25519'] as const) {
      // WebCrypto: the key and its export as they are, and a proof signed with crypto.subtle.
      const params = alg === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' };
      const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as Pair;
      const jwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JWK;
      makers.push({ name: `WebCrypto ${alg}`, jwk, prove: (token, method, path) => webCryptoProof(pair.privateKey, jwk, alg, method, path, token) });
      // The dpop package: its key exported by WebCrypto (key_ops, ext, and alg for Ed25519), its own proofs.
      const keys = await DPoP.generateKeyPair(alg);
      makers.push({ name: `dpop ${alg}`, jwk: await crypto.subtle.exportKey('jwk', keys.publicKey), prove: (token, method, path) => DPoP.generateProof(keys, `${BASE}${path}`, method, undefined, token) });
    }
    for (const alg of ['ES256', 'EdDSA', 'Ed25519'] as const) {
      // jose: exportJWK plus the alg, use and kid a JWKS would carry; proofs signed by jose with that jwk in the header.
      const pair = await generateKeyPair(alg, { extractable: true });
      const jwk: JWK = { ...(await exportJWK(pair.publicKey)), alg, use: 'sig', kid: `agent-${alg}` };
      const ath = async (token: string) => Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))).toString('base64url');
      makers.push({
        name: `jose ${alg}`,
        jwk,
        prove: async (token, method, path) =>
          new SignJWT({ htm: method, htu: `${BASE}${path}`, jti: crypto.randomUUID(), ath: await ath(token) }).setProtectedHeader({ typ: 'dpop+jwt', alg, jwk }).setIssuedAt().sign(pair.privateKey),
      });
    }
    for (const maker of makers) {
      const enrolled = await enroll(g.admin, await DPoP.generateKeyPair('ES256'), { publicJwk: maker.jwk });
      assert.equal(enrolled.status, 201, `${maker.name}: ${JSON.stringify(enrolled.body)}`);
      const token = String(enrolled.body['enrollmentToken']);
      const me = await call({ socketPath: g.gate }, 'GET', '/api/v1/whoami', undefined, { authorization: `DPoP ${token}`, dpop: await maker.prove(token, 'GET', '/api/v1/whoami') });
      assert.equal(me.status, 200, `${maker.name}: ${JSON.stringify(me.body)}`);
      assert.equal(me.body['jkt'], await calculateJwkThumbprint(maker.jwk, 'sha256'), `${maker.name}: the thumbprint of the required members`);
    }
    // A delegated child's key is read the same way.
    const parent = makers[1]!;
    const enrolled = await enroll(g.admin, await DPoP.generateKeyPair('ES256'), { publicJwk: parent.jwk });
    const parentToken = String(enrolled.body['enrollmentToken']);
    const child = makers[0]!;
    const delegated = await call({ socketPath: g.gate }, 'POST', '/api/v1/delegations', JSON.stringify({ name: 'child', capabilities: ['echo'], ttl: '5m', publicJwk: child.jwk }), {
      authorization: `DPoP ${parentToken}`,
      dpop: await parent.prove(parentToken, 'POST', '/api/v1/delegations'),
    });
    assert.equal(delegated.status, 201, JSON.stringify(delegated.body));
    const childToken = String(delegated.body['enrollmentToken']);
    const childMe = await call({ socketPath: g.gate }, 'GET', '/api/v1/whoami', undefined, { authorization: `DPoP ${childToken}`, dpop: await child.prove(childToken, 'GET', '/api/v1/whoami') });
    assert.equal(childMe.status, 200, JSON.stringify(childMe.body));
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('jwk-inconsistent-members: refuses an alg for another key type, key_ops without verify, use other than sig and a private member, with the exact reason', async () => {
    const g = await gate();
    const keys = await DPoP.generateKeyPair('Ed25519');
    const jwk = (await crypto.subtle.exportKey('jwk', keys.publicKey)) as JWK;
    const cases: [JWK, string][] = [
      [{ ...jwk, alg: 'ES256' }, 'publicJwk is refused: alg "ES256" does not fit this OKP Ed25519 key; use EdDSA or Ed25519, or leave alg out'],
      [{ ...jwk, key_ops: ['sign'] }, 'publicJwk is refused: key_ops does not include "verify"; the gate verifies signatures with this key'],
      [{ ...jwk, use: 'enc' }, 'publicJwk is refused: use "enc" is not "sig"; a DPoP key signs'],
      [{ ...jwk, d: 'A'.repeat(43) }, 'publicJwk is refused: it carries the private member "d"; send the public key only'],
    ];
    for (const [publicJwk, message] of cases) {
      const reply = await enroll(g.admin, keys, { publicJwk });
      assert.deepEqual([reply.status, reply.body.error], [400, { code: 'VALIDATION_FAILED', message }]);
    }
    assert.equal((await enroll(g.admin, keys, { publicJwk: jwk })).status, 201, 'the same key, consistent, is enrolled');
    assert.equal(latticeJson<{ peers: unknown[] }>(['peers', 'list', '--home', g.home]).json.peers.length, 1);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('DPoP at the gate', () => {
  it('refuses each broken proof with its own code, and records every refusal in the ledger', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const path = '/api/v1/whoami';
    const url = `${BASE}${path}`;
    const send = (proof: string, token = agent.token) => call({ socketPath: g.gate }, 'GET', path, undefined, { authorization: `DPoP ${token}`, dpop: proof });
    const jwk = await exportJWK(agent.keys.publicKey);
    const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}, key: SigningKey = agent.keys.privateKey) =>
      new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: jwk, ...header }).sign(key);
    const ath = (await DPoP.generateProof(agent.keys, url, 'GET', undefined, agent.token)).split('.')[1] ?? '';
    const athClaim = (JSON.parse(Buffer.from(ath, 'base64url').toString()) as { ath: string }).ath;
    const now = Math.floor(Date.now() / 1000);

    const replayed = await DPoP.generateProof(agent.keys, url, 'GET', undefined, agent.token);
    assert.equal((await send(replayed)).status, 200);
    const other = await DPoP.generateKeyPair('ES256');
    const noneHeader = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk })).toString('base64url');
    const nonePayload = Buffer.from(JSON.stringify({ htm: 'GET', htu: url, iat: now, jti: 'none-1', ath: athClaim })).toString('base64url');
    const cases: [string, Promise<string>, string][] = [
      ['replayed jti', Promise.resolve(replayed), 'DPOP_REPLAY'],
      ['wrong htu', DPoP.generateProof(agent.keys, `${BASE}/api/v1/other`, 'GET', undefined, agent.token), 'DPOP_HTU_MISMATCH'],
      ['wrong method', DPoP.generateProof(agent.keys, url, 'POST', undefined, agent.token), 'DPOP_HTM_MISMATCH'],
      ['stale iat', sign({ htm: 'GET', htu: url, iat: now - 600, jti: 'stale-1', ath: athClaim }), 'DPOP_IAT_OUT_OF_WINDOW'],
      ['wrong key', DPoP.generateProof(other, url, 'GET', undefined, agent.token), 'DPOP_KEY_MISMATCH'],
      ['missing ath', sign({ htm: 'GET', htu: url, iat: now, jti: 'noath-1' }), 'DPOP_ATH_MISSING'],
      ['alg none', Promise.resolve(`${noneHeader}.${nonePayload}.`), 'DPOP_BAD_ALG'],
    ];
    for (const [name, proof, code] of cases) assert.equal(codeOf(await send(await proof)), code, name);
    assert.equal(codeOf(await call({ socketPath: g.gate }, 'GET', path, undefined, { authorization: `DPoP ${agent.token}` })), 'DPOP_MISSING');
    assert.equal(codeOf(await send(await DPoP.generateProof(agent.keys, url, 'GET', undefined, agent.token), 'not-a-token')), 'TOKEN_INVALID');

    const recorded = refusedCodes(g.home);
    for (const [name, , code] of cases) assert.ok(recorded.includes(code), `${name} (${code}) is in the ledger`);
    const principals = latticeJson<{ events: { principal: string | null; payload: { code: string } }[] }>(['audit', '--home', g.home, '--type', 'request.refused', '--principal', agent.peerId]);
    assert.ok(principals.json.events.length >= cases.length, 'refusals name the agent they refused');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('peer lifecycle', () => {
  it('renews within the maximum, deletes itself, and is reaped on expiry with an event each', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    const renewed = await asAgent(g.gate, agent, 'POST', `/api/v1/peers/${agent.peerId}/renew`, JSON.stringify({ ttl: '90m' }));
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.ok(Date.parse(String(renewed.body['expiresAt'])) > Date.now() + 80 * 60_000);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'POST', `/api/v1/peers/${agent.peerId}/renew`, JSON.stringify({ ttl: '3h' }))), 'TTL_TOO_LONG');
    const stranger = await newAgent(g.admin);
    assert.equal(codeOf(await asAgent(g.gate, stranger, 'DELETE', `/api/v1/peers/${agent.peerId}`)), 'FORBIDDEN', 'an agent cannot delete another');
    assert.equal((await asAgent(g.gate, agent, 'DELETE', `/api/v1/peers/${agent.peerId}`)).status, 200);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'GET', '/api/v1/whoami')), 'TOKEN_INVALID', 'a deleted peer cannot authenticate');

    const short = await newAgent(g.admin, 'ES256', { ttl: '1s' });
    assert.equal((await asAgent(g.gate, short, 'GET', '/api/v1/whoami')).status, 200);
    const deadline = Date.now() + 10_000;
    while (latticeJson<{ events: unknown[] }>(['audit', '--home', g.home, '--type', 'peer.expired']).json.events.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const expired = latticeJson<{ events: { payload: { peerId: string } }[] }>(['audit', '--home', g.home, '--type', 'peer.expired']);
    assert.deepEqual(expired.json.events.map((e) => e.payload.peerId), [short.peerId]);
    assert.equal(codeOf(await asAgent(g.gate, short, 'GET', '/api/v1/whoami')), 'TOKEN_INVALID');
    const peers = latticeJson<{ peers: { peerId: string }[] }>(['peers', 'list', '--home', g.home]);
    assert.deepEqual(peers.json.peers.map((p) => p.peerId), [stranger.peerId]);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('ttl-as-seconds: enrollment, renewal and tokens take a ttl as a number of seconds as well as a duration string', async () => {
    const g = await gate();
    const keys = await DPoP.generateKeyPair('ES256');
    const before = Date.now();
    const enrolled = await enroll(g.admin, keys, { ttl: 3600 });
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const lives = Date.parse(String(enrolled.body['expiresAt'])) - before;
    assert.ok(lives >= 3_590_000 && lives <= 3_610_000, `3600 s, not ${lives} ms`);
    const agent = { peerId: String(enrolled.body['peerId']), token: String(enrolled.body['enrollmentToken']), keys, overlayIP: '' };
    const renewed = await asAgent(g.gate, agent, 'POST', `/api/v1/peers/${agent.peerId}/renew`, JSON.stringify({ ttl: 120 }));
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    const left = Date.parse(String(renewed.body['expiresAt'])) - Date.now();
    assert.ok(left > 100_000 && left <= 120_000, `120 s, not ${left} ms`);
    assert.equal((await asOperator(g, 'POST', '/api/v1/tokens', { scopes: ['enroll'], ttl: 60 })).status, 201);
    assert.equal(codeOf(await asOperator(g, 'POST', '/api/v1/tokens', { scopes: ['enroll'], ttl: -60 })), 'VALIDATION_FAILED');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('never gives two live peers the same overlay address, even enrolling 60 at once', async () => {
    const g = await gate();
    const agents = await Promise.all(Array.from({ length: 60 }, () => newAgent(g.admin)));
    assert.equal(new Set(agents.map((a) => a.overlayIP)).size, 60);
    assert.ok(!agents.some((a) => a.overlayIP === '10.96.0.1'), 'the gate address is never handed out');
    const rules = lattice(['peers', 'rules', '--home', g.home, '--format', 'nft']);
    assert.equal(rules.status, 0);
    const file = join(tempDir(), 'lattice.nft');
    writeFileSync(file, rules.stdout);
    const check = spawnSync('nft', ['-c', '-f', file], { encoding: 'utf8' });
    assert.equal(check.error, undefined, 'nft is missing: install nftables');
    assert.equal(check.status, 0, check.stderr);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });

  it('revokes a peer, a lease and everyone; revocations survive a restart, live identities keep working', async () => {
    const g = await gate();
    const keep = await newAgent(g.admin);
    const byPeer = await newAgent(g.admin);
    const byLease = await newAgent(g.admin);
    const leaseId = String((await asAgent(g.gate, byLease, 'GET', '/api/v1/whoami')).body['leaseId']);
    assert.equal(lattice(['revoke', '--home', g.home, byPeer.peerId]).status, 0);
    assert.equal(lattice(['revoke', '--home', g.home, leaseId]).status, 0);
    assert.equal(codeOf(await asAgent(g.gate, byPeer, 'GET', '/api/v1/whoami')), 'TOKEN_INVALID');
    assert.equal(codeOf(await asAgent(g.gate, byLease, 'GET', '/api/v1/whoami')), 'TOKEN_REVOKED');
    assert.equal(lattice(['revoke', '--home', g.home, 'peer_nobody']).status, 2);

    // Restart: the gate's keys persist, so a live identity still works; revoked ones stay revoked.
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    await exited(g.child);
    const again = await startGate(g.home);
    assert.equal((await asAgent(again.gate, keep, 'GET', '/api/v1/whoami')).status, 200);
    assert.equal(codeOf(await asAgent(again.gate, byLease, 'GET', '/api/v1/whoami')), 'TOKEN_REVOKED');

    const all = lattice(['revoke', '--home', g.home, '--all']);
    assert.equal(all.status, 2, 'revoke --all without a terminal needs --yes');
    assert.equal(lattice(['revoke', '--home', g.home, '--all', '--yes']).status, 0);
    assert.equal(codeOf(await asAgent(again.gate, keep, 'GET', '/api/v1/whoami')), 'TOKEN_REVOKED');
    const fresh = await newAgent(again.admin);
    assert.equal((await asAgent(again.gate, fresh, 'GET', '/api/v1/whoami')).status, 200, 'identities issued after --all work');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    assert.equal(latticeJson<{ ok: boolean }>(['verify', '--home', g.home]).json.ok, true);
  });
});

describe('hostile enrollment input', () => {
  it('answers malformed, mistyped, oversized and out-of-range requests with clean 4xx codes and keeps serving', async () => {
    const g = await gate();
    const keys = await DPoP.generateKeyPair('ES256');
    const jwk = await exportJWK(keys.publicKey);
    const admin = { socketPath: g.admin };
    const post = (body: string) => call(admin, 'POST', '/api/v1/agent-enroll', body);
    const base = { agentName: 'a', agentType: 't', workspaceId: 'ws-x', ttl: '1h', policyPreset: 'sandboxed', publicJwk: jwk };
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const cases: [string, string, number, string][] = [
      ['malformed JSON', '{"agentName": ', 400, 'BAD_REQUEST'],
      ['not an object', '[1,2,3]', 400, 'VALIDATION_FAILED'],
      ['wrong type', JSON.stringify({ ...base, ttl: true }), 400, 'VALIDATION_FAILED'],
      ['fractional seconds', JSON.stringify({ ...base, ttl: 1.5 }), 400, 'VALIDATION_FAILED'],
      ['zero seconds', JSON.stringify({ ...base, ttl: 0 }), 400, 'VALIDATION_FAILED'],
      ['ttl null', JSON.stringify({ ...base, ttl: null }), 400, 'VALIDATION_FAILED'],
      ['seconds over the maximum', JSON.stringify({ ...base, ttl: 25 * 3600 }), 400, 'TTL_TOO_LONG'],
      ['unknown preset', JSON.stringify({ ...base, policyPreset: 'root' }), 400, 'VALIDATION_FAILED'],
      ['ttl over the maximum', JSON.stringify({ ...base, ttl: '25h' }), 400, 'TTL_TOO_LONG'],
      ['ttl not a duration', JSON.stringify({ ...base, ttl: 'forever' }), 400, 'VALIDATION_FAILED'],
      ['unknown member', JSON.stringify({ ...base, admin: true }), 400, 'VALIDATION_FAILED'],
      ['name with a newline', JSON.stringify({ ...base, agentName: 'a\nb' }), 400, 'VALIDATION_FAILED'],
      ['private key as publicJwk', JSON.stringify({ ...base, publicJwk: await exportJWK(privateKey) }), 400, 'VALIDATION_FAILED'],
      ['huge body', JSON.stringify({ ...base, agentName: 'x'.repeat(2 * 1024 * 1024) }), 413, 'BODY_TOO_LARGE'],
    ];
    for (const [name, body, status, code] of cases) {
      const reply = await post(body);
      assert.equal(reply.status, status, `${name}: ${JSON.stringify(reply.body)}`);
      assert.equal(codeOf(reply), code, name);
    }
    assert.equal((await call(admin, 'GET', '/api/v1/health')).status, 200);
    assert.equal(latticeJson<{ peers: unknown[] }>(['peers', 'list', '--home', g.home]).json.peers.length, 0, 'nothing was half-enrolled');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('secrets and tokens through the CLI', () => {
  it('reads a secret from stdin, lists its name only, and keeps the value out of the ledger, the database and every answer', async () => {
    const g = await gate();
    const value = `sk-live-${'q'.repeat(24)}-canary`;
    const set = spawnSync(process.execPath, [CLI, 'secrets', 'set', 'GITHUB_TOKEN', '--home', g.home], { input: value, encoding: 'utf8' });
    assert.equal(set.status, 0, set.stderr);
    assert.match(set.stdout, /created secret GITHUB_TOKEN/);
    const list = lattice(['secrets', 'list', '--home', g.home, '--json']);
    assert.match(list.stdout, /GITHUB_TOKEN/);
    assert.doesNotMatch(list.stdout, /canary/);
    const audit = lattice(['audit', '--home', g.home, '--format', 'jsonl', '--limit', '100']);
    assert.match(audit.stdout, /"secret\.set"/);
    assert.doesNotMatch(audit.stdout, /canary/);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    for (const file of [join(g.home, 'lattice.db'), join(g.home, 'lattice.db-wal')]) {
      if (existsSync(file)) assert.equal(readFileSync(file).includes(Buffer.from('canary')), false, `${file} holds the value in plaintext`);
    }
  });

  it('refuses an expired token', async () => {
    const g = await gate();
    const token = latticeJson<{ token: string }>(['tokens', 'create', '--home', g.home, '--scope', 'enroll', '--ttl', '1s']).json.token;
    await new Promise((r) => setTimeout(r, 1200));
    const reply = await enroll(g.gate, await DPoP.generateKeyPair('ES256'), {}, { authorization: `Bearer ${token}` });
    assert.equal(codeOf(reply), 'TOKEN_EXPIRED');
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('TCP listener', () => {
  it('serves HTTPS when [tls] is configured, and agents authenticate over it with the configured base URL', async () => {
    const dir = tempDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl failed: ${made.stderr}`);
    const home = join(dir, 'home');
    const config = join(dir, 'lattice.toml');
    writeFileSync(config, `[gate]\nbase_url = "https://localhost:7999"\n[tls]\ncert = "${cert}"\nkey = "${key}"\n`);
    const g = await startGate(home, '--config', config, '--listen', '127.0.0.1:0');
    const status = await call({ socketPath: g.admin }, 'GET', '/api/v1/admin/status');
    assert.match(String(status.body['listen']), /^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(String(status.body['listen']).split(':').pop());
    const health = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/api/v1/health', ca: readFileSync(cert), servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(health, 200);
    // Proofs must name the configured base URL, whatever socket carried them.
    const agent = await newAgent(g.admin);
    const proof = await DPoP.generateProof(agent.keys, 'https://localhost:7999/api/v1/whoami', 'GET', undefined, agent.token);
    assert.equal((await call({ socketPath: g.gate }, 'GET', '/api/v1/whoami', undefined, { authorization: `DPoP ${agent.token}`, dpop: proof })).status, 200);
    assert.equal(codeOf(await asAgent(g.gate, agent, 'GET', '/api/v1/whoami')), 'DPOP_HTU_MISMATCH', 'http://localhost is not the configured base');
    assert.equal(lattice(['down', '--home', home]).status, 0);
  });
});
