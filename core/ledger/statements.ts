/**
 * The ledger's own prepared statements: reading the head and the last checkpoint, inserting events (one
 * multi-row INSERT per run length), receipts and checkpoints, and copying events into the audit index.
 */
import type Database from 'better-sqlite3';
import type { Checkpoint } from './checkpoint.ts';
import type { LedgerDatabase } from './database.ts';
import { GENESIS_HASH, type LedgerEvent } from './event.ts';
import type { StoredReceipt } from './receipt.ts';

export interface Head {
  readonly seq: number;
  readonly hash: string;
}

export interface LedgerStatements {
  head: () => Head;
  lastCheckpoint: () => number;
  insertEvents: (events: readonly LedgerEvent[]) => void;
  insertReceipt: (r: StoredReceipt) => void;
  insertCheckpoint: (c: Checkpoint) => void;
  indexThrough: (seq: number) => void;
  indexedThrough: () => number;
}

const GENESIS: Head = { seq: 0, hash: GENESIS_HASH };
/** Rows per multi-row INSERT (9 parameters each; far below SQLite's parameter limit). */
export const ROWS_PER_INSERT = 64;

export function prepareStatements(db: LedgerDatabase): LedgerStatements {
  const head = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1');
  const lastCheckpoint = db.prepare('SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT 1').pluck();
  // One prepared multi-row INSERT per run length, made on first use.
  const inserts = new Map<number, Database.Statement>();
  const insertFor = (rows: number) => {
    let stmt = inserts.get(rows);
    if (stmt === undefined) {
      const values = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      stmt = db.prepare(`INSERT INTO events (seq, ts, type, principal, action, decision, payload, prev_hash, hash) VALUES ${values}`);
      inserts.set(rows, stmt);
    }
    return stmt;
  };
  const insertReceipt = db.prepare('INSERT INTO receipts (id, event_seq, key_id, body, signature) VALUES (?, ?, ?, ?, ?)');
  const insertCheckpoint = db.prepare('INSERT INTO checkpoints (seq, head_hash, ts, key_id, signature) VALUES (?, ?, ?, ?, ?)');
  const indexedThrough = db.prepare('SELECT coalesce(max(seq), 0) FROM event_index').pluck();
  const indexThrough = db.prepare(
    `INSERT INTO event_index (seq, ts, type, principal, action, decision)
       SELECT seq, ts, type, principal, action, decision FROM events
       WHERE seq > (SELECT coalesce(max(seq), 0) FROM event_index) AND seq <= ?`,
  );
  return {
    head: () => (head.get() as Head | undefined) ?? GENESIS,
    lastCheckpoint: () => (lastCheckpoint.get() as number | undefined) ?? 0,
    insertEvents: (events) => {
      const params: (string | number | null)[] = [];
      for (const e of events) params.push(e.seq, e.ts, e.type, e.principal, e.action, e.decision, e.payload, e.prevHash, e.hash);
      insertFor(events.length).run(params);
    },
    insertReceipt: (r) => {
      insertReceipt.run(r.id, r.eventSeq, r.keyId, r.body, r.signature);
    },
    insertCheckpoint: (c) => {
      insertCheckpoint.run(c.seq, c.headHash, c.ts, c.keyId, c.signature);
    },
    indexThrough: (seq) => {
      indexThrough.run(seq);
    },
    indexedThrough: () => indexedThrough.get() as number,
  };
}
