/**
 * The DPoP replay cache, persisted in SQLite (`dpop_jti`) so a restart of the gate does not reopen the window: a
 * proof id is refused for as long as its proof could still be accepted, then purged.
 *
 * A new jti is held in memory at once and written with the ledger's next group commit (or on its own a few
 * milliseconds later when no event comes), never in a commit of its own that would cost its request an extra
 * fsync. That commit comes no later than the one recording the request's intent, so no action runs on a proof
 * whose jti is not durable. If the gate dies before the commit, the
 * jti is forgotten, and with it only requests that left no evidence: a replayed proof of a request that never ran
 * may then run it once.
 */
import { describeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { ReplayStore } from './dpop.ts';

const INSERT = 'INSERT INTO dpop_jti (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING';

export class SqliteReplayStore implements ReplayStore {
  /** jti → expiry (ms) of proofs accepted whose row has not committed yet (or could not be written). */
  private readonly unsaved = new Map<string, number>();

  constructor(private readonly ledger: Ledger) {}

  remember(jti: string, expiresAt: number): boolean {
    if (this.unsaved.has(jti) || statement(this.db, 'SELECT 1 FROM dpop_jti WHERE jti = ?').get(jti) !== undefined) return false;
    this.unsaved.set(jti, expiresAt);
    this.ledger.alongside((tx) => void statement(tx, INSERT).run(jti, expiresAt)).then(
      () => this.unsaved.delete(jti),
      // Not durable: keep refusing it from memory until it expires (purge), and say so; the commit that failed
      // has failed its requests too.
      (error: unknown) => process.stderr.write(`lattice gate: could not record a DPoP proof id: ${describeError(error)}\n`),
    );
    return true;
  }

  purge(now: number): number {
    for (const [jti, expiresAt] of this.unsaved) if (expiresAt < now) this.unsaved.delete(jti);
    return statement(this.db, 'DELETE FROM dpop_jti WHERE expires_at < ?').run(now).changes;
  }

  private get db(): LedgerDatabase {
    return this.ledger.database;
  }
}
