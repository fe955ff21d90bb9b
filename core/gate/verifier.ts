/**
 * The gate's own check of its ledger, for `GET /api/v1/audit/verify` and the posture score. A full
 * verification reads every event, so it is shared: one runs at a time (callers meanwhile wait for it), and its
 * report answers every caller until the head moves and `minIntervalMs` has passed. The chain is checked in a
 * worker thread when the CLI told the gate where the worker is, so a large ledger never stalls the event loop.
 */
import { availableParallelism } from 'node:os';
import type { KeyRing } from '../keys/keyring.ts';
import { openReadOnly } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { databaseSource } from '../ledger/sources.ts';
import { verifyDatabase } from '../ledger/verify-parallel.ts';
import { verifyLedger, type VerifyReport } from '../ledger/verify.ts';

export interface Verification {
  readonly report: VerifyReport;
  /** ISO 8601, when this verification finished. */
  readonly verifiedAt: string;
  readonly finishedAtMs: number;
}

export class GateVerifier {
  private last: Verification | null = null;
  private running: Promise<Verification> | null = null;

  constructor(
    private readonly ledger: Ledger,
    private readonly keys: KeyRing,
    private readonly workerUrl: URL | null,
    private readonly minIntervalMs = 5_000,
  ) {}

  /** The latest verification, without running one. */
  get latest(): Verification | null {
    return this.last;
  }

  /**
   * A verification covering the current head, or one at most `maxAgeMs` old (at least `minIntervalMs`); runs one
   * if needed. Agents may ask as often as they like, so their calls accept an older report: a full verification
   * reads every event, and no agent should be able to keep the gate doing that.
   */
  verify(maxAgeMs = this.minIntervalMs, now = Date.now()): Promise<Verification> {
    const last = this.last;
    if (last !== null && (last.report.lastSeq === this.ledger.head().seq || now - last.finishedAtMs < Math.max(maxAgeMs, this.minIntervalMs))) return Promise.resolve(last);
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<Verification> {
    const keys = this.keys.publicKeys;
    let report: VerifyReport;
    if (this.workerUrl !== null) {
      // forceParallel keeps even a small ledger off this thread; two ranges are enough for that.
      report = await verifyDatabase(this.ledger.paths.db, keys, { workers: Math.max(2, Math.min(4, availableParallelism())), workerUrl: this.workerUrl, forceParallel: true });
    } else {
      const db = openReadOnly(this.ledger.paths.db);
      try {
        db.exec('BEGIN'); // one snapshot while the gate keeps appending
        report = await verifyLedger(databaseSource(db, keys));
      } finally {
        db.close();
      }
    }
    const finishedAtMs = Date.now();
    this.last = { report, verifiedAt: new Date(finishedAtMs).toISOString(), finishedAtMs };
    return this.last;
  }
}
