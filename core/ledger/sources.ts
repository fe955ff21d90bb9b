/**
 * Where `verifyLedger` reads from: a ledger database (opened read-only by the caller) or an exported bundle.
 *
 * Bundle format (JSON Lines, one record per line, written by bundle.ts):
 *   1. header      {"format":"lattice-bundle","version":1,"createdAt","since","events","lastCheckpoint","keyset"}
 *   2. checkpoints {"checkpoint":{seq,headHash,ts,keyId,signature}}   every one at or after `since`
 *   3. events      {"event":{seq,ts,type,principal,action,decision,payload,prevHash,hash},"receipts":[…]}
 * Every record is type-checked as it is read; a malformed record is reported as BUNDLE_MALFORMED with the seq
 * it was found at, never skipped.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { LatticeError, describeError } from '../errors.ts';
import { parseKeySet, type PublicKeySet } from '../keys/keyset.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { LedgerDatabase } from './database.ts';
import { DECISIONS, PREIMAGE_SQL, type Decision, type LedgerEvent } from './event.ts';
import type { StoredReceipt } from './receipt.ts';
import { MalformedRecord, entryOf, type Entry, type LedgerSource } from './verify.ts';

export const BUNDLE_FORMAT = 'lattice-bundle';
export const BUNDLE_VERSION = 1;
const CHUNK = 8192;

const EVENT_COLUMNS = 'seq, ts, type, principal, action, decision, payload, prev_hash AS prevHash, hash';
const RECEIPT_COLUMNS = 'id, event_seq AS eventSeq, key_id AS keyId, body, signature';
const CHECKPOINT_COLUMNS = 'seq, head_hash AS headHash, ts, key_id AS keyId, signature';

/** An event read in full with the receipts stored against its seq (what an export writes). */
export interface EventWithReceipts {
  readonly event: LedgerEvent;
  readonly receipts: readonly StoredReceipt[];
}

/**
 * Events of [since, until] in seq order, in chunks, each chunk with its receipts. The first chunk of a whole
 * ledger (since = 1) has no lower bound, so a planted seq 0 or negative seq is seen, not skipped. The caller
 * holds a read transaction so the chunks form one consistent snapshot. `columns` is the select list; `build`
 * turns one raw row (an array in that order, seq first) into an item.
 */
