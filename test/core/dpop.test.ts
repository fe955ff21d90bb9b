/**
 * DPoP proofs (RFC 9449): proofs made by the independent `dpop` package are accepted; every forged, misdirected,
 * stale, replayed or malformed proof is refused with its own code, and a refused proof never burns its jti.
 * Forgeries the `dpop` package refuses to make are crafted with jose or by hand. Codes are pinned as literals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as DPoP from 'dpop';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { jwkThumbprint, verifyDpopProof, type DpopCheck, type DpopResult, type ReplayStore } from '../../core/identity/dpop.ts';

const URL_EXPECTED = 'https://gate.example:8443/api/v1/act';
const TOKEN = 'lease_access-token-0123456789';
const WINDOW = 60;

/** In-memory replay store for these tests (the gate's is SQLite-backed). */
class MemoryReplayStore implements ReplayStore {
  readonly seen = new Map<string, number>();

  remember(jti: string, expiresAt: number): boolean {
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, expiresAt);
    return true;
  }
}

function check(proof: string | undefined, overrides: Partial<DpopCheck> = {}): DpopCheck {
  return { proof, method: 'POST', url: URL_EXPECTED, now: Date.now(), iatWindowSeconds: WINDOW, replay: new MemoryReplayStore(), ...overrides };
}

function assertAccepted(result: DpopResult): asserts result is Extract<DpopResult, { ok: true }> {
  assert.equal(result.ok, true, result.ok ? '' : `${result.code}: ${result.message}`);
}

function assertRefused(result: DpopResult, code: string, proof?: string): void {
  assert.equal(result.ok, false, 'the proof was accepted');
  if (result.ok) return;
  assert.equal(result.code, code, result.message);
  assert.ok(result.message.length > 0);
  if (proof !== undefined && proof.length > 48) assert.ok(!result.message.includes(proof), 'the message echoes the proof');
  assert.ok(!result.message.includes(TOKEN), 'the message echoes the access token');
}

const b64u = (value: string | Uint8Array | ArrayBuffer): string =>
  Buffer.from(typeof value === 'string' ? Buffer.from(value, 'utf8') : new Uint8Array(value)).toString('base64url');

async function ath(token: string): Promise<string> {
  return b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
}

interface Signer {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function signer(alg: 'ES256' | 'Ed25519'): Promise<Signer> {
  const pair = await generateKeyPair(alg);
  return { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) };
}

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { htm: 'POST', htu: URL_EXPECTED, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ...extra };
}

/** A proof signed with jose, for headers and claims the `dpop` package will not produce. */
async function craft(key: Signer, alg: string, payload: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: key.jwk, ...header }).sign(key.privateKey);
}

/** A proof signed directly with WebCrypto, so the header can claim an alg that does not fit the key. */
type SubtleSign = typeof crypto.subtle.sign;

