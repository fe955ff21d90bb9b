/**
 * The public JWKs agents send (enrollment, delegation, DPoP proof headers): standard keys are accepted as
 * WebCrypto, the `dpop` package and jose write them; inconsistent registered members, private members and other
 * key types are refused with the exact reason; the thumbprint comes from the required members only (RFC 7638),
 * checked against jose's and the dpop package's own.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as DPoP from 'dpop';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { jwkThumbprint } from '../../core/identity/dpop.ts';
import { readPublicJwk } from '../../core/identity/public-jwk.ts';

type Made = { name: string; jwk: JWK; publicKey: CryptoKey };

/** Public keys as each maker exports them, untouched (WebCrypto and dpop) or with the alg its key was made for (jose). */
async function standardKeys(): Promise<Made[]> {
  const made: Made[] = [];
  type Pair = { publicKey: CryptoKey; privateKey: CryptoKey };
  const ec = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const ed = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as Pair;
  made.push({ name: 'WebCrypto ES256', jwk: await crypto.subtle.exportKey('jwk', ec.publicKey), publicKey: ec.publicKey });
  made.push({ name: 'WebCrypto Ed25519', jwk: await crypto.subtle.exportKey('jwk', ed.publicKey), publicKey: ed.publicKey });
  for (const alg of ['ES256', 'Ed25519'] as const) {
    const keys = await DPoP.generateKeyPair(alg);
    made.push({ name: `dpop ${alg}`, jwk: await crypto.subtle.exportKey('jwk', keys.publicKey), publicKey: keys.publicKey });
  }
  for (const alg of ['ES256', 'EdDSA', 'Ed25519'] as const) {
    const keys = await generateKeyPair(alg, { extractable: true });
    made.push({ name: `jose ${alg}`, jwk: { ...(await exportJWK(keys.publicKey)), alg, use: 'sig', kid: `k-${alg}` }, publicKey: keys.publicKey });
  }
  return made;
}

function reasonOf(jwk: unknown): string {
  const read = readPublicJwk(jwk);
  assert.equal(read.ok, false, `accepted ${JSON.stringify(jwk)}`);
  return read.ok ? '' : read.reason;
}

describe('readPublicJwk: standard public keys', () => {
  it('standard-jwk-refused: accepts WebCrypto, dpop and jose exports (key_ops, ext, alg, use, kid) for ES256, EdDSA and Ed25519', async () => {
    const made = await standardKeys();
    assert.ok(made.some((m) => m.jwk.key_ops !== undefined && m.jwk.ext === true && m.jwk.alg === 'Ed25519'), 'WebCrypto writes key_ops, ext and alg');
    for (const { name, jwk } of made) {
      const read = readPublicJwk(jwk);
      assert.equal(read.ok, true, `${name}: ${read.ok ? '' : read.reason}`);
      if (!read.ok) continue;
      const required = jwk.kty === 'EC' ? { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } : { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
      assert.deepEqual(read.key, required, `${name}: only the required members are kept`);
    }
  });

  it('takes the RFC 7638 thumbprint from the required members only, as jose and the dpop package do', async () => {
    for (const { name, jwk, publicKey } of await standardKeys()) {
      const jkt = await jwkThumbprint(jwk);
      assert.equal(jkt, await calculateJwkThumbprint(jwk, 'sha256'), name);
      assert.equal(jkt, await DPoP.calculateThumbprint(publicKey), name);
      assert.equal(jkt, await jwkThumbprint({ ...jwk, kid: 'another', 'x-vendor': 1 }), `${name}: optional members do not change it`);
    }
  });

  it('ignores members it does not know (RFC 7517 §4), whatever their value', async () => {
    const jwk = await exportJWK((await generateKeyPair('Ed25519')).publicKey);
    const read = readPublicJwk({ ...jwk, 'x-vendor': { d: 'not a private member here' }, hint: [1, 2] });
    assert.equal(read.ok, true);
    const proto = readPublicJwk(JSON.parse(`{"kty":"OKP","crv":"Ed25519","x":"${jwk.x ?? ''}","__proto__":{"d":"x"}}`));
    assert.deepEqual(proto, { ok: true, key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x } }, 'an own __proto__ member is ignored, not inherited');
  });
});

