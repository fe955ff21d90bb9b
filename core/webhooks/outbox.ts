/**
 * The webhook outbox (schema 5): rows are written by the `events_announce` trigger with the event they announce;
 * this module reads the next message of a webhook, records what an attempt did, and reports per webhook. Rows move
 * pending → delivered, or pending → dead after the webhook's last attempt; an operator may send the dead back to
 * pending (`lattice webhooks retry`).
 */
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { LedgerEvent } from '../ledger/event.ts';

export interface OutboxMessage {
  readonly webhook: string;
  readonly messageId: string;
  /** Attempts made so far. */
  readonly attempts: number;
  /** Milliseconds since the epoch; 0 for a message never tried. */
  readonly nextAttemptAt: number;
  readonly event: LedgerEvent;
}

/** What one attempt did: delivered, or failed with a reason (and then either another try at a time, or dead). */
export type AttemptOutcome =
  | { readonly delivered: true }
  | { readonly delivered: false; readonly error: string; readonly retryAt: number | null };

export interface DeadLetter {
  readonly seq: number;
  readonly messageId: string;
  readonly attempts: number;
  readonly lastError: string | null;
}

export interface OutboxCounts {
  readonly pending: number;
  readonly delivered: number;
  readonly dead: number;
  /** The newest error among messages not delivered: what is failing now. */
  readonly lastError: { readonly seq: number; readonly error: string } | null;
  /** The newest dead letters, at most `deadLetterLimit`. */
  readonly deadLetters: readonly DeadLetter[];
}

/** The pending message of `webhook` with the lowest seq above `afterSeq` (messages go out in seq order). */
export function nextMessage(db: LedgerDatabase, webhook: string, afterSeq: number): OutboxMessage | undefined {
  const row = statement(
    db,
    `SELECT o.webhook, o.message_id AS messageId, o.attempts, o.next_attempt_at AS nextAttemptAt,
            e.seq, e.ts, e.type, e.principal, e.action, e.decision, e.payload, e.prev_hash AS prevHash, e.hash
       FROM webhook_outbox o JOIN events e ON e.seq = o.seq
      WHERE o.webhook = ? AND o.state = 'pending' AND o.seq > ?
      ORDER BY o.seq LIMIT 1`,
  ).get(webhook, afterSeq) as (Omit<OutboxMessage, 'event'> & LedgerEvent) | undefined;
  if (row === undefined) return undefined;
  const { webhook: name, messageId, attempts, nextAttemptAt, ...event } = row;
  return { webhook: name, messageId, attempts, nextAttemptAt, event };
}

/** Records an attempt's outcome; the row must still be pending (a retry or removal in between wins). */
export function recordAttempt(db: LedgerDatabase, message: OutboxMessage, outcome: AttemptOutcome, now: number): void {
  if (outcome.delivered) {
    statement(db, `UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ? WHERE webhook = ? AND seq = ? AND state = 'pending'`).run(
      now,
      message.webhook,
      message.event.seq,
    );
    return;
  }
  statement(
    db,
    `UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, state = ?, next_attempt_at = ? WHERE webhook = ? AND seq = ? AND state = 'pending'`,
  ).run(outcome.error, outcome.retryAt === null ? 'dead' : 'pending', outcome.retryAt ?? 0, message.webhook, message.event.seq);
}

/** Sends every dead message of `webhook` back to pending with a fresh set of attempts; returns how many. */
export function retryDead(db: LedgerDatabase, webhook: string): number {
  return statement(db, `UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE webhook = ? AND state = 'dead'`).run(webhook).changes;
}

export function deadCount(db: LedgerDatabase, webhook: string): number {
  return statement(db, `SELECT count(*) FROM webhook_outbox WHERE webhook = ? AND state = 'dead'`, 'pluck').get(webhook) as number;
}

/** Messages of `webhook` not yet delivered (pending or dead). */
export function undelivered(db: LedgerDatabase, webhook: string): number {
  return statement(db, `SELECT count(*) FROM webhook_outbox WHERE webhook = ? AND state != 'delivered'`, 'pluck').get(webhook) as number;
}

export function outboxCounts(db: LedgerDatabase, webhook: string, deadLetterLimit = 20): OutboxCounts {
  const counts = { pending: 0, delivered: 0, dead: 0 };
  for (const row of statement(db, 'SELECT state, count(*) AS n FROM webhook_outbox WHERE webhook = ? GROUP BY state').all(webhook) as { state: keyof typeof counts; n: number }[]) {
    counts[row.state] = row.n;
  }
  const lastError = statement(
    db,
    `SELECT seq, last_error AS error FROM webhook_outbox WHERE webhook = ? AND state != 'delivered' AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1`,
  ).get(webhook) as { seq: number; error: string } | undefined;
  const deadLetters = statement(
    db,
    `SELECT seq, message_id AS messageId, attempts, last_error AS lastError FROM webhook_outbox WHERE webhook = ? AND state = 'dead' ORDER BY seq DESC LIMIT ?`,
  ).all(webhook, deadLetterLimit) as DeadLetter[];
  return { ...counts, lastError: lastError ?? null, deadLetters };
}
