/**
 * The gate's own check of its ledger, for `GET /api/v1/audit/verify` and the posture score. A full
 * verification reads every event, so it is shared: one runs at a time (callers meanwhile wait for it), and its
 * report answers every caller until the head moves and `minIntervalMs` has passed. The chain is checked in a
 * worker thread when the CLI told the gate where the worker is, so a large ledger never stalls the event loop.
 */
import { availableParallelism } from 'node:os';
import type { KeyRing } from '../keys/keyring.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { verifyDatabase } from '../ledger/verify-parallel.ts';
import type { VerifyReport } from '../ledger/verify.ts';

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
    this.keys.refresh(); // a rotation by another process: its new key signs what follows
    // forceParallel keeps even a small ledger off this thread; two ranges are enough for that.
    const report = await verifyDatabase(this.ledger.paths.db, this.keys.publicKeys, {
      workers: Math.max(2, Math.min(4, availableParallelism())),
      ...(this.workerUrl !== null && { workerUrl: this.workerUrl }),
      forceParallel: true,
    });
    const finishedAtMs = Date.now();
    this.last = { report, verifiedAt: new Date(finishedAtMs).toISOString(), finishedAtMs };
    return this.last;
  }
}