async function handSign(header: object, payload: object, privateKey: CryptoKey, algorithm: Parameters<SubtleSign>[0]): Promise<string> {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(payload))}`;
  return `${input}.${b64u(await crypto.subtle.sign(algorithm, privateKey, new TextEncoder().encode(input)))}`;
}

function segments(proof: string): [string, string, string] {
  const [h = '', p = '', s = ''] = proof.split('.');
  return [h, p, s];
}

describe('DPoP proofs: accepted', () => {
  for (const alg of ['ES256', 'Ed25519'] as const) {
    it(`accepts a ${alg} proof from the dpop package, without and with an access token`, async () => {
      const keys = await DPoP.generateKeyPair(alg);
      const jkt = await DPoP.calculateThumbprint(keys.publicKey);
      const plain = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
      const result = await verifyDpopProof(check(plain, { expectedJkt: jkt }));
      assertAccepted(result);
      assert.equal(result.jkt, jkt);
      const header = JSON.parse(Buffer.from(segments(plain)[0], 'base64url').toString()) as { jwk: unknown };
      assert.deepEqual(result.jwk, header.jwk);

      const bound = await DPoP.generateProof(keys, URL_EXPECTED, 'POST', undefined, TOKEN);
      assertAccepted(await verifyDpopProof(check(bound, { accessToken: TOKEN, expectedJkt: jkt })));
    });
  }

  // The dpop package (2.x) only writes the fully-specified `Ed25519` (RFC 9864); the deprecated but still common
  // `EdDSA` spelling is signed with jose instead, with the same kind of key.
  it('accepts an EdDSA (deprecated spelling) proof, without and with an access token', async () => {
    const key = await signer('Ed25519');
    const jkt = await jwkThumbprint(key.jwk);
    assertAccepted(await verifyDpopProof(check(await craft(key, 'EdDSA', claims()), { expectedJkt: jkt })));
    const bound = await craft(key, 'EdDSA', claims({ ath: await ath(TOKEN) }));
    assertAccepted(await verifyDpopProof(check(bound, { accessToken: TOKEN, expectedJkt: jkt })));
  });

  it('accepts a jwk header written as WebCrypto exports it (key_ops, ext, alg), bound to the same thumbprint', async () => {
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const keys = await DPoP.generateKeyPair(alg);
      const jwk = (await crypto.subtle.exportKey('jwk', keys.publicKey)) as JWK;
      assert.deepEqual(jwk.key_ops, ['verify']);
      const proof = await craft({ privateKey: keys.privateKey, jwk }, alg, claims());
      const result = await verifyDpopProof(check(proof, { expectedJkt: await DPoP.calculateThumbprint(keys.publicKey) }));
      assertAccepted(result);
      assert.equal(Object.hasOwn(result.jwk, 'key_ops'), false, 'only the key members are kept');
    }
  });

  it('ignores the query and fragment and normalises scheme, host case and default port (RFC 9449 §4.3)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const withQuery = await DPoP.generateProof(keys, `${URL_EXPECTED}?a=1#frag`, 'POST');
    assertAccepted(await verifyDpopProof(check(withQuery)));
    const upper = await DPoP.generateProof(keys, 'HTTPS://GATE.EXAMPLE:8443/api/v1/act', 'POST');
    assertAccepted(await verifyDpopProof(check(upper)));
    const defaultPort = await DPoP.generateProof(keys, 'https://gate.example:443/api/v1/act', 'POST');
    assertAccepted(await verifyDpopProof(check(defaultPort, { url: 'https://gate.example/api/v1/act' })));
  });

  it('accepts an iat just inside the window, in either direction', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    assertAccepted(await verifyDpopProof(check(proof, { now: Date.now() + (WINDOW - 2) * 1000 })));
    const early = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    assertAccepted(await verifyDpopProof(check(early, { now: Date.now() - (WINDOW - 2) * 1000 })));
  });

  it('records the jti until iat + window', async () => {
    const key = await signer('ES256');
    const iat = Math.floor(Date.now() / 1000);
    const replay = new MemoryReplayStore();
    assertAccepted(await verifyDpopProof(check(await craft(key, 'ES256', claims({ iat, jti: 'jti-1' })), { replay })));
    assert.deepEqual([...replay.seen], [['jti-1', (iat + WINDOW) * 1000]]);
  });

  it('accepts a proof just under the size limit', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST', undefined, undefined, { pad: 'x'.repeat(5600) });
    assert.ok(proof.length > 7900 && proof.length <= 8192, `length ${proof.length}`);
    assertAccepted(await verifyDpopProof(check(proof)));
  });
});

