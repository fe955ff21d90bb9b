/**
 * Reading the ledger for people: newest-first pages of events with filters and a stable cursor. The cursor
 * names the last seq shown, so pages never repeat or skip events however many are appended meanwhile.
 * Cursors come from the command line or, later, from agents: anything that is not a cursor this module made is
 * rejected, never interpreted.
 */
import { LatticeError } from '../errors.ts';
import type { LedgerDatabase } from './database.ts';
import type { Decision, LedgerEvent } from './event.ts';

export const MAX_PAGE = 10_000;

export interface AuditFilter {
  readonly type?: string;
  readonly action?: string;
  readonly principal?: string;
  readonly decision?: Decision;
  /** ISO 8601, inclusive. */
  readonly since?: string;
  /** ISO 8601, exclusive. */
  readonly until?: string;
}

export interface AuditPage {
  readonly events: readonly LedgerEvent[];
  /** Pass back as `cursor` for the next (older) page; null when this page reaches the first event. */
  readonly nextCursor: string | null;
}

const COLUMNS = (t: string) =>
  `${t}.seq, ${t}.ts, ${t}.type, ${t}.principal, ${t}.action, ${t}.decision, ${t}.payload, ${t}.prev_hash AS prevHash, ${t}.hash`;

/**
 * Filtered pages read two ranges, newest first: the tail of events not yet in the audit index (those after the
 * last checkpoint, scanned directly), then the indexed part through `event_index`. Seqs in the tail are all
 * greater than those in the index, so appending the second result to the first keeps the order.
 */
export function queryEvents(db: LedgerDatabase, filter: AuditFilter, page: { limit: number; cursor?: string }): AuditPage {
  if (!Number.isSafeInteger(page.limit) || page.limit < 1 || page.limit > MAX_PAGE) {
    throw new LatticeError('INVALID_ARGUMENT', `limit must be between 1 and ${MAX_PAGE}`);
  }
  const before = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  /** Every value is bound as a parameter; only fixed column names are written into the SQL. */
  const conditions = (t: string, after?: number, upTo?: number) => {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (clause: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(`${t}.${clause}`);
      params.push(value);
    };
    add('seq > ?', after);
    add('seq <= ?', upTo);
    add('seq < ?', before);
    add('type = ?', filter.type);
    add('action = ?', filter.action);
    add('principal = ?', filter.principal);
    add('decision = ?', filter.decision);
    add('ts >= ?', filter.since);
    add('ts < ?', filter.until);
    return { where, params };
  };
  const want = page.limit + 1;
  const select = (from: string, t: string, limit: number, range: { after?: number; upTo?: number } = {}) => {
    const { where, params } = conditions(t, range.after, range.upTo);
    const sql = `SELECT ${COLUMNS('e')} FROM ${from}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${t}.seq DESC LIMIT ?`;
    return db.prepare(sql).all(...params, limit) as LedgerEvent[];
  };

  const filtered = [filter.type, filter.action, filter.principal, filter.decision, filter.since, filter.until].some((v) => v !== undefined);
  let rows: LedgerEvent[];
  if (!filtered) {
    rows = select('events e', 'e', want);
  } else {
    const indexed = db.prepare('SELECT coalesce(max(seq), 0) FROM event_index').pluck().get() as number;
    rows = select('events e', 'e', want, { after: indexed });
    // Bounded by `indexed`, so a checkpoint committed meanwhile by another writer cannot repeat a tail event.
    if (rows.length < want) rows = rows.concat(select('event_index i JOIN events e ON e.seq = i.seq', 'i', want - rows.length, { upTo: indexed }));
  }
  const events = rows.slice(0, page.limit);
  const last = events[events.length - 1];
  return { events, nextCursor: rows.length > page.limit && last !== undefined ? encodeCursor(last.seq) : null };
}

export function encodeCursor(beforeSeq: number): string {
  return Buffer.from(JSON.stringify({ v: 1, before: beforeSeq })).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const invalid = () => new LatticeError('INVALID_ARGUMENT', 'cursor is not one that `lattice audit` printed');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) throw invalid();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid(); // Not a cursor we made.
  }
  if (typeof value !== 'object' || value === null || (value as { v?: unknown }).v !== 1) throw invalid();
  const before = (value as { before?: unknown }).before;
  if (!Number.isSafeInteger(before) || (before as number) < 1) throw invalid();
  return before as number;
}
