/**
 * `lattice verify`: recomputes the hash chain from the first event and checks every checkpoint and receipt
 * signature against the public key set. The verifier only reads; it works the same over a live database and an
 * exported bundle (see sources.ts), one chunk of events at a time, so memory stays flat on large ledgers.
 *
 * What it detects, and the code it reports at the first broken seq:
 *   EVENT_MISSING         a seq is absent (an event was deleted)
 *   EVENT_OUT_OF_ORDER    seqs do not increase (a bundle was reordered)
 *   PREV_HASH_MISMATCH    an event does not follow its predecessor (events reordered or replaced)
 *   HASH_MISMATCH         an event's content no longer matches its hash (edited)
 *   PAYLOAD_NOT_CANONICAL a payload is not RFC 8785 canonical JSON
 *   CHECKPOINT_MISMATCH   a signed checkpoint names a different head (the chain was rewritten and re-hashed)
 *   TRUNCATED             a signed checkpoint claims more events than exist
 *   UNKNOWN_KEY           a checkpoint or receipt is signed by a key not in the key set
 *   BAD_SIGNATURE         a checkpoint or receipt signature does not verify
 *   KEY_RETIRED           a checkpoint or receipt is signed by a key at or after the seq the key set retired it at
 *   RECEIPT_MISSING / RECEIPT_MISMATCH / RECEIPT_ORPHAN   a receipt was deleted, altered or planted
 *   BUNDLE_MALFORMED      a bundle line is not a well-formed record
 * Anything it cannot establish is a failure; nothing unverifiable is reported as valid. What it cannot see is not
 * covered: events after the newest checkpoint that remains are only chained (`unsignedTail`), so deleting
 * checkpoints lets whoever can write the file rewrite everything after the last one left (SECURITY.md).
 */
import { parseCanonical } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import type { PublicKeySet } from '../keys/keyset.ts';
import { checkCheckpoint, checkSignatureAt, signatureProblem, type Checkpoint } from './checkpoint.ts';
import { GENESIS_HASH, canonicalEventText, type LedgerEvent } from './event.ts';
import type { StoredReceipt } from './receipt.ts';

export type VerifyFailureCode =
  | 'EVENT_MISSING'
  | 'EVENT_OUT_OF_ORDER'
  | 'PREV_HASH_MISMATCH'
  | 'HASH_MISMATCH'
  | 'PAYLOAD_NOT_CANONICAL'
  | 'CHECKPOINT_MISMATCH'
  | 'TRUNCATED'
  | 'UNKNOWN_KEY'
  | 'BAD_SIGNATURE'
  | 'KEY_RETIRED'
  | 'RECEIPT_MISSING'
  | 'RECEIPT_MISMATCH'
  | 'RECEIPT_ORPHAN'
  | 'BUNDLE_MALFORMED';

export interface VerifyFailure {
  readonly code: VerifyFailureCode;
  /** The first seq at which the ledger stops being trustworthy. */
  readonly seq: number;
  readonly message: string;
}

/** What the verifier needs of one event, with the receipts stored against its seq. */
export interface Entry {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly payload: string;
  /** `prevHash + canonical(event)`: exactly the text the hash covers (see event.ts). */
  readonly preimage: string;
  readonly receipts: readonly StoredReceipt[];
}

/** The entry for an event held in full (a bundle record): its preimage is assembled here. */
export function entryOf(event: LedgerEvent, receipts: readonly StoredReceipt[]): Entry {
  return {
    seq: event.seq,
    prevHash: event.prevHash,
    hash: event.hash,
    payload: event.payload,
    preimage: event.prevHash + canonicalEventText(event, event.seq, event.ts),
    receipts,
  };
}

export interface LedgerSource {
  readonly kind: 'database' | 'bundle';
  readonly keys: PublicKeySet;
  /** Every checkpoint at or after `firstSeq`, in seq order. */
  readonly checkpoints: readonly Checkpoint[];
  /** 1 for a whole ledger; a partial bundle starts later and its first prevHash is taken as the anchor. */
  readonly firstSeq: number;
  /**
   * Set when the source is one range [firstSeq, until] of a larger ledger (parallel verification): every seq up
   * to `until` must be present, and the caller checks what lies beyond (truncation, stray receipts).
   */
  readonly until?: number;
  /** Total events, when known up front (for progress). */
  readonly expectedEvents: number | undefined;
  /** Events in seq order, in chunks. A malformed record is reported by throwing a MalformedRecord. */
  chunks(): AsyncIterable<readonly Entry[]> | Iterable<readonly Entry[]>;
  /** A stored receipt whose event seq is not in [firstSeq, lastSeq] (planted), if any. */
  strayReceipt(lastSeq: number): StoredReceipt | undefined;
}