describe('DPoP proofs: refused', () => {
  it('refuses a replayed proof (DPOP_REPLAY)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    const replay = new MemoryReplayStore();
    assertAccepted(await verifyDpopProof(check(proof, { replay })));
    assertRefused(await verifyDpopProof(check(proof, { replay })), 'DPOP_REPLAY', proof);
  });

  it('refuses an htu for another path, host, scheme or port, or with a trailing slash (DPOP_HTU_MISMATCH)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    for (const htu of [
      'https://gate.example:8443/api/v1/other',
      'https://evil.example:8443/api/v1/act',
      'http://gate.example:8443/api/v1/act',
      'https://gate.example:9443/api/v1/act',
      'https://gate.example/api/v1/act',
      'https://gate.example:8443/api/v1/act/',
      'https://user@gate.example:8443/api/v1/act',
      '/api/v1/act',
      'not a url',
    ]) {
      const proof = await DPoP.generateProof(keys, htu, 'POST');
      assertRefused(await verifyDpopProof(check(proof)), 'DPOP_HTU_MISMATCH', proof);
    }
  });

  it('refuses another method, compared exactly (DPOP_HTM_MISMATCH)', async () => {
    const keys = await DPoP.generateKeyPair('Ed25519');
    for (const htm of ['GET', 'post']) {
      const proof = await DPoP.generateProof(keys, URL_EXPECTED, htm);
      assertRefused(await verifyDpopProof(check(proof)), 'DPOP_HTM_MISMATCH', proof);
    }
  });

  it('refuses a stale iat (checked 10 minutes later) (DPOP_IAT_OUT_OF_WINDOW)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    assertRefused(await verifyDpopProof(check(proof, { now: Date.now() + 10 * 60_000 })), 'DPOP_IAT_OUT_OF_WINDOW', proof);
  });

  it('refuses an iat in the future (DPOP_IAT_OUT_OF_WINDOW)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    assertRefused(await verifyDpopProof(check(proof, { now: Date.now() - 10 * 60_000 })), 'DPOP_IAT_OUT_OF_WINDOW', proof);
    const key = await signer('ES256');
    const ahead = await craft(key, 'ES256', claims({ iat: Math.floor(Date.now() / 1000) + 2 * WINDOW }));
    assertRefused(await verifyDpopProof(check(ahead)), 'DPOP_IAT_OUT_OF_WINDOW', ahead);
  });

  it('refuses a proof from a key other than the enrolled one (DPOP_KEY_MISMATCH)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const other = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    const expectedJkt = await DPoP.calculateThumbprint(other.publicKey);
    assertRefused(await verifyDpopProof(check(proof, { expectedJkt })), 'DPOP_KEY_MISMATCH', proof);
  });

  it('refuses a proof without ath when an access token is presented (DPOP_ATH_MISSING)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST');
    assertRefused(await verifyDpopProof(check(proof, { accessToken: TOKEN })), 'DPOP_ATH_MISSING', proof);
  });

  it('refuses an ath for another access token (DPOP_ATH_MISMATCH)', async () => {
    const keys = await DPoP.generateKeyPair('Ed25519');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST', undefined, 'some-other-token');
    assertRefused(await verifyDpopProof(check(proof, { accessToken: TOKEN })), 'DPOP_ATH_MISMATCH', proof);
  });

  it('refuses alg "none" with an empty signature (DPOP_BAD_ALG)', async () => {
    const key = await signer('ES256');
    const proof = `${b64u(JSON.stringify({ typ: 'dpop+jwt', alg: 'none', jwk: key.jwk }))}.${b64u(JSON.stringify(claims()))}.`;
    assertRefused(await verifyDpopProof(check(proof)), 'DPOP_BAD_ALG', proof);
  });

  it('refuses HS256, RS256 and ES384 proofs (DPOP_BAD_ALG)', async () => {
    const secret = new TextEncoder().encode('a shared secret the attacker chose, 32+ bytes long');
    const ec = await signer('ES256');
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: ec.jwk }).sign(secret);
    assertRefused(await verifyDpopProof(check(hs)), 'DPOP_BAD_ALG', hs);
    const rs = await DPoP.generateProof(await DPoP.generateKeyPair('RS256'), URL_EXPECTED, 'POST');
    assertRefused(await verifyDpopProof(check(rs)), 'DPOP_BAD_ALG', rs);
    const p384 = await generateKeyPair('ES384');
    const es384 = await craft({ privateKey: p384.privateKey, jwk: await exportJWK(p384.publicKey) }, 'ES384', claims());
    assertRefused(await verifyDpopProof(check(es384)), 'DPOP_BAD_ALG', es384);
  });

  it('refuses an alg that does not fit the key type (DPOP_BAD_ALG)', async () => {
    const ed = await signer('Ed25519');
    const es256OnEd = await handSign({ typ: 'dpop+jwt', alg: 'ES256', jwk: ed.jwk }, claims(), ed.privateKey, { name: 'Ed25519' });
    assertRefused(await verifyDpopProof(check(es256OnEd)), 'DPOP_BAD_ALG', es256OnEd);
    const ec = await signer('ES256');
    for (const alg of ['EdDSA', 'Ed25519']) {
      const edOnEc = await handSign({ typ: 'dpop+jwt', alg, jwk: ec.jwk }, claims(), ec.privateKey, { name: 'ECDSA', hash: 'SHA-256' });
      assertRefused(await verifyDpopProof(check(edOnEc)), 'DPOP_BAD_ALG', edOnEc);
    }
  });

  it('refuses a jwk header whose own members contradict the key, saying which (DPOP_MALFORMED)', async () => {
    const key = await signer('Ed25519');
    const cases: [JWK, RegExp][] = [[{ alg: 'ES256' }, /alg "ES256" does not fit/], [{ key_ops: ['sign'] }, /key_ops does not include "verify"/], [{ use: 'enc' }, /use "enc"/]];
    for (const [extra, reason] of cases) {
      const proof = await craft({ privateKey: key.privateKey, jwk: { ...key.jwk, ...extra } }, 'EdDSA', claims());
      const result = await verifyDpopProof(check(proof));
      assertRefused(result, 'DPOP_MALFORMED', proof);
      assert.match(result.ok ? '' : result.message, reason);
    }
  });

  it('refuses typ "JWT" or a missing typ (DPOP_BAD_TYP)', async () => {
    const key = await signer('ES256');
    const jwt = await craft(key, 'ES256', claims(), { typ: 'JWT' });
    assertRefused(await verifyDpopProof(check(jwt)), 'DPOP_BAD_TYP', jwt);
    const none = await handSign({ alg: 'ES256', jwk: key.jwk }, claims(), key.privateKey, { name: 'ECDSA', hash: 'SHA-256' });
    assertRefused(await verifyDpopProof(check(none)), 'DPOP_BAD_TYP', none);
  });

  it('refuses a jwk header carrying the private key (DPOP_MALFORMED)', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(pair.privateKey);
    assert.equal(typeof privateJwk.d, 'string');
    const proof = await craft({ privateKey: pair.privateKey, jwk: privateJwk }, 'ES256', claims());
    const result = await verifyDpopProof(check(proof));
    assertRefused(result, 'DPOP_MALFORMED', proof);
    assert.match(result.ok ? '' : result.message, /private member "d"/);
    assert.ok(!(result.ok ? '' : result.message).includes(privateJwk.d ?? '?'), 'the message echoes the private key');
  });

  it('refuses a proof without a jwk, with a point off the curve, or with crit/b64 headers (DPOP_MALFORMED)', async () => {
    const key = await signer('ES256');
    const noJwk = await handSign({ typ: 'dpop+jwt', alg: 'ES256' }, claims(), key.privateKey, { name: 'ECDSA', hash: 'SHA-256' });
    assertRefused(await verifyDpopProof(check(noJwk)), 'DPOP_MALFORMED', noJwk);
    const b64 = await craft(key, 'ES256', claims(), { b64: true, crit: ['b64'] });
    assertRefused(await verifyDpopProof(check(b64)), 'DPOP_MALFORMED', b64);
    const offCurve = { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'A'.repeat(43) };
    const bad = await handSign({ typ: 'dpop+jwt', alg: 'ES256', jwk: offCurve }, claims(), key.privateKey, { name: 'ECDSA', hash: 'SHA-256' });
    assertRefused(await verifyDpopProof(check(bad)), 'DPOP_MALFORMED', bad);
  });

  it('refuses a tampered payload (DPOP_BAD_SIGNATURE)', async () => {
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const keys = await DPoP.generateKeyPair(alg);
      const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'GET');
      const [header, payload, signature] = segments(proof);
      const altered = { ...(JSON.parse(Buffer.from(payload, 'base64url').toString()) as object), htm: 'POST' };
      const tampered = `${header}.${b64u(JSON.stringify(altered))}.${signature}`;
      assertRefused(await verifyDpopProof(check(tampered)), 'DPOP_BAD_SIGNATURE', tampered);
    }
  });

  it('refuses a signature of the wrong length, for each alg (DPOP_BAD_SIGNATURE)', async () => {
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const proof = await DPoP.generateProof(await DPoP.generateKeyPair(alg), URL_EXPECTED, 'POST');
      const [header, payload, signature] = segments(proof);
      const bytes = Buffer.from(signature, 'base64url');
      for (const wrong of [bytes.subarray(0, 63), Buffer.concat([bytes, Buffer.from([0])]), Buffer.alloc(0)]) {
        const bad = `${header}.${payload}.${wrong.toString('base64url')}`;
        assertRefused(await verifyDpopProof(check(bad)), 'DPOP_BAD_SIGNATURE', bad);
      }
      assertAccepted(await verifyDpopProof(check(proof)));
    }
  });

  it('refuses a signature by a key other than the embedded jwk (DPOP_BAD_SIGNATURE)', async () => {
    const key = await signer('Ed25519');
    const other = await signer('Ed25519');
    const proof = await craft({ privateKey: other.privateKey, jwk: key.jwk }, 'Ed25519', claims());
    assertRefused(await verifyDpopProof(check(proof)), 'DPOP_BAD_SIGNATURE', proof);
  });

  it('refuses a proof over 8 KiB before parsing it (DPOP_MALFORMED)', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, URL_EXPECTED, 'POST', undefined, undefined, { pad: 'x'.repeat(9000) });
    assertRefused(await verifyDpopProof(check(proof)), 'DPOP_MALFORMED', proof);
    assertRefused(await verifyDpopProof(check('a'.repeat(8193))), 'DPOP_MALFORMED');
  });

  it('refuses garbage (DPOP_MALFORMED)', async () => {
    const json = (value: unknown) => b64u(JSON.stringify(value));
    for (const proof of [
      'garbage',
      'a.b',
      'a.b.c.d',
      '..',
      '!!!.###.$$$',
      'eyJ.eyJ.sig',
      `${b64u('not json')}.${json({})}.sig`,
      `${json([1, 2])}.${json({})}.sig`,
      `${json('string')}.${json({})}.sig`,
      `${b64u(new Uint8Array([0xff, 0xfe, 0x7b]))}.${json({})}.sig`,
      ` ${json({ typ: 'dpop+jwt' })}.${json({})}.sig`,
    ]) {
      assertRefused(await verifyDpopProof(check(proof)), 'DPOP_MALFORMED');
    }
  });

  it('refuses malformed claims in a validly signed proof (DPOP_MALFORMED)', async () => {
    const key = await signer('ES256');
    for (const extra of [
      { htm: undefined },
      { htu: 42 },
      { iat: '1700000000' },
      { iat: undefined },
      { jti: undefined },
      { jti: '' },
      { jti: 'j'.repeat(257) },
      { jti: 7 },
      { ath: 5 },
    ]) {
      const proof = await craft(key, 'ES256', claims(extra));
      assertRefused(await verifyDpopProof(check(proof, { accessToken: TOKEN })), 'DPOP_MALFORMED', proof);
    }
  });

  it('refuses a missing header (DPOP_MISSING)', async () => {
    assertRefused(await verifyDpopProof(check(undefined)), 'DPOP_MISSING');
    assertRefused(await verifyDpopProof(check('')), 'DPOP_MISSING');
  });

  it('throws (a gate bug, not a client fault) when the expected URL is not an absolute http(s) URL', async () => {
    const keys = await DPoP.generateKeyPair('ES256');
    const proof = await DPoP.generateProof(keys, '/api/v1/act', 'POST');
    await assert.rejects(verifyDpopProof(check(proof, { url: '/api/v1/act' })), { code: 'INVALID_ARGUMENT' });
  });
});

