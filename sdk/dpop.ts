/**
 * DPoP proofs (RFC 9449) for requests to the gate, made with jose: `typ: dpop+jwt`, the public key in the header,
 * `htm`, `htu`, `iat`, a random `jti`, and `ath` = base64url(SHA-256(access token)).
 */
import { SignJWT, base64url, importJWK, type JWK } from 'jose';

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

/**
 * Keys already imported, per JWK object and alg: a client signs every proof with one key, and there is no need to
 * import it for each. Held weakly, so a credential that is dropped takes its key with it.
 */
const imported = new WeakMap<JWK, Map<string, SigningKey>>();

async function signingKey(jwk: JWK, alg: string): Promise<SigningKey> {
  let byAlg = imported.get(jwk);
  if (byAlg === undefined) imported.set(jwk, (byAlg = new Map<string, SigningKey>()));
  let key = byAlg.get(alg);
  if (key === undefined) byAlg.set(alg, (key = await importJWK(jwk, alg)));
  return key;
}

export async function makeProof(input: { alg: 'EdDSA' | 'ES256'; privateJwk: JWK; publicJwk: JWK; method: string; url: string; accessToken?: string }): Promise<string> {
  const key = await signingKey(input.privateJwk, input.alg);
  const claims: Record<string, unknown> = { htm: input.method, htu: input.url, jti: globalThis.crypto.randomUUID() };
  if (input.accessToken !== undefined) {
    const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(input.accessToken));
    claims['ath'] = base64url.encode(new Uint8Array(digest));
  }
  return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: input.alg, jwk: input.publicJwk }).setIssuedAt().sign(key);
}
