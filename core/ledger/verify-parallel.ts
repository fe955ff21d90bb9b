/**
 * Parallel verification of a ledger database. Each event's own checks (hash, canonical payload, receipt,
 * checkpoint at its seq) need only that event, so the seq range is split across worker threads, each running
 * the ordinary verifier on its part. This thread then checks what joins the parts: each range's first prevHash
 * must be the previous range's last hash, no signed checkpoint may lie beyond the last event, and no receipt
 * may name an event outside the ledger. The result is the same report, with the same first broken seq, as
 * the sequential verifier gives; small ledgers are verified sequentially.
 *
 * The ledger is append-only, so events up to the head read at the start are the same in every worker's
 * snapshot; events appended while verification runs are not part of this check.
 */
import { Worker } from 'node:worker_threads';
import type { PublicKeySet } from '../keys/keyset.ts';
import { checkCheckpoint, signatureProblem, type Checkpoint } from './checkpoint.ts';
import { openReadOnly } from './database.ts';
import { databaseSource } from './sources.ts';
import { verifyLedger, type VerifyFailure, type VerifyReport } from './verify.ts';
import type { RangeMessage, RangeTask } from './verify-worker.ts';

/** Below this many events, starting threads costs more than it saves. */
export const PARALLEL_THRESHOLD = 50_000;

/** Each chunk of 8,192 events is short-lived garbage; a roomier young generation means fewer scavenges. */
const YOUNG_GENERATION_MB = 64;

export interface DatabaseVerifyOptions {
  /** Threads to use; 1 verifies on this thread. */
  readonly workers: number;
  /** verify-worker's module (its location depends on how lattice was built); without it, this thread verifies. */
  readonly workerUrl?: URL;
  /** Verify in parallel even below PARALLEL_THRESHOLD (for tests of the parallel path). */
  readonly forceParallel?: boolean;
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

export async function verifyDatabase(file: string, keys: PublicKeySet, options: DatabaseVerifyOptions): Promise<VerifyReport> {
  const db = openReadOnly(file);
  try {
    db.exec('BEGIN'); // one consistent snapshot, even while the gate keeps appending
    const { hi, count } = db.prepare('SELECT coalesce(max(seq), 0) AS hi, count(*) AS count FROM events').get() as { hi: number; count: number };
    const workerUrl = options.workerUrl;
    const parallel = workerUrl !== undefined && options.workers > 1 && hi > options.workers && (options.forceParallel === true || count >= PARALLEL_THRESHOLD);
    if (!parallel) return await verifyLedger(databaseSource(db, keys), options.onProgress === undefined ? {} : { onProgress: options.onProgress });

    const ranges = split(hi, options.workers);
    const done = ranges.map(() => 0);
    const reports = await Promise.all(
      ranges.map((range, i) =>
        runRange({ file, keyset: keys.document, ...range }, workerUrl, (n) => {
          done[i] = n;
          options.onProgress?.(done.reduce((a, b) => a + b, 0), count);
        }),
      ),
    );
    const beyond = db.prepare('SELECT seq, head_hash AS headHash, ts, key_id AS keyId, signature FROM checkpoints WHERE seq > ? ORDER BY seq').all(hi) as Checkpoint[];
    const stray = db.prepare('SELECT id, event_seq AS seq FROM receipts WHERE event_seq < 1 OR event_seq > ? LIMIT 1').get(hi) as { id: string; seq: number } | undefined;
    return combine(reports, ranges, keys, beyond, stray);
  } finally {
    db.close();
  }
}

function split(hi: number, parts: number): { since: number; until: number }[] {
  const size = Math.ceil(hi / parts);
  const ranges: { since: number; until: number }[] = [];
  for (let since = 1; since <= hi; since += size) ranges.push({ since, until: Math.min(hi, since + size - 1) });
  return ranges;
}

function runRange(task: RangeTask, url: URL, onProgress: (done: number) => void): Promise<VerifyReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: task, env: {}, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    let report: VerifyReport | undefined;
    worker.on('message', (message: RangeMessage) => {
      if ('progress' in message) onProgress(message.progress);
      else report = message.report;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (report !== undefined) resolve(report);
      else reject(new Error(`a verification thread exited (code ${code}) without a report`));
    });
  });
}

function combine(
  reports: readonly VerifyReport[],
  ranges: readonly { since: number; until: number }[],
  keys: PublicKeySet,
  beyond: readonly Checkpoint[],
  stray: { seq: number; id: string } | undefined,
): VerifyReport {
  const failures: VerifyFailure[] = reports.flatMap((r) => (r.failure === null ? [] : [r.failure]));
  reports.forEach((r, i) => {
    const before = reports[i - 1];
    const since = ranges[i]?.since ?? 0;
    if (i > 0 && before !== undefined && before.failure === null && r.firstPrevHash !== before.headHash) {
      failures.push({ code: 'PREV_HASH_MISMATCH', seq: since, message: `event ${since} does not follow event ${since - 1} (reordered or replaced)` });
    }
  });
  const hi = ranges[ranges.length - 1]?.until ?? 0;
  for (const c of beyond) {
    const check = checkCheckpoint(keys, c);
    failures.push(
      check === 'ok'
        ? { code: 'TRUNCATED', seq: hi + 1, message: `a signed checkpoint claims ${c.seq} events but the ledger ends at ${hi} (truncated)` }
        : { code: check, seq: c.seq, message: `checkpoint at seq ${c.seq} ${signatureProblem(check, keys, c.keyId, c.seq)}` },
    );
  }
  if (stray !== undefined) failures.push({ code: 'RECEIPT_ORPHAN', seq: stray.seq, message: `receipt ${stray.id} names event ${stray.seq}, which does not reference it` });

  const failure = failures.reduce<VerifyFailure | null>((first, f) => (first === null || f.seq < first.seq ? f : first), null);
  // Counts cover the ranges up to and including the one that broke, as a sequential run would.
  const upTo = failure === null ? reports.length : ranges.findIndex((r) => failure.seq <= r.until) + 1 || reports.length;
  const counted = reports.slice(0, upTo);
  const last = reports[reports.length - 1];
  const lastCheckpointSeq = counted.reduce<number | null>((max, r) => (r.lastCheckpointSeq !== null && (max === null || r.lastCheckpointSeq > max) ? r.lastCheckpointSeq : max), null);
  const lastSeq = failure === null ? hi : Math.max(0, failure.seq - 1);
  return {
    ok: failure === null,
    source: 'database',
    // On a break, never more than a sequential run would have verified before it.
    events: Math.min(counted.reduce((n, r) => n + r.events, 0), failure === null ? Number.MAX_SAFE_INTEGER : Math.max(0, failure.seq - 1)),
    firstSeq: 1,
    lastSeq,
    headHash: failure === null ? (last?.headHash ?? null) : null,
    firstPrevHash: reports[0]?.firstPrevHash ?? null,
    checkpoints: counted.reduce((n, r) => n + r.checkpoints, 0),
    receipts: counted.reduce((n, r) => n + r.receipts, 0),
    lastCheckpointSeq,
    unsignedTail: lastCheckpointSeq === null ? lastSeq : lastSeq - lastCheckpointSeq,
    anchored: true,
    keyIds: [...new Set(counted.flatMap((r) => r.keyIds))],
    unboundedKeys: keys.unboundedKeys,
    failure,
  };
}
