/**
 * Signed checkpoints: an Ed25519 signature over JCS({seq, headHash, ts, keyId}). A checkpoint vouches for the
 * whole chain up to `seq`, so an edit before it, or a tail truncated below it, is detectable even if the
 * attacker recomputes every hash, as long as the checkpoint itself is still there.
 *
 * Every ledger signature (checkpoint or receipt) is checked at its seq: a key the key set says was retired at or
 * before that seq vouches for nothing there, however good the signature (KEY_RETIRED).
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
export type LedgerSignatureCheck = SignatureCheck | 'KEY_RETIRED';

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

/** A signature made for the ledger at `seq` (a checkpoint's seq, a receipt's event seq). */
export function checkSignatureAt(keys: PublicKeySet, keyId: string, seq: number, message: string, signature: string): LedgerSignatureCheck {
  const check = checkSignature(keys, keyId, message, signature);
  if (check !== 'ok') return check;
  const retiredAt = keys.retiredAtSeq(keyId);
  return retiredAt !== null && seq >= retiredAt ? 'KEY_RETIRED' : 'ok';
}

export function checkCheckpoint(keys: PublicKeySet, c: Checkpoint): LedgerSignatureCheck {
  return checkSignatureAt(keys, c.keyId, c.seq, checkpointMessage(c), c.signature);
}

/** Why a ledger signature at `seq` does not count, for a verify report. */
export function signatureProblem(check: Exclude<LedgerSignatureCheck, 'ok'>, keys: PublicKeySet, keyId: string, seq: number): string {
  switch (check) {
    case 'UNKNOWN_KEY':
      return `is signed by key ${keyId}, which is not in the key set`;
    case 'BAD_SIGNATURE':
      return 'has a signature that does not verify';
    case 'KEY_RETIRED':
      return `is signed at seq ${seq} by key ${keyId}, which was retired at seq ${keys.retiredAtSeq(keyId) ?? '?'}: a retired key signs nothing from its retirement on`;
  }
}
