/**
 * The DPoP replay cache in SQLite (`dpop_jti`), so a restart of the gate does not reopen the window: a proof id
 * is refused for as long as its proof could still be accepted, then purged.
 */
import type { LedgerDatabase } from '../ledger/database.ts';
import type { ReplayStore } from './dpop.ts';

export class SqliteReplayStore implements ReplayStore {
  private readonly insert;
  private readonly purgeExpired;

  constructor(db: LedgerDatabase) {
    this.insert = db.prepare('INSERT INTO dpop_jti (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING');
    this.purgeExpired = db.prepare('DELETE FROM dpop_jti WHERE expires_at < ?');
  }

  remember(jti: string, expiresAt: number): boolean {
    return this.insert.run(jti, expiresAt).changes === 1;
  }

  purge(now: number): number {
    return this.purgeExpired.run(now).changes;
  }
}
