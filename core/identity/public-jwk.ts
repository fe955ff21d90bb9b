/**
 * The public keys agents prove possession of: an EC P-256 key (ES256) or an OKP Ed25519 key (EdDSA, or Ed25519
 * per RFC 9864), as a JWK sent at enrollment, at delegation and in every DPoP proof header. Attacker-controlled.
 *
 * Standard public JWKs are accepted as their makers write them (RFC 7517 §4): WebCrypto's `exportKey('jwk')`
 * adds `key_ops` and `ext` (and `alg: "Ed25519"`), other libraries add `alg`, `use` or `kid`. Each registered
 * member present must be consistent with the key: `alg` names the algorithm of this key type, `use` is `sig`,
 * `key_ops` is a list of distinct operations that includes `verify`, `kid` is a string and `ext` a boolean.
 * Certificate members (`x5c`, `x5t`, `x5t#S256`, `x5u`) are refused rather than trusted unchecked. Members this
 * module does not know are ignored, as RFC 7517 requires.
 *
 * Refused, with the reason: anything that is not an object, a private or symmetric member (`d`, `k`, …), another
 * key type or curve, a coordinate that is not 32 bytes of canonical base64url, an inconsistent registered member.
 * What is kept is a fresh copy of the required members only (RFC 7638 §3.2), so the thumbprint, the stored key
 * and the key a proof is checked with never depend on the optional or unknown members.
 */

export type PublicJwk = { kty: 'EC'; crv: 'P-256'; x: string; y: string } | { kty: 'OKP'; crv: 'Ed25519'; x: string };

export type PublicJwkResult = { ok: true; key: PublicJwk } | { ok: false; reason: string };

/** The JWS algorithms each accepted key type is used with; EdDSA and Ed25519 name the same algorithm here. */
export const ALGS_FOR: Readonly<Record<PublicJwk['kty'], readonly string[]>> = { EC: ['ES256'], OKP: ['EdDSA', 'Ed25519'] };

/** Members that would make a JWK a private (or symmetric) key, in every key type RFC 7518, 8037 and 9864 define. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
/** X.509 members: a certificate chain or URL the gate would have to check against the key, which it does not. */
const CERTIFICATE_MEMBERS = ['x5c', 'x5t', 'x5t#S256', 'x5u'];
/** RFC 7517 §4.3 operations; a public key used for DPoP must allow `verify`. */
const KEY_OPS = ['sign', 'verify', 'encrypt', 'decrypt', 'wrapKey', 'unwrapKey', 'deriveKey', 'deriveBits'];
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;
const MAX_KID_LENGTH = 256;

export function readPublicJwk(jwk: unknown): PublicJwkResult {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return refuse('it is not a JSON object');
  const members = Object.keys(jwk);
  const secret = members.find((name) => PRIVATE_MEMBERS.includes(name));
  if (secret !== undefined) return refuse(`it carries the private member "${secret}"; send the public key only`);
  const certificate = members.find((name) => CERTIFICATE_MEMBERS.includes(name));
  if (certificate !== undefined) return refuse(`certificate member "${certificate}" is not checked by lattice; send the key without x5c, x5t, x5t#S256 and x5u`);
  const { kty, crv, x, y } = jwk as Record<string, unknown>;
  let key: PublicJwk;
  if (kty === 'EC' && crv === 'P-256') {
    if (!isCoordinate(x)) return refuse('x must be 32 bytes of base64url');
    if (!isCoordinate(y)) return refuse('y must be 32 bytes of base64url');
    key = { kty, crv, x, y };
  } else if (kty === 'OKP' && crv === 'Ed25519') {
    if (!isCoordinate(x)) return refuse('x must be 32 bytes of base64url');
    if (Object.hasOwn(jwk, 'y')) return refuse('an Ed25519 key has no "y" member');
    key = { kty, crv, x };
  } else {
    return refuse(`kty ${quote(kty)} with crv ${quote(crv)} is not accepted; use EC P-256 or OKP Ed25519`);
  }
  const inconsistent = checkRegisteredMembers(jwk as Record<string, unknown>, key);
  return inconsistent === undefined ? { ok: true, key } : refuse(inconsistent);
}

/** The reason a registered optional member contradicts the key (RFC 7517 §4.2–4.5), or undefined. */
function checkRegisteredMembers(jwk: Record<string, unknown>, key: PublicJwk): string | undefined {
  const { alg, use, key_ops: keyOps, kid, ext } = jwk;
  const algs = ALGS_FOR[key.kty];
  if (Object.hasOwn(jwk, 'alg') && !algs.includes(alg as string)) {
    return `alg ${quote(alg)} does not fit this ${key.kty} ${key.crv} key; use ${algs.join(' or ')}, or leave alg out`;
  }
  if (Object.hasOwn(jwk, 'use') && use !== 'sig') return `use ${quote(use)} is not "sig"; a DPoP key signs`;
  if (Object.hasOwn(jwk, 'key_ops')) {
    if (!Array.isArray(keyOps) || keyOps.some((op) => typeof op !== 'string')) return 'key_ops must be an array of strings';
    const unknown = (keyOps as string[]).find((op) => !KEY_OPS.includes(op));
    if (unknown !== undefined) return `key_ops holds ${quote(unknown)}, which is not an operation of RFC 7517 §4.3`;
    if (new Set(keyOps).size !== keyOps.length) return 'key_ops repeats an operation';
    if (!keyOps.includes('verify')) return 'key_ops does not include "verify"; the gate verifies signatures with this key';
  }
  if (Object.hasOwn(jwk, 'kid') && (typeof kid !== 'string' || kid.length > MAX_KID_LENGTH)) return `kid must be a string of at most ${MAX_KID_LENGTH} characters`;
  if (Object.hasOwn(jwk, 'ext') && typeof ext !== 'boolean') return 'ext must be true or false';
  return undefined;
}

function isCoordinate(value: unknown): value is string {
  return typeof value === 'string' && COORDINATE.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value;
}

function refuse(reason: string): PublicJwkResult {
  return { ok: false, reason };
}

/** A short, escaped rendering of an attacker-controlled value for a message. */
export function quote(value: unknown): string {
  let text: string;
  if (value === undefined) text = 'missing';
  else if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null) text = String(value);
  else text = Array.isArray(value) ? 'an array' : 'an object';
  return text.length > 48 ? `${text.slice(0, 45)}...` : text;
}