describe('readPublicJwk: refused, with the reason', () => {
  it('jwk-inconsistent-members: refuses an alg for another key type, key_ops without verify, use other than sig, and malformed members', async () => {
    const ec = await exportJWK((await generateKeyPair('ES256')).publicKey);
    const ed = await exportJWK((await generateKeyPair('Ed25519')).publicKey);
    const cases: [string, unknown, string][] = [
      ['ES256 on an Ed25519 key', { ...ed, alg: 'ES256' }, 'alg "ES256" does not fit this OKP Ed25519 key; use EdDSA or Ed25519, or leave alg out'],
      ['EdDSA on a P-256 key', { ...ec, alg: 'EdDSA' }, 'alg "EdDSA" does not fit this EC P-256 key; use ES256, or leave alg out'],
      ['Ed25519 on a P-256 key', { ...ec, alg: 'Ed25519' }, 'alg "Ed25519" does not fit this EC P-256 key'],
      ['ES384', { ...ec, alg: 'ES384' }, 'alg "ES384" does not fit this EC P-256 key'],
      ['alg not a string', { ...ec, alg: 256 }, 'alg 256 does not fit'],
      ['key_ops without verify', { ...ec, key_ops: ['sign'] }, 'key_ops does not include "verify"; the gate verifies signatures with this key'],
      ['empty key_ops', { ...ed, key_ops: [] }, 'key_ops does not include "verify"'],
      ['key_ops repeated', { ...ed, key_ops: ['verify', 'verify'] }, 'key_ops repeats an operation'],
      ['key_ops unknown', { ...ed, key_ops: ['verify', 'launch'] }, 'key_ops holds "launch", which is not an operation of RFC 7517 §4.3'],
      ['key_ops a string', { ...ed, key_ops: 'verify' }, 'key_ops must be an array of strings'],
      ['use enc', { ...ec, use: 'enc' }, 'use "enc" is not "sig"; a DPoP key signs'],
      ['kid a number', { ...ec, kid: 7 }, 'kid must be a string of at most 256 characters'],
      ['ext a string', { ...ed, ext: 'true' }, 'ext must be true or false'],
      ['a private member', { ...ed, d: 'A'.repeat(43) }, 'it carries the private member "d"; send the public key only'],
      ['a symmetric member', { ...ed, k: 'c2VjcmV0' }, 'it carries the private member "k"'],
      ['a certificate chain', { ...ec, x5c: ['MIIB'] }, 'certificate member "x5c" is not checked by lattice'],
      ['y on an Ed25519 key', { ...ed, y: ed.x }, 'an Ed25519 key has no "y" member'],
    ];
    for (const [name, jwk, reason] of cases) assert.ok(reasonOf(jwk).startsWith(reason), `${name}: ${reasonOf(jwk)}`);
  });

  it('refuses RSA, P-384, X25519, private keys and other key types', async () => {
    const exported = async (pair: Promise<{ publicKey: CryptoKey; privateKey: CryptoKey }>, which: 'publicKey' | 'privateKey' = 'publicKey') =>
      exportJWK((await pair)[which]);
    const ec = await exported(generateKeyPair('ES256', { extractable: true }), 'privateKey');
    const ed = await exported(generateKeyPair('Ed25519', { extractable: true }), 'privateKey');
    const x = (await exported(generateKeyPair('Ed25519'))).x;
    const refused: [string, unknown, string][] = [
      ['RSA', await exported(generateKeyPair('RS256')), 'kty "RSA" with crv missing is not accepted'],
      ['P-384', await exported(generateKeyPair('ES384')), 'kty "EC" with crv "P-384" is not accepted'],
      ['X25519', await exported(generateKeyPair('ECDH-ES', { crv: 'X25519' })), 'kty "OKP" with crv "X25519" is not accepted'],
      ['EC private', ec, 'it carries the private member "d"'],
      ['OKP private', ed, 'it carries the private member "d"'],
      ['oct', { kty: 'oct', k: 'c2VjcmV0' }, 'it carries the private member "k"'],
      ['AKP', { kty: 'AKP', alg: 'ML-DSA-44', pub: x }, 'kty "AKP"'],
      ['secp256k1', { kty: 'EC', crv: 'secp256k1', x, y: x }, 'kty "EC" with crv "secp256k1"'],
      ['Ed448', { kty: 'OKP', crv: 'Ed448', x }, 'kty "OKP" with crv "Ed448"'],
      ['EC without y', { kty: 'EC', crv: 'P-256', x }, 'y must be 32 bytes of base64url'],
      ['short x', { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }, 'x must be 32 bytes of base64url'],
      ['non-canonical x', { kty: 'OKP', crv: 'Ed25519', x: `${x?.slice(0, 42)}_` }, 'x must be 32 bytes'],
      ['numeric x', { kty: 'OKP', crv: 'Ed25519', x: 5 }, 'x must be 32 bytes'],
      ['null', null, 'it is not a JSON object'],
      ['string', 'OKP', 'it is not a JSON object'],
      ['array', [{ kty: 'OKP', crv: 'Ed25519', x }], 'it is not a JSON object'],
    ];
    for (const [name, jwk, reason] of refused) assert.ok(reasonOf(jwk).startsWith(reason), `${name}: ${reasonOf(jwk)}`);
  });

  it('refuses to take the thumbprint of a key it would never accept, saying why', async () => {
    const rsa = await exportJWK((await generateKeyPair('RS256')).publicKey);
    await assert.rejects(jwkThumbprint(rsa), { code: 'KEY_INVALID', message: /kty "RSA"/ });
  });
});
