/**
 * RFC 9449 DPoP proof verification for the gate: the `DPoP` header must be a JWT signed by the key it carries,
 * naming this request (method and URL), fresh, bound to the presented access token and never seen before.
 *
 * Fails closed: anything it cannot verify is refused, never passed through. A missing, oversized (> 8 KiB) or
 * unparseable proof, a `typ` other than `dpop+jwt`, any `alg` but ES256 (P-256) and EdDSA/Ed25519 (RFC 9864) or an
 * alg that does not fit the key, a `jwk` that is not a public P-256 or Ed25519 key (public-jwk.ts), a bad signature, a key
 * other than the enrolled one, a wrong `htm`/`htu`, an `iat` outside the window, a missing or wrong `ath` and a
 * replayed `jti` are each refused with their own code. The proof is attacker-controlled: messages name what was
 * wrong and quote at most a short, escaped excerpt of a claim, never the token. The `jti` is recorded only after
 * every other check has passed, so a forged or stale proof cannot burn a legitimate one.
 */
import { calculateJwkThumbprint, type JWK } from 'jose';
import { constantTimeEqual, publicKeyFromJwk, sha256Base64url, verifyJwsSignature, type KeyObject } from '../crypto/index.ts';
import { LatticeError, describeError, type ErrorCode } from '../errors.ts';
import { ALGS_FOR, quote, readPublicJwk, type PublicJwk } from './public-jwk.ts';

/** The DPOP_* codes of core/errors.ts: one list, so the wire table covers every one. */
export type DpopFailureCode = Extract<ErrorCode, `DPOP_${string}`>;

export interface ReplayStore {
  /** Records jti until expiresAt (ms); returns false if it was already recorded (a replay). */
  remember(jti: string, expiresAt: number): boolean;
}

export interface DpopCheck {
  /** The `DPoP` request header. Attacker-controlled. */
  readonly proof: string | undefined;
  /** The request method; `htm` must equal it exactly. */
  readonly method: string;
  /** The URL the gate expects, built from config (never from the Host header). Query and fragment are ignored. */
  readonly url: string;
  /** When present, `ath` = base64url(sha256(accessToken)) is required and must match. */
  readonly accessToken?: string;
  /** The thumbprint bound at enrollment (`cnf.jkt`); when present the proof's jwk must have it. */
  readonly expectedJkt?: string;
  /** The gate's clock, ms since the epoch. */
  readonly now: number;
  /** Accepted |now - iat|, seconds. */
  readonly iatWindowSeconds: number;
  readonly replay: ReplayStore;
}

export type DpopResult = { ok: true; jkt: string; jwk: JWK } | { ok: false; code: DpopFailureCode; message: string };

/** Longest proof read at all; anything longer is refused before it is parsed. */
export const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

type Failure = { ok: false; code: DpopFailureCode; message: string };
type Step<T> = { ok: true; value: T } | Failure;
type Alg = 'ES256' | 'EdDSA' | 'Ed25519';
const SEGMENTS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const UNREPAIRED_URL_CHARACTERS = /[\p{Cc}\s\\]/u;

/**
 * Thumbprints and imported keys of recently seen public keys. An agent signs every proof with the same key, and
 * hashing its thumbprint and importing it cost a good part of checking the signature. Entries are keyed by the
 * exact key members, so a cached value is what computing it again would give; the oldest entry goes first.
 */
const KEY_CACHE_LIMIT = 4096;
const thumbprints = new Map<string, string>();
const importedKeys = new Map<string, KeyObject>();

