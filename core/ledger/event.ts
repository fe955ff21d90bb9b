/**
 * Ledger events and their hash chain.
 *
 *   canonical(event) = JCS({seq, ts, type, principal, action, decision, payload})        (RFC 8785)
 *   hash             = hex(sha256(utf8(prevHash + canonical(event))))   prevHash of event 1 = 64 × "0"
 *
 * The payload is stored as its canonical JSON text, so `canonicalEventText` can assemble the canonical event
 * without re-serialising it. Drafts come partly from agents: `validateDraft` bounds every field and refuses
 * control characters, so a hostile value is rejected here rather than written and rendered later.
 */
import { canonicalize, type JsonObject } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';

export const GENESIS_HASH = '0'.repeat(64);
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
const MAX_FIELD_LENGTH = 256;

export const DECISIONS = ['allow', 'deny', 'hold', 'error'] as const;
export type Decision = (typeof DECISIONS)[number];

/** What a caller asks to append; the ledger assigns seq, ts and hashes. */
export interface EventDraft {
  readonly type: string;
  readonly principal?: string | null;
  readonly action?: string | null;
  readonly decision?: Decision | null;
  readonly payload?: JsonObject;
}

/** An event as stored: the payload is its canonical JSON text. */
export interface LedgerEvent {
  readonly seq: number;
  readonly ts: string;
  readonly type: string;
  readonly principal: string | null;
  readonly action: string | null;
  readonly decision: Decision | null;
  readonly payload: string;
  readonly prevHash: string;
  readonly hash: string;
}

/** A validated draft with its payload already canonical, ready to be sealed into the chain. */
export interface SealableEvent {
  readonly type: string;
  readonly principal: string | null;
  readonly action: string | null;
  readonly decision: Decision | null;
  readonly payload: string;
}

const TYPE_PATTERN = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

export function validateDraft(draft: EventDraft): SealableEvent {
  const invalid = (why: string) => new LatticeError('LEDGER_INVALID_EVENT', `invalid ledger event: ${why}`);
  if (typeof draft.type !== 'string' || draft.type.length > 64 || !TYPE_PATTERN.test(draft.type)) {
    throw invalid(`type must be a dotted lowercase name of at most 64 characters, got ${JSON.stringify(draft.type)}`);
  }
  const principal = boundedField(draft.principal, 'principal', invalid);
  const action = boundedField(draft.action, 'action', invalid);
  const decision = draft.decision ?? null;
  if (decision !== null && !DECISIONS.includes(decision)) {
    throw invalid(`decision must be one of ${DECISIONS.join(', ')}`);
  }
  let payload: string;
  try {
    payload = canonicalize(draft.payload ?? {});
  } catch (error) {
    throw invalid(`payload is not JSON: ${describeError(error)}`);
  }
  if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) throw invalid(`payload exceeds ${MAX_PAYLOAD_BYTES} bytes`);
  return { type: draft.type, principal, action, decision, payload };
}

function boundedField(value: unknown, name: string, invalid: (why: string) => LatticeError): string | null {
  if (value === undefined || value === null) return null;
  // Not well-formed UTF-16 (a lone surrogate) would be stored as U+FFFD and no longer match its own hash.
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FIELD_LENGTH || CONTROL.test(value) || !value.isWellFormed()) {
    throw invalid(`${name} must be 1–${MAX_FIELD_LENGTH} printable characters`);
  }
  return value;
}

/**
 * JCS of the event without a generic serializer: the member names are fixed and already in JCS order
 * (action < decision < payload < principal < seq < ts < type), strings and nulls serialise exactly as
 * JSON.stringify does, seq is a safe integer, and the payload text is canonical. A property test pins this
 * against the canonicalize library. (This is the append and verify hot path: no intermediate objects.)
 */
export function canonicalEventText(e: SealableEvent, seq: number, ts: string): string {
  return (
    `{"action":${JSON.stringify(e.action)},"decision":${JSON.stringify(e.decision)},"payload":${e.payload},` +
    `"principal":${JSON.stringify(e.principal)},"seq":${seq},"ts":${JSON.stringify(ts)},"type":${JSON.stringify(e.type)}}`
  );
}

/**
 * The same bytes the hash covers, `prevHash + canonical(event)`, assembled by SQLite from a row of `events`, so
 * verifying a database need not materialise every column in JavaScript (a third less work per event).
 * For every value the ledger writes, SQLite's json_quote equals JSON.stringify (strings are well-formed and
 * free of control characters, see validateDraft; NULL is `null`) and `||` prints the integer seq in decimal; a
 * test holds the two forms equal. For a row the ledger could not have written they may differ, which can only
 * make that row fail verification, never pass: json_quote is injective.
 */
export const PREIMAGE_SQL =
  `prev_hash || '{"action":' || json_quote(action) || ',"decision":' || json_quote(decision) || ',"payload":' || payload || ` +
  `',"principal":' || json_quote(principal) || ',"seq":' || seq || ',"ts":' || json_quote(ts) || ',"type":' || json_quote(type) || '}'`;

export function eventHash(prevHash: string, canonicalEvent: string): string {
  return sha256Hex(prevHash + canonicalEvent);
}

export function sealEvent(e: SealableEvent, seq: number, ts: string, prevHash: string): LedgerEvent {
  const hash = eventHash(prevHash, canonicalEventText(e, seq, ts));
  return { seq, ts, type: e.type, principal: e.principal, action: e.action, decision: e.decision, payload: e.payload, prevHash, hash };
}
