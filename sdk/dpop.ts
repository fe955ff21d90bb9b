/**
 * DPoP proofs (RFC 9449) for requests to the gate, made with jose: `typ: dpop+jwt`, the public key in the header,
 * `htm`, `htu`, `iat`, a random `jti`, and `ath` = base64url(SHA-256(access token)).
 */
import { SignJWT, base64url, importJWK, type JWK } from 'jose';

export async function makeProof(input: { alg: 'EdDSA' | 'ES256'; privateJwk: JWK; publicJwk: JWK; method: string; url: string; accessToken?: string }): Promise<string> {
  const key = await importJWK(input.privateJwk, input.alg);
  const claims: Record<string, unknown> = { htm: input.method, htu: input.url, jti: globalThis.crypto.randomUUID() };
  if (input.accessToken !== undefined) {
    const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(input.accessToken));
    claims['ath'] = base64url.encode(new Uint8Array(digest));
  }
  return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: input.alg, jwk: input.publicJwk }).setIssuedAt().sign(key);
}