function cacheKeep<T>(cache: Map<string, T>, key: string, value: T): T {
  if (cache.size >= KEY_CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
  return value;
}

function keyName(jwk: PublicJwk): string {
  return jwk.kty === 'EC' ? `EC.${jwk.x}.${jwk.y}` : `OKP.${jwk.x}`;
}

export async function verifyDpopProof(check: DpopCheck): Promise<DpopResult> {
  const expectedUrl = normaliseUrl(check.url);
  if (expectedUrl === undefined) {
    throw new LatticeError('INVALID_ARGUMENT', `the gate's expected DPoP URL is not an absolute http(s) URL: ${quote(check.url)}`);
  }
  const proof = readProof(check.proof);
  if (!proof.ok) return proof;
  const header = checkHeader(proof.value.header);
  if (!header.ok) return header;
  const { alg, jwk } = header.value;
  const jkt = await jwkThumbprint(jwk);
  if (check.expectedJkt !== undefined && !constantTimeEqual(jkt, check.expectedJkt)) {
    return fail('DPOP_KEY_MISMATCH', 'the proof is signed by a key other than the one bound to this agent');
  }
  const payload = await verifySignature(proof.value.compact, alg, jwk);
  if (!payload.ok) return payload;
  const claims = parseClaims(payload.value);
  if (!claims.ok) return claims;
  const refused = checkClaims(claims.value, check, expectedUrl);
  if (refused !== undefined) return refused;
  const expiresAt = claims.value.iat * 1000 + check.iatWindowSeconds * 1000;
  if (!check.replay.remember(claims.value.jti, expiresAt)) {
    return fail('DPOP_REPLAY', 'this proof (its jti) has already been used');
  }
  return { ok: true, jkt, jwk };
}

/**
 * RFC 7638 SHA-256 thumbprint of an accepted public JWK, from its required members only; any other JWK is a
 * caller bug (readPublicJwk says why a key is refused).
 */
export async function jwkThumbprint(jwk: unknown): Promise<string> {
  const read = readPublicJwk(jwk);
  if (!read.ok) throw new LatticeError('KEY_INVALID', `no thumbprint for this jwk: ${read.reason}`);
  const name = keyName(read.key);
  return thumbprints.get(name) ?? cacheKeep(thumbprints, name, await calculateJwkThumbprint(read.key, 'sha256'));
}

function readProof(value: unknown): Step<{ compact: string; header: Record<string, unknown> }> {
  if (value === undefined || value === '') return fail('DPOP_MISSING', 'the DPoP header is missing');
  if (typeof value !== 'string') return fail('DPOP_MALFORMED', 'the DPoP header is not a single string');
  if (value.length > MAX_PROOF_LENGTH) {
    return fail('DPOP_MALFORMED', `the proof is ${value.length} characters; at most ${MAX_PROOF_LENGTH} are accepted`);
  }
  if (!SEGMENTS.test(value)) return fail('DPOP_MALFORMED', 'the proof is not a compact JWS (three base64url segments)');
  const header = decodeJsonObject(value.slice(0, value.indexOf('.')), 'header');
  if (!header.ok) return header;
  return { ok: true, value: { compact: value, header: header.value } };
}

function checkHeader(header: Record<string, unknown>): Step<{ alg: Alg; jwk: PublicJwk }> {
  if (header['typ'] !== 'dpop+jwt') return fail('DPOP_BAD_TYP', `typ must be "dpop+jwt", not ${quote(header['typ'])}`);
  const alg = header['alg'];
  if (alg !== 'ES256' && alg !== 'EdDSA' && alg !== 'Ed25519') {
    return fail('DPOP_BAD_ALG', `alg ${quote(alg)} is not accepted; use ES256, EdDSA or Ed25519`);
  }
  // Unencoded payloads (b64) and critical extensions change what is signed; a DPoP proof needs neither.
  if (Object.hasOwn(header, 'crit') || Object.hasOwn(header, 'b64')) {
    return fail('DPOP_MALFORMED', 'the proof header must not carry "crit" or "b64"');
  }
  const jwk = readPublicJwk(header['jwk']);
  if (!jwk.ok) return fail('DPOP_MALFORMED', `the jwk header is refused: ${jwk.reason}`);
  if (!ALGS_FOR[jwk.key.kty].includes(alg)) return fail('DPOP_BAD_ALG', `alg ${alg} does not fit a ${jwk.key.kty} ${jwk.key.crv} key`);
  return { ok: true, value: { alg, jwk: jwk.key } };
}

/**
 * The signature over `header.payload` (RFC 7515 §5.2), checked directly rather than with jose's compactVerify: the
 * proof's shape, header, alg and key have been checked above, so what is left is one signature check, and jose's
 * path through WebCrypto costs about 200 µs more per request than node:crypto's own verify on the thread pool.
 */
async function verifySignature(compact: string, alg: Alg, jwk: PublicJwk): Promise<Step<Uint8Array>> {
  const keyId = keyName(jwk);
  let key = importedKeys.get(keyId);
  try {
    key ??= cacheKeep(importedKeys, keyId, publicKeyFromJwk(jwk));
  } catch (error) {
    return fail('DPOP_MALFORMED', `the jwk header is not a usable ${alg} key: ${describeError(error)}`);
  }
  const lastDot = compact.lastIndexOf('.');
  const signingInput = compact.slice(0, lastDot);
  const signature = Buffer.from(compact.slice(lastDot + 1), 'base64url');
  const verified = await verifyJwsSignature(alg === 'ES256' ? 'ES256' : 'EdDSA', key, signingInput, signature);
  if (!verified) return fail('DPOP_BAD_SIGNATURE', 'the signature does not verify with the jwk in the proof header');
  return { ok: true, value: Buffer.from(signingInput.slice(signingInput.indexOf('.') + 1), 'base64url') };
}

interface Claims {
  htm: string;
  htu: string;
  iat: number;
  jti: string;
  ath: string | undefined;
}

function parseClaims(payload: Uint8Array): Step<Claims> {
  const decoded = decodeJsonObject(payload, 'payload');
  if (!decoded.ok) return decoded;
  const { htm, htu, iat, jti, ath } = decoded.value;
  if (typeof htm !== 'string') return fail('DPOP_MALFORMED', 'the htm claim is missing or not a string');
  if (typeof htu !== 'string') return fail('DPOP_MALFORMED', 'the htu claim is missing or not a string');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return fail('DPOP_MALFORMED', 'the iat claim is missing or not a number');
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    return fail('DPOP_MALFORMED', `the jti claim must be a string of 1 to ${MAX_JTI_LENGTH} characters`);
  }
  if (ath !== undefined && typeof ath !== 'string') return fail('DPOP_MALFORMED', 'the ath claim is not a string');
  return { ok: true, value: { htm, htu, iat, jti, ath } };
}

