/**
 * Signed receipts: the evidence an agent (or an auditor) can hold for one executed action. The body already
 * carries every field the action pipeline fills; the signature is Ed25519 over JCS(body), and the body names the
 * signing key and the ledger event it belongs to. That event's payload carries `receipt: {id, sha256}`, so the
 * receipt is bound into the hash chain: deleting, swapping or re-signing one is detected by `lattice verify`.
 */
import { canonicalize } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import type { Signer } from '../keys/keyring.ts';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What the pipeline knows about one execution; null where a step did not apply (e.g. no approval needed). */
export type ReceiptFields = {
  readonly action: string;
  readonly principal: string;
  /** sha256(JCS(params)) */
  readonly requestHash: string;
  readonly planSha256: string | null;
  readonly policyHash: string | null;
  readonly policyVersion: string | null;
  readonly approvalId: string | null;
  /** SHA-256 of the provider component that planned and finished the action. */
  readonly providerSha256: string | null;
  /** SHA-256 of the host-observed effect evidence (status codes, byte counts, body and file hashes). */
  readonly effectsHash: string | null;
  readonly outputHash: string | null;
  readonly status: 'executed' | 'failed' | 'interrupted';
  readonly startedAt: string;
  readonly finishedAt: string;
};

export type ReceiptBody = ReceiptFields & {
  readonly v: 1;
  readonly id: string;
  readonly eventSeq: number;
  readonly keyId: string;
};

/** A receipt as stored: canonical body text plus signature. */
export interface StoredReceipt {
  readonly id: string;
  readonly eventSeq: number;
  readonly keyId: string;
  readonly body: string;
  readonly signature: string;
}

/** The reference an event payload carries to its receipt. */
export interface ReceiptRef {
  readonly id: string;
  readonly sha256: string;
}

export function validateReceiptFields(fields: ReceiptFields): void {
  const hashes = ['requestHash', 'planSha256', 'policyHash', 'providerSha256', 'effectsHash', 'outputHash'] as const;
  for (const name of hashes) {
    const value = fields[name];
    if (value === null && name !== 'requestHash') continue;
    if (typeof value !== 'string' || !SHA256_HEX.test(value)) {
      throw new LatticeError('LEDGER_INVALID_EVENT', `receipt ${name} must be a lowercase hex SHA-256`);
    }
  }
}

export function signReceipt(signer: Signer, id: string, eventSeq: number, fields: ReceiptFields): { receipt: StoredReceipt; ref: ReceiptRef } {
  const body: ReceiptBody = { v: 1, id, eventSeq, keyId: signer.keyId, ...fields };
  const text = canonicalize(body);
  return {
    receipt: { id, eventSeq, keyId: signer.keyId, body: text, signature: signer.sign(text) },
    ref: { id, sha256: sha256Hex(text) },
  };
}
