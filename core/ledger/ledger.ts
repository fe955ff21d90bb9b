/**
 * The evidence ledger: an append-only, hash-chained event log with signed checkpoints and receipts, in one
 * SQLite file.
 *
 * Group commit: `append` queues the event and returns a promise; all appends queued in the same turn of the
 * event loop are written in one `BEGIN IMMEDIATE` transaction, and every promise settles only after that
 * transaction has committed with synchronous=FULL. Many callers share one fsync; none is told "durable" before
 * it is. An event with a receipt or extra writes gets its own savepoint, so its failure rolls back only its own
 * rows (a plain event is one INSERT, atomic by itself); a failed commit rejects every caller in the batch.
 *
 * The audit index is filled in bulk rather than per commit (schema.ts explains why): a commit copies new events
 * into it once `indexEvery` have accumulated, and every checkpoint written by `checkpoint()` (timed, on close,
 * around key rotation, before export) copies all of them, so the unindexed tail stays short in events and time.
 *
 * The head is read inside each write transaction, so another process appending to the same file (the CLI
 * while the gate runs) extends the same chain instead of forking it. For the same reason every signature is made
 * inside a write transaction after the key ring has caught up with the key set on disk: a key another process
 * retired is never used for a seq at or after its retirement.
 */
import { canonicalize, type JsonObject } from '../canonical.ts';
import { randomId } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { ensureHome, type HomePaths } from '../home.ts';
import { KeyRing, type PendingRotation } from '../keys/keyring.ts';
import type { KeyRecord } from '../keys/keyset.ts';
import { signCheckpoint, type Checkpoint } from './checkpoint.ts';
import { openWritable, type LedgerDatabase } from './database.ts';
import { sealEvent, validateDraft, type EventDraft, type LedgerEvent, type SealableEvent } from './event.ts';
import { signReceipt, validateReceiptFields, type ReceiptFields, type StoredReceipt } from './receipt.ts';
import { SCHEMA_VERSION } from './schema.ts';
import { ROWS_PER_INSERT, prepareStatements, type Head, type LedgerStatements } from './statements.ts';

export interface LedgerOptions {
  /** Write a signed checkpoint once this many events have been appended since the last one (default 1000). */
  readonly checkpointEvery?: number;
  /** Also write one every this many milliseconds if events were appended (default 30 s; 0 disables the timer). */
  readonly checkpointIntervalMs?: number;
  /** Longest a write queued with `alongside` waits for an event to ride with before it commits alone (default 25 ms). */
  readonly sideWriteDelayMs?: number;
  /** Most events committed in one transaction (default 1024). */
  readonly maxBatch?: number;
  /** Copy new events into the audit index once this many have accumulated (default 10,000). */
  readonly indexEvery?: number;
  /** Called with failures of background work (timed checkpoints); defaults to printing on stderr. */
  readonly onBackgroundError?: (error: Error) => void;
}

export interface AppendOptions {
  /** Issue a signed receipt bound to this event. */
  readonly receipt?: ReceiptFields;
  /**
   * Further writes that must commit atomically with this event (for example consuming a one-shot grant).
   * Runs inside the event's savepoint before the event is inserted, with the event's seq and its receipt (when
   * one is issued); throwing rolls back this event only.
   */
  readonly write?: (db: LedgerDatabase, seq: number, receipt: StoredReceipt | null) => void;
}

export interface Appended {
  readonly event: LedgerEvent;
  readonly receipt: StoredReceipt | null;
}

export interface KeyRotation {
  readonly previousKeyId: string;
  readonly key: KeyRecord;
  /** The `keys.rotated` event; its seq is where the previous key was retired. */
  readonly event: LedgerEvent;
  /** The retired private key files that were deleted. */
  readonly deletedKeyFiles: readonly string[];
}


/** A write with no event of its own, committed in the next group transaction. */
interface SideWrite {
  readonly write: (db: LedgerDatabase) => void;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface Pending {
  readonly event: SealableEvent;
  readonly options: AppendOptions | undefined;
  readonly resolve: (value: Appended) => void;
  readonly reject: (error: Error) => void;
}


export class Ledger {
  readonly paths: HomePaths;
  readonly keys: KeyRing;
  private readonly db: LedgerDatabase;
  private readonly checkpointEvery: number;
  private readonly maxBatch: number;
  private readonly sideWriteDelayMs: number;
  private readonly indexEvery: number;
  /** Highest seq known to be in the audit index (a trigger for the next copy; the copy itself asks the table). */
  private indexedThrough: number;
  private readonly onBackgroundError: (error: Error) => void;
  private readonly timer: NodeJS.Timeout | undefined;
  private queue: Pending[] = [];
  private sideWrites: SideWrite[] = [];
  private scheduled = false;
  private sideTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly observers = new Set<(events: readonly LedgerEvent[]) => void>();