function checkClaims(claims: Claims, check: DpopCheck, expectedUrl: string): Failure | undefined {
  if (claims.htm !== check.method) {
    return fail('DPOP_HTM_MISMATCH', `htm ${quote(claims.htm)} is not the request method ${quote(check.method)}`);
  }
  if (normaliseUrl(claims.htu) !== expectedUrl) {
    return fail('DPOP_HTU_MISMATCH', `htu ${quote(claims.htu)} does not name ${expectedUrl} (query and fragment ignored)`);
  }
  const skewSeconds = (check.now - claims.iat * 1000) / 1000;
  // Written so that NaN (a bad clock or window) refuses.
  if (!(Math.abs(skewSeconds) <= check.iatWindowSeconds)) {
    const when = skewSeconds >= 0 ? 'old' : 'in the future';
    return fail('DPOP_IAT_OUT_OF_WINDOW', `iat is ${Math.round(Math.abs(skewSeconds))} s ${when}; at most ${check.iatWindowSeconds} s accepted`);
  }
  if (check.accessToken !== undefined) {
    if (claims.ath === undefined) return fail('DPOP_ATH_MISSING', 'an access token was presented but the proof has no ath claim');
    if (!constantTimeEqual(claims.ath, sha256Base64url(check.accessToken))) {
      return fail('DPOP_ATH_MISMATCH', 'ath is not the SHA-256 of the presented access token');
    }
  }
  return undefined;
}

/**
 * RFC 9449 §4.3: scheme, authority and path compared after syntax- and scheme-based normalisation (WHATWG URL:
 * lowercase scheme and host, default port dropped, dot segments resolved), query and fragment removed. A trailing
 * slash is part of the path. Whitespace, control characters and backslashes, which the URL parser would quietly
 * repair, make the URL unusable instead; so does userinfo, which the expected URL never has.
 */
function normaliseUrl(value: string): string | undefined {
  if (UNREPAIRED_URL_CHARACTERS.test(value) || !URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function decodeJsonObject(encoded: string | Uint8Array, what: string): Step<Record<string, unknown>> {
  const bytes = typeof encoded === 'string' ? Buffer.from(encoded, 'base64url') : encoded;
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(bytes));
  } catch {
    return fail('DPOP_MALFORMED', `the proof ${what} is not UTF-8 JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('DPOP_MALFORMED', `the proof ${what} is not a JSON object`);
  }
  return { ok: true, value: value as Record<string, unknown> };
}

function fail(code: DpopFailureCode, message: string): Failure {
  return { ok: false, code, message };
}