export class MalformedRecord extends Error {
  readonly seq: number;
  constructor(seq: number, message: string) {
    super(message);
    this.seq = seq;
  }
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly source: 'database' | 'bundle';
  readonly events: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly headHash: string | null;
  /** The first event's prevHash as stored (the anchor of a partial bundle or of one range). */
  readonly firstPrevHash: string | null;
  readonly checkpoints: number;
  readonly receipts: number;
  readonly lastCheckpointSeq: number | null;
  /** Events after the last signed checkpoint: chained, but not yet vouched for by a signature. */
  readonly unsignedTail: number;
  /** False for a partial bundle whose starting point no signed checkpoint vouches for. */
  readonly anchored: boolean;
  readonly keyIds: readonly string[];
  /**
   * Retired keys for which the key set records no retirement seq (written before lattice recorded one): their
   * signatures are accepted at any seq. Empty once a rotation has recorded the point.
   */
  readonly unboundedKeys: readonly string[];
  readonly failure: VerifyFailure | null;
}

export interface VerifyOptions {
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

export async function verifyLedger(source: LedgerSource, options: VerifyOptions = {}): Promise<VerifyReport> {
  const failures: VerifyFailure[] = [];
  const fail = (code: VerifyFailureCode, seq: number, message: string) => failures.push({ code, seq, message });
  const keyIds = new Set<string>();

  // Checkpoint signatures first: a checkpoint that does not verify vouches for nothing.
  const checkpoints = new Map<number, Checkpoint>();
  for (const c of source.checkpoints) {
    const check = checkCheckpoint(source.keys, c);
    if (check === 'ok') {
      checkpoints.set(c.seq, c);
      keyIds.add(c.keyId);
    } else {
      fail(check, c.seq, `checkpoint at seq ${c.seq} ${signatureProblem(check, source.keys, c.keyId, c.seq)}`);
    }
  }

  let expected = source.firstSeq;
  let prev: string | null = source.firstSeq === 1 ? GENESIS_HASH : null;
  let count = 0;
  let receipts = 0;
  let lastCheckpointSeq: number | null = null;
  let headHash: string | null = null;
  let firstPrevHash: string | null = null;

  const checkEntry = (e: Entry): boolean => {
    if (e.seq > expected) {
      fail('EVENT_MISSING', expected, `event ${expected} is missing (deleted)`);
      return false;
    }
    if (e.seq < expected) {
      fail('EVENT_OUT_OF_ORDER', e.seq, `event ${e.seq} appears after event ${expected - 1}`);
      return false;
    }
    if (prev !== null && e.prevHash !== prev) {
      fail('PREV_HASH_MISMATCH', e.seq, `event ${e.seq} does not follow event ${e.seq - 1} (reordered or replaced)`);
      return false;
    }
    if (sha256Hex(e.preimage) !== e.hash) {
      fail('HASH_MISMATCH', e.seq, `event ${e.seq} does not match its hash (edited)`);
      return false;
    }
    const payload = parseCanonical(e.payload);
    if (payload === undefined) {
      fail('PAYLOAD_NOT_CANONICAL', e.seq, `event ${e.seq} has a payload that is not canonical JSON`);
      return false;
    }
    const receiptProblem = checkReceipts(source.keys, e.seq, payload.value, e.receipts, keyIds);
    if (receiptProblem !== null) {
      failures.push(receiptProblem);
      return false;
    }
    receipts += e.receipts.length;
    const checkpoint = checkpoints.get(e.seq);
    if (checkpoint !== undefined) {
      if (checkpoint.headHash !== e.hash) {
        fail('CHECKPOINT_MISMATCH', e.seq, `the signed checkpoint at seq ${e.seq} names a different head: events up to ${e.seq} were rewritten`);
        return false;
      }
      lastCheckpointSeq = e.seq;
    }
    if (count === 0) firstPrevHash = e.prevHash;
    prev = e.hash;
    headHash = e.hash;
    expected = e.seq + 1;
    count++;
    return true;
  };

  try {
    outer: for await (const chunk of source.chunks()) {
      for (const entry of chunk) if (!checkEntry(entry)) break outer;
      options.onProgress?.(count, source.expectedEvents);
    }
  } catch (error) {
    if (!(error instanceof MalformedRecord)) throw error;
    fail('BUNDLE_MALFORMED', error.seq, error.message);
  }

  const lastSeq = expected - 1;
  if (failures.length === 0 && source.until !== undefined) {
    if (lastSeq < source.until) fail('EVENT_MISSING', expected, `event ${expected} is missing (deleted)`);
  } else if (failures.length === 0) {
    const beyond = [...checkpoints.values()].find((c) => c.seq > lastSeq);
    if (beyond !== undefined) {
      fail('TRUNCATED', lastSeq + 1, `a signed checkpoint claims ${beyond.seq} events but the ledger ends at ${lastSeq} (truncated)`);
    }
    const stray = source.strayReceipt(lastSeq);
    if (stray !== undefined) {
      fail('RECEIPT_ORPHAN', stray.eventSeq, `receipt ${stray.id} names event ${stray.eventSeq}, which does not reference it`);
    }
  }

  const failure = failures.reduce<VerifyFailure | null>((first, f) => (first === null || f.seq < first.seq ? f : first), null);
  return {
    ok: failure === null,
    source: source.kind,
    events: count,
    firstSeq: source.firstSeq,
    lastSeq,
    headHash,
    firstPrevHash,
    checkpoints: checkpoints.size,
    receipts,
    lastCheckpointSeq,
    unsignedTail: lastCheckpointSeq === null ? count : lastSeq - lastCheckpointSeq,
    anchored: source.firstSeq === 1 || lastCheckpointSeq !== null,
    keyIds: [...keyIds],
    unboundedKeys: source.keys.unboundedKeys,
    failure,
  };
}

function checkReceipts(
  keys: PublicKeySet,
  seq: number,
  payload: unknown,
  stored: readonly StoredReceipt[],
  keyIds: Set<string>,
): VerifyFailure | null {
  const ref = receiptRef(payload);
  const failure = (code: VerifyFailureCode, message: string): VerifyFailure => ({ code, seq, message });
  if (ref === undefined) {
    const planted = stored[0];
    return planted === undefined ? null : failure('RECEIPT_ORPHAN', `receipt ${planted.id} names event ${seq}, which does not reference it`);
  }
  if (ref === null) return failure('RECEIPT_MISMATCH', `event ${seq} has a malformed receipt reference`);
  const receipt = stored.find((r) => r.id === ref.id);
  if (receipt === undefined) return failure('RECEIPT_MISSING', `receipt ${ref.id} of event ${seq} is missing`);
  const extra = stored.find((r) => r.id !== ref.id);
  if (extra !== undefined) return failure('RECEIPT_ORPHAN', `receipt ${extra.id} names event ${seq}, which does not reference it`);
  if (sha256Hex(receipt.body) !== ref.sha256) return failure('RECEIPT_MISMATCH', `receipt ${ref.id} does not match the hash in event ${seq}`);
  let body: unknown;
  try {
    body = JSON.parse(receipt.body);
  } catch {
    body = undefined; // Reported below as a mismatch.
  }
  if (!isRecord(body) || body['id'] !== ref.id || body['eventSeq'] !== seq || body['keyId'] !== receipt.keyId || receipt.eventSeq !== seq) {
    return failure('RECEIPT_MISMATCH', `receipt ${ref.id} does not describe event ${seq}`);
  }
  const check = checkSignatureAt(keys, receipt.keyId, seq, receipt.body, receipt.signature);
  if (check !== 'ok') return failure(check, `receipt ${ref.id} ${signatureProblem(check, keys, receipt.keyId, seq)}`);
  keyIds.add(receipt.keyId);
  return null;
}

/** undefined: the payload carries no receipt; null: it carries a malformed one. */
function receiptRef(payload: unknown): { id: string; sha256: string } | null | undefined {
  if (!isRecord(payload) || !Object.hasOwn(payload, 'receipt')) return undefined;
  const ref = payload['receipt'];
  if (!isRecord(ref) || typeof ref['id'] !== 'string' || typeof ref['sha256'] !== 'string') return null;
  return { id: ref['id'], sha256: ref['sha256'] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