  private readonly stmt: LedgerStatements;
  private readonly appendInSavepoint: (item: Pending, head: Head, ts: string) => Appended;
  private readonly sideInSavepoint: (write: SideWrite['write']) => void;

  private constructor(paths: HomePaths, keys: KeyRing, db: LedgerDatabase, options: LedgerOptions) {
    this.paths = paths;
    this.keys = keys;
    this.db = db;
    this.checkpointEvery = positive(options.checkpointEvery ?? 1000, 'checkpointEvery');
    this.maxBatch = positive(options.maxBatch ?? 1024, 'maxBatch');
    this.sideWriteDelayMs = positive(options.sideWriteDelayMs ?? 25, 'sideWriteDelayMs');
    this.indexEvery = positive(options.indexEvery ?? 10_000, 'indexEvery');
    this.onBackgroundError = options.onBackgroundError ?? ((e) => process.stderr.write(`lattice: ${e.message}\n`));
    this.stmt = prepareStatements(db);
    this.indexedThrough = this.stmt.indexedThrough();
    // Nested inside the batch transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.appendInSavepoint = db.transaction((item: Pending, head: Head, ts: string) => this.writeEvent(item, head, ts));
    this.sideInSavepoint = db.transaction((write: SideWrite['write']) => write(db));
    const interval = options.checkpointIntervalMs ?? 30_000;
    if (interval > 0) {
      this.timer = setInterval(() => this.backgroundCheckpoint(), interval);
      this.timer.unref();
    }
  }

  /** Opens (creating if needed) the ledger of a home: private directories, first signing key, genesis event. */
  static open(paths: HomePaths, options: LedgerOptions = {}): Ledger {
    ensureHome(paths);
    const keys = KeyRing.open(paths, { create: true });
    const db = openWritable(paths.db);
    const ledger = new Ledger(paths, keys, db, options);
    if (ledger.head().seq === 0) {
      ledger.appendNow({
        type: 'ledger.created',
        payload: { ledgerId: randomId('ldg'), keyId: keys.active.keyId, schemaVersion: SCHEMA_VERSION },
      });
    }
    return ledger;
  }

  /** Appends one event; resolves once it is durable (committed with synchronous=FULL). */
  append(draft: EventDraft, options?: AppendOptions): Promise<Appended> {
    return new Promise((resolve, reject) => {
      if (this.closed) throw new LatticeError('LEDGER_CLOSED', 'the ledger is closed');
      this.queue.push(this.pending(draft, options, resolve, reject));
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Queues a write that records no event (the DPoP replay cache) to ride along with the next group commit, or to
   * commit on its own `sideWriteDelayMs` later if no event comes first: a commit of its own would cost the request
   * that queued it a second fsync. It commits no later than any event appended after this call, so state that
   * guards an action is durable before the action's intent is; it resolves once committed. A failing write rolls
   * back alone and rejects.
   */
  alongside(write: (db: LedgerDatabase) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) throw new LatticeError('LEDGER_CLOSED', 'the ledger is closed');
      this.sideWrites.push({ write, resolve, reject });
      this.sideTimer ??= setTimeout(() => {
        this.sideTimer = undefined;
        this.flush();
      }, this.sideWriteDelayMs);
    });
  }

