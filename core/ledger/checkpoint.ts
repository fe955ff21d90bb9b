/**
 * Signed checkpoints: an Ed25519 signature over JCS({seq, headHash, ts, keyId}). A checkpoint vouches for the
 * whole chain up to `seq`, so an edit before it, or a tail truncated below it, is detectable even if the
 * attacker recomputes every hash.
 */
import { canonicalize } from '../canonical.ts';
import { verifyEd25519 } from '../crypto/index.ts';
import type { PublicKeySet } from '../keys/keyset.ts';
import type { Signer } from '../keys/keyring.ts';

export interface Checkpoint {
  readonly seq: number;
  readonly headHash: string;
  readonly ts: string;
  readonly keyId: string;
  readonly signature: string;
}

export type SignatureCheck = 'ok' | 'UNKNOWN_KEY' | 'BAD_SIGNATURE';

export function checkpointMessage(c: Omit<Checkpoint, 'signature'>): string {
  return canonicalize({ seq: c.seq, headHash: c.headHash, ts: c.ts, keyId: c.keyId });
}

export function signCheckpoint(signer: Signer, seq: number, headHash: string, ts: string): Checkpoint {
  const body = { seq, headHash, ts, keyId: signer.keyId };
  return { ...body, signature: signer.sign(checkpointMessage(body)) };
}

export function checkSignature(keys: PublicKeySet, keyId: string, message: string, signature: string): SignatureCheck {
  const key = keys.key(keyId);
  if (key === undefined) return 'UNKNOWN_KEY';
  return verifyEd25519(key, message, signature) ? 'ok' : 'BAD_SIGNATURE';
}

export function checkCheckpoint(keys: PublicKeySet, c: Checkpoint): SignatureCheck {
  return checkSignature(keys, c.keyId, checkpointMessage(c), c.signature);
}
