/**
 * The only module that touches node:crypto (through ./node.ts, which loads it on first use): digests, HMAC, Ed25519
 * keys and signatures, constant-time comparison and random identifiers. Everything else goes through these
 * functions, so the primitives in use can be audited here.
 *
 * Fails closed: a malformed key, signature or encoding makes `verifySignature` return false, never throw a
 * "maybe valid".
 */
import type { KeyObject } from 'node:crypto';
import { nodeCrypto } from './node.ts';

export type { KeyObject };

/** SHA-256 of a string (UTF-8) or bytes, lowercase hex. One-shot `crypto.hash` is about twice as fast as createHash. */
export function sha256Hex(data: string | Uint8Array): string {
  return typeof data === 'string' ? nodeCrypto().hash('sha256', data, 'hex') : nodeCrypto().createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of a string or bytes as base64url (used for JWK thumbprints). */
export function sha256Base64url(data: string | Uint8Array): string {
  return nodeCrypto().createHash('sha256').update(data).digest('base64url');
}

/** HMAC-SHA256 of the UTF-8 bytes of `data` under `key` (webhook signatures). */
export function hmacSha256(key: Uint8Array, data: string): Buffer {
  return nodeCrypto().createHmac('sha256', key).update(data, 'utf8').digest();
}

/** Compares two strings in constant time with respect to their contents (length is not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return nodeCrypto().timingSafeEqual(left, right);
}

/** A random identifier: `prefix_` + 128 bits of randomness in base64url. */
export function randomId(prefix: string): string {
  return `${prefix}_${nodeCrypto().randomBytes(16).toString('base64url')}`;
}

export function randomToken(bytes = 32): string {
  return nodeCrypto().randomBytes(bytes).toString('base64url');
}

export interface Ed25519KeyPair {
  /** PKCS#8 PEM; the only form in which a private key is written to disk. */
  readonly privateKeyPem: string;
  /** Raw 32-byte public key, base64url (the JWK `x` member). */
  readonly publicKey: string;
  /** RFC 7638 JWK thumbprint of the public key; used as the key id everywhere. */
  readonly keyId: string;
}

export function generateEd25519(): Ed25519KeyPair {
  const { privateKey, publicKey } = nodeCrypto().generateKeyPairSync('ed25519');
  const x = rawPublicKey(publicKey);
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: x,
    keyId: ed25519Thumbprint(x),
  };
}

/** A fresh Ed25519 key pair as JWKs, e.g. an agent's DPoP key (synchronous: no WebCrypto start-up on first use). */
export function generateEd25519Jwks(): { publicJwk: Record<string, string>; privateJwk: Record<string, string> } {
  const { publicKey, privateKey } = nodeCrypto().generateKeyPairSync('ed25519');
  return { publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, string>, privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, string> };
}

/** RFC 7638 thumbprint of an Ed25519 OKP JWK: members crv, kty, x in lexicographic order, no whitespace. */
export function ed25519Thumbprint(x: string): string {
  return sha256Base64url(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`);
}

export function loadEd25519PrivateKey(pem: string): { key: KeyObject; publicKey: string; keyId: string } {
  const key = nodeCrypto().createPrivateKey({ key: pem, format: 'pem' });
  if (key.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  const x = rawPublicKey(nodeCrypto().createPublicKey(key));
  return { key, publicKey: x, keyId: ed25519Thumbprint(x) };
}

export function loadEd25519PublicKey(x: string): KeyObject {
  const raw = Buffer.from(x, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== x) throw new Error('an Ed25519 public key is 32 bytes of base64url');
  return nodeCrypto().createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

/** Ed25519 signature over the UTF-8 bytes of `message`, base64url. */
export function signEd25519(privateKey: KeyObject, message: string): string {
  return nodeCrypto().sign(null, Buffer.from(message, 'utf8'), privateKey).toString('base64url');
}

/** `signEd25519` on libuv's thread pool. */
export function signEd25519Async(privateKey: KeyObject, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    nodeCrypto().sign(null, Buffer.from(message, 'utf8'), privateKey, (error, signature) => (error === null ? resolve(signature.toString('base64url')) : reject(error)));
  });
}

export function verifyEd25519(publicKey: KeyObject, message: string, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64url');
  if (sig.length !== 64 || sig.toString('base64url') !== signature) return false;
  try {
    return nodeCrypto().verify(null, Buffer.from(message, 'utf8'), publicKey, sig);
  } catch {
    // A key/signature the library cannot process is an invalid signature, not an error to pass through.
    return false;
  }
}

function rawPublicKey(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('Ed25519 public key without x');
  return jwk.x;
}

/** A public key from a JWK its caller has already checked: EC P-256 {kty, crv, x, y} or OKP Ed25519 {kty, crv, x}. */
export function publicKeyFromJwk(jwk: { readonly kty: string; readonly crv: string; readonly x: string; readonly y?: string }): KeyObject {
  return nodeCrypto().createPublicKey({ key: { ...jwk }, format: 'jwk' });
}

/**
 * Checks a JWS signature (RFC 7515 §5.2) over the ASCII `signingInput`: ES256 (P-256, r‖s as in RFC 7518 §3.4) or
 * EdDSA (Ed25519). Runs on libuv's thread pool, so the event loop keeps serving while it works. Resolves false for
 * any signature that does not verify, including one OpenSSL cannot even read; never rejects.
 */
export function verifyJwsSignature(alg: 'ES256' | 'EdDSA', key: KeyObject, signingInput: string, signature: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    const input = Buffer.from(signingInput, 'ascii');
    const done = (error: Error | null, ok: boolean) => resolve(error === null && ok);
    try {
      if (alg === 'ES256') nodeCrypto().verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature, done);
      else nodeCrypto().verify(null, input, key, signature, done);
    } catch (error) {
      done(error instanceof Error ? error : new Error(String(error)), false); // a key or signature OpenSSL refuses: not verified
    }
  });
}