  /**
   * Calls `observer` after every commit of this process with the events it made durable, in seq order (events
   * appended by another process writing the same file are not seen; readers that must not miss any catch up from
   * the table by seq). An observer that throws is reported as a background error and stays registered.
   * Returns the function that removes it.
   */
  onCommit(observer: (events: readonly LedgerEvent[]) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Appends and commits one event synchronously, outside any batch (for one-shot commands). */
  appendNow(draft: EventDraft, options?: AppendOptions): Appended {
    if (this.closed) throw new LatticeError('LEDGER_CLOSED', 'the ledger is closed');
    let result: Appended | undefined;
    let failure: Error | undefined;
    this.commit([this.pending(draft, options, (value) => (result = value), (error) => (failure = error))]);
    if (failure !== undefined) throw failure;
    if (result === undefined) throw new Error('ledger commit settled nothing');
    return result;
  }

  head(): Head {
    return this.stmt.head();
  }

  /** Brings the audit index up to the head and writes a signed checkpoint there unless one already covers it. */
  checkpoint(): Checkpoint | null {
    return this.db
      .transaction(() => {
        this.indexThrough(this.stmt.head().seq);
        return this.checkpointIfBehind();
      })
      .immediate();
  }

  /**
   * Rotates the signing key in one write transaction: the old key checkpoints the head, the key set retires it at
   * the next seq (written while this transaction holds the write lock, so no other writer signs in between),
   * `keys.rotated` takes that seq and the new key checkpoints it, so both keys are bound into the chain. If the
   * transaction does not commit, the previous key set is put back. Once it has, the retired private key files are
   * deleted. Whatever was queued before is committed first, under the old key.
   */
  rotateKeys(): KeyRotation {
    if (this.closed) throw new LatticeError('LEDGER_CLOSED', 'the ledger is closed');
    this.flush();
    let pending: PendingRotation | undefined;
    let event: LedgerEvent;
    try {
      event = this.db
        .transaction(() => {
          this.indexThrough(this.stmt.head().seq);
          this.checkpointIfBehind();
          const head = this.stmt.head();
          const seq = head.seq + 1;
          pending = this.keys.rotate(seq);
          const { previousKeyId, key, legacyKeyIds } = pending;
          const payload = { previousKeyId, keyId: key.keyId, publicKey: key.publicKey, ...(legacyKeyIds.length > 0 && { legacyKeyIds: [...legacyKeyIds] }) };
          const sealed = sealEvent(validateDraft({ type: 'keys.rotated', principal: 'operator', payload }), seq, new Date().toISOString(), head.hash);
          this.stmt.insertEvents([sealed]);
          this.checkpointIfBehind();
          return sealed;
        })
        .immediate();
    } catch (error) {
      this.indexedThrough = this.stmt.indexedThrough(); // a copy made inside the failed transaction was rolled back
      pending?.undo();
      throw new LatticeError('LEDGER_WRITE_FAILED', `the key rotation was not recorded, and the previous key stays active: ${describeError(error)}`, { cause: error });
    }
    const rotation = pending;
    if (rotation === undefined) throw new Error('the rotation committed without a new key');
    this.notify([event]);
    return { previousKeyId: rotation.previousKeyId, key: rotation.key, event, deletedKeyFiles: this.keys.deleteRetiredPrivateKeys() };
  }

  /** Commits everything queued, writes a final checkpoint and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    clearTimeout(this.sideTimer);
    this.flush();
    this.checkpoint();
    this.db.close();
  }

  /** The underlying connection, for read queries by in-process components (never for writes to ledger tables). */
  get database(): LedgerDatabase {
    return this.db;
  }

  private pending(draft: EventDraft, options: AppendOptions | undefined, resolve: Pending['resolve'], reject: Pending['reject']): Pending {
    const event = validateDraft(draft);
    if (draft.payload !== undefined && Object.hasOwn(draft.payload, 'receipt')) {
      throw new LatticeError('LEDGER_INVALID_EVENT', 'invalid ledger event: payload.receipt is reserved for the ledger');
    }
    if (options?.receipt !== undefined) validateReceiptFields(options.receipt);
    return { event, options, resolve, reject };
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0 || this.sideWrites.length > 0) this.commit(this.queue.splice(0, this.maxBatch));
  }