function* chunksOf<T>(db: LedgerDatabase, columns: string, build: (row: unknown[], receipts: readonly StoredReceipt[]) => T, since: number, until: number): Generator<T[]> {
  const first = db.prepare(`SELECT ${columns} FROM events WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(true);
  const firstWhole = db.prepare(`SELECT ${columns} FROM events WHERE seq <= ? ORDER BY seq LIMIT ?`).raw(true);
  const next = db.prepare(`SELECT ${columns} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(true);
  const receiptsIn = db.prepare(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE event_seq BETWEEN ? AND ? ORDER BY event_seq`);
  let rows = (since === 1 ? firstWhole.all(until, CHUNK) : first.all(since, until, CHUNK)) as unknown[][];
  while (rows.length > 0) {
    const lo = rows[0]?.[0] as number;
    const hi = rows[rows.length - 1]?.[0] as number;
    const bySeq = new Map<number, StoredReceipt[]>();
    for (const r of receiptsIn.all(lo, hi) as StoredReceipt[]) {
      const list = bySeq.get(r.eventSeq);
      if (list === undefined) bySeq.set(r.eventSeq, [r]);
      else list.push(r);
    }
    yield rows.map((row) => build(row, bySeq.get(row[0] as number) ?? NO_RECEIPTS));
    rows = next.all(hi, until, CHUNK) as unknown[][];
  }
}

/** Events of a ledger database in full, for export. */
export function eventChunks(db: LedgerDatabase, since = 1): Generator<EventWithReceipts[]> {
  const build = (r: unknown[], receipts: readonly StoredReceipt[]): EventWithReceipts => ({
    event: { seq: r[0], ts: r[1], type: r[2], principal: r[3], action: r[4], decision: r[5], payload: r[6], prevHash: r[7], hash: r[8] } as LedgerEvent,
    receipts,
  });
  return chunksOf(db, EVENT_COLUMNS, build, since, Number.MAX_SAFE_INTEGER);
}

export function countEvents(db: LedgerDatabase, since = 1, until = Number.MAX_SAFE_INTEGER): number {
  return db.prepare('SELECT count(*) FROM events WHERE seq >= ? AND seq <= ?').pluck().get(since, until) as number;
}

export function checkpointsIn(db: LedgerDatabase, since = 1, until = Number.MAX_SAFE_INTEGER): Checkpoint[] {
  return db.prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq`).all(since, until) as Checkpoint[];
}

/**
 * The verifier's view of a ledger database: SQLite assembles each event's preimage (PREIMAGE_SQL), so only
 * four strings per event reach JavaScript. With `until`, only the range [since, until] is read (one part of a
 * parallel verification).
 */
export function databaseSource(db: LedgerDatabase, keys: PublicKeySet, since = 1, until?: number): LedgerSource {
  const end = until ?? Number.MAX_SAFE_INTEGER;
  const stray = db.prepare(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE event_seq < ? OR event_seq > ? LIMIT 1`);
  const build = (r: unknown[], receipts: readonly StoredReceipt[]): Entry => {
    const preimage = r[3] as string;
    return { seq: r[0] as number, prevHash: preimage.slice(0, 64), hash: r[1] as string, payload: r[2] as string, preimage, receipts };
  };
  return {
    kind: 'database',
    keys,
    checkpoints: checkpointsIn(db, since, end),
    firstSeq: since,
    ...(until !== undefined && { until }),
    expectedEvents: countEvents(db, since, end),
    chunks: () => chunksOf(db, `seq, hash, payload, ${PREIMAGE_SQL} AS preimage`, build, since, end),
    strayReceipt: (lastSeq) => stray.get(since, lastSeq) as StoredReceipt | undefined,
  };
}

const NO_RECEIPTS: readonly StoredReceipt[] = Object.freeze([]);

export interface BundleHeader {
  readonly format: typeof BUNDLE_FORMAT;
  readonly version: typeof BUNDLE_VERSION;
  readonly createdAt: string;
  readonly since: number;
  readonly events: number;
  /** The newest checkpoint in the bundle, or null when the exported range has none. */
  readonly lastCheckpoint: { readonly seq: number; readonly headHash: string } | null;
  readonly keyset: unknown;
}

/**
 * Opens a bundle and reads its header and checkpoints. `trustedKeys` replaces the bundle's own key set: without
 * it, signatures are checked against keys the bundle itself carries (integrity, not provenance).
 */
export async function bundleSource(file: string, trustedKeys?: PublicKeySet): Promise<LedgerSource & { header: BundleHeader }> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    throw new LatticeError('IO_ERROR', `cannot read the bundle ${file}: ${describeError(error)}`, { cause: error });
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const bad = (why: string) => new LatticeError('BUNDLE_INVALID', `${file} is not a lattice bundle: ${why}`);

  const headerLine = await lines.next();
  if (headerLine.done === true) throw bad('it is empty');
  const header = parseJsonLine(headerLine.value, () => bad('the first line is not JSON'));
  if (!isRecord(header) || header['format'] !== BUNDLE_FORMAT) throw bad('the header has no "format": "lattice-bundle"');
  if (header['version'] !== BUNDLE_VERSION) throw bad(`unsupported bundle version ${JSON.stringify(header['version'])}`);
  const since = header['since'];
  if (!isSeq(since)) throw bad('the header has no valid "since"');
  const keys = trustedKeys ?? parseKeySet(header['keyset'], `${file} (bundle key set)`);
  const expectedEvents = typeof header['events'] === 'number' ? header['events'] : undefined;

  const checkpoints: Checkpoint[] = [];
  let pending: unknown;
  // A malformed checkpoint is a verification failure, reported when the events are read.
  let malformed: MalformedRecord | undefined;
  try {
    for (let line = await lines.next(); line.done !== true; line = await lines.next()) {
      const record = parseJsonLine(line.value, () => new MalformedRecord(since, 'a bundle line is not JSON'));
      if (isRecord(record) && 'checkpoint' in record) {
        checkpoints.push(toCheckpoint(record['checkpoint'], since));
      } else {
        pending = record;
        break;
      }
    }
  } catch (error) {
    if (!(error instanceof MalformedRecord)) throw error;
    malformed = error;
  }

  return {
    kind: 'bundle',
    header: header as unknown as BundleHeader,
    keys,
    checkpoints,
    firstSeq: since,
    expectedEvents,
    async *chunks() {
      if (malformed !== undefined) throw malformed;
      let chunk: Entry[] = [];
      let lastSeq = since - 1;
      const take = (record: unknown) => {
        const entry = toEntry(record, lastSeq + 1);
        lastSeq = entry.seq;
        chunk.push(entry);
      };
      if (pending !== undefined) take(pending);
      for (let line = await lines.next(); line.done !== true; line = await lines.next()) {
        take(parseJsonLine(line.value, () => new MalformedRecord(lastSeq + 1, 'a bundle line is not JSON')));
        if (chunk.length >= CHUNK) {
          yield chunk;
          chunk = [];
        }
      }
      if (chunk.length > 0) yield chunk;
    },
    // Receipts travel inside their event's record, so a bundle cannot hold a receipt outside its events.
    strayReceipt: () => undefined,
  };
}

function parseJsonLine(line: string, onError: () => Error): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw onError(); // The caller's error names where the broken line is.
  }
}

function toEntry(record: unknown, seq: number): Entry {
  const bad = (why: string) => new MalformedRecord(seq, `bundle record near seq ${seq}: ${why}`);
  if (!isRecord(record) || !isRecord(record['event'])) throw bad('expected an {"event": …} record');
  const e = record['event'];
  const str = (k: string) => typeof e[k] === 'string';
  const strOrNull = (k: string) => e[k] === null || typeof e[k] === 'string';
  if (!isSeq(e['seq']) || !str('ts') || !str('type') || !strOrNull('principal') || !strOrNull('action') || !str('payload') || !str('prevHash') || !str('hash')) {
    throw bad('an event field is missing or has the wrong type');
  }
  const decision = e['decision'];
  if (decision !== null && !(typeof decision === 'string' && (DECISIONS as readonly string[]).includes(decision))) {
    throw bad('decision is not a known value');
  }
  const receipts = record['receipts'] ?? [];
  if (!Array.isArray(receipts)) throw bad('"receipts" must be an array');
  const event: LedgerEvent = {
    seq: e['seq'],
    ts: e['ts'] as string,
    type: e['type'] as string,
    principal: e['principal'] as string | null,
    action: e['action'] as string | null,
    decision: decision as Decision | null,
    payload: e['payload'] as string,
    prevHash: e['prevHash'] as string,
    hash: e['hash'] as string,
  };
  return entryOf(event, receipts.map((r: unknown) => toReceipt(r, bad)));
}

function toReceipt(r: unknown, bad: (why: string) => Error): StoredReceipt {
  if (!isRecord(r) || typeof r['id'] !== 'string' || !isSeq(r['eventSeq']) || typeof r['keyId'] !== 'string' || typeof r['body'] !== 'string' || typeof r['signature'] !== 'string') {
    throw bad('a receipt field is missing or has the wrong type');
  }
  return { id: r['id'], eventSeq: r['eventSeq'], keyId: r['keyId'], body: r['body'], signature: r['signature'] };
}

function toCheckpoint(c: unknown, since: number): Checkpoint {
  if (!isRecord(c) || !isSeq(c['seq']) || typeof c['headHash'] !== 'string' || typeof c['ts'] !== 'string' || typeof c['keyId'] !== 'string' || typeof c['signature'] !== 'string') {
    throw new MalformedRecord(since, 'a bundle checkpoint field is missing or has the wrong type');
  }
  return { seq: c['seq'], headHash: c['headHash'], ts: c['ts'], keyId: c['keyId'], signature: c['signature'] };
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