describe('DPoP proofs: a refused proof does not burn its jti', () => {
  it('accepts a valid proof whose jti appeared in proofs refused for every other reason', async () => {
    const key = await signer('ES256');
    const other = await signer('ES256');
    const replay = new MemoryReplayStore();
    const jti = 'shared-jti-0001';
    const refusals: [string, Promise<string>, Partial<DpopCheck>][] = [
      ['DPOP_HTM_MISMATCH', craft(key, 'ES256', claims({ jti, htm: 'GET' })), {}],
      ['DPOP_HTU_MISMATCH', craft(key, 'ES256', claims({ jti, htu: 'https://gate.example:8443/other' })), {}],
      ['DPOP_IAT_OUT_OF_WINDOW', craft(key, 'ES256', claims({ jti, iat: Math.floor(Date.now() / 1000) - 600 })), {}],
      ['DPOP_ATH_MISSING', craft(key, 'ES256', claims({ jti })), { accessToken: TOKEN }],
      ['DPOP_ATH_MISMATCH', craft(key, 'ES256', claims({ jti, ath: 'x' })), { accessToken: TOKEN }],
      ['DPOP_KEY_MISMATCH', craft(other, 'ES256', claims({ jti })), { expectedJkt: await jwkThumbprint(key.jwk) }],
      ['DPOP_BAD_SIGNATURE', craft({ privateKey: other.privateKey, jwk: key.jwk }, 'ES256', claims({ jti })), {}],
      ['DPOP_BAD_TYP', craft(key, 'ES256', claims({ jti }), { typ: 'JWT' }), {}],
    ];
    for (const [code, proof, overrides] of refusals) {
      assertRefused(await verifyDpopProof(check(await proof, { replay, ...overrides })), code);
      assert.equal(replay.seen.size, 0, `${code} recorded the jti`);
    }
    const valid = await craft(key, 'ES256', claims({ jti, ath: await ath(TOKEN) }));
    assertAccepted(await verifyDpopProof(check(valid, { replay, accessToken: TOKEN, expectedJkt: await jwkThumbprint(key.jwk) })));
    assert.deepEqual([...replay.seen.keys()], [jti]);
  });
});

describe('jwkThumbprint', () => {
  it('matches RFC 8037 A.3 and the dpop package', async () => {
    const rfc = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    assert.equal(await jwkThumbprint(rfc), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const keys = await DPoP.generateKeyPair(alg);
      assert.equal(await jwkThumbprint(await exportJWK(keys.publicKey)), await DPoP.calculateThumbprint(keys.publicKey));
    }
  });
});