  private commit(batch: Pending[]): void {
    const outcomes: (Appended | Error | undefined)[] = new Array<Appended | Error | undefined>(batch.length);
    const sides = this.sideWrites.splice(0);
    const sideFailures: (Error | undefined)[] = [];
    try {
      this.db
        .transaction(() => {
          for (const side of sides) {
            try {
              this.sideInSavepoint(side.write);
              sideFailures.push(undefined);
            } catch (error) {
              sideFailures.push(asError(error));
            }
          }
          let head = this.stmt.head();
          const ts = new Date().toISOString(); // one commit, one time
          // Plain events are sealed in memory and inserted together, one multi-row INSERT per run: a single
          // statement is atomic, so a failure rejects exactly that run and the chain resumes where it began.
          let run: { index: number; event: LedgerEvent }[] = [];
          let runStart = head;
          const insertRun = () => {
            if (run.length === 0) return;
            try {
              this.stmt.insertEvents(run.map((r) => r.event));
              for (const r of run) outcomes[r.index] = { event: r.event, receipt: null };
            } catch (error) {
              for (const r of run) outcomes[r.index] = asError(error);
              head = runStart;
            }
            run = [];
          };
          batch.forEach((item, index) => {
            if (item.options?.receipt !== undefined || item.options?.write !== undefined) {
              insertRun();
              try {
                const appended = this.appendInSavepoint(item, head, ts);
                head = appended.event;
                outcomes[index] = appended;
              } catch (error) {
                // Its savepoint was rolled back: nothing of this item remains, and it alone is rejected.
                outcomes[index] = asError(error);
              }
              return;
            }
            if (run.length === 0) runStart = head;
            const event = sealEvent(item.event, head.seq + 1, ts, head.hash);
            run.push({ index, event });
            head = event;
            if (run.length === ROWS_PER_INSERT) insertRun();
          });
          insertRun();
          if (head.seq - this.stmt.lastCheckpoint() >= this.checkpointEvery) this.checkpointIfBehind();
          if (head.seq - this.indexedThrough >= this.indexEvery) this.indexThrough(head.seq);
        })
        .immediate();
    } catch (error) {
      this.indexedThrough = this.stmt.indexedThrough(); // a copy made inside the failed transaction was rolled back
      const failure = new LatticeError('LEDGER_WRITE_FAILED', `ledger commit failed: ${describeError(error)}`, { cause: error });
      for (const item of [...sides, ...batch]) item.reject(failure);
      return;
    }
    sides.forEach((side, i) => {
      const failure = sideFailures[i];
      if (failure === undefined) side.resolve();
      else side.reject(failure);
    });
    const committed: LedgerEvent[] = [];
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) item.reject(new Error('ledger lost an outcome'));
      else if (outcome instanceof Error) item.reject(outcome);
      else {
        committed.push(outcome.event);
        item.resolve(outcome);
      }
    });
    if (committed.length > 0) this.notify(committed);
  }

  private notify(events: readonly LedgerEvent[]): void {
    for (const observer of this.observers) {
      try {
        observer(events);
      } catch (error) {
        this.onBackgroundError(new Error(`a commit observer failed: ${describeError(error)}`));
      }
    }
  }

  private writeEvent(item: Pending, head: Head, ts: string): Appended {
    const seq = head.seq + 1;
    let event = item.event;
    let receipt: StoredReceipt | null = null;
    if (item.options?.receipt !== undefined) {
      this.keys.refresh();
      const signed = signReceipt(this.keys.active, randomId('rcpt'), seq, item.options.receipt);
      receipt = signed.receipt;
      const payload = JSON.parse(event.payload) as JsonObject;
      event = { ...event, payload: canonicalize({ ...payload, receipt: { ...signed.ref } }) };
    }
    item.options?.write?.(this.db, seq, receipt);
    const sealed = sealEvent(event, seq, ts, head.hash);
    this.stmt.insertEvents([sealed]);
    if (receipt !== null) this.stmt.insertReceipt(receipt);
    return { event: sealed, receipt };
  }

  /** Must run inside a write transaction. */
  private checkpointIfBehind(): Checkpoint | null {
    const head = this.stmt.head();
    if (head.seq === 0 || head.seq <= this.stmt.lastCheckpoint()) return null;
    this.keys.refresh();
    const checkpoint = signCheckpoint(this.keys.active, head.seq, head.hash, new Date().toISOString());
    this.stmt.insertCheckpoint(checkpoint);
    return checkpoint;
  }

  /** Must run inside a write transaction. */
  private indexThrough(seq: number): void {
    if (seq <= this.indexedThrough) return;
    this.stmt.indexThrough(seq);
    this.indexedThrough = seq;
  }

  private backgroundCheckpoint(): void {
    if (this.closed) return;
    try {
      this.checkpoint();
    } catch (error) {
      this.onBackgroundError(new LatticeError('LEDGER_WRITE_FAILED', `timed checkpoint failed: ${describeError(error)}`, { cause: error }));
    }
  }
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
