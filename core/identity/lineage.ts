/**
 * Delegation chains: the recorded delegations, who delegated whom, and how long a delegated identity may live.
 *
 * A delegated identity never outlives the one that delegated it, nor the lifetime it was granted: its expiry is at
 * most its delegation's (`delegations.expires_at`, which starts as what its delegator granted) and at most every
 * ancestor's. Renewal keeps that true in both directions: a renewal is clamped to the chain above (lifeLimit), and
 * shortening an identity shortens everything below it to the same expiry (shortenBelow), so the peer, lease and
 * delegation rows always say when each identity really ends, whichever identity is renewed, and in any order.
 *
 * The lineage comes from the `delegations` table, which outlives the peers: an identity's ancestors are known
 * after any of them ended (budgets and anomaly counting charge them).
 */
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';

/** A delegation as its parent (or the child itself) sees it, live or ended. */
export interface Delegation {
  readonly id: string;
  readonly parentId: string;
  readonly name: string;
  readonly capabilities: readonly string[];
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly endedAt: number | null;
  readonly endReason: string | null;
}

interface DelegationRow {
  id: string;
  parent_id: string;
  name: string;
  capabilities: string;
  created_at: number;
  expires_at: number;
  ended_at: number | null;
  end_reason: string | null;
}

/** The delegations `parentId` made (newest first, at most 1000), or only those still live at `now`. */
export function delegationsOf(db: LedgerDatabase, parentId: string, activeOnly: boolean, now: number): Delegation[] {
  const sql = `SELECT * FROM delegations WHERE parent_id = ? ${activeOnly ? 'AND ended_at IS NULL AND expires_at > ?' : ''} ORDER BY created_at DESC LIMIT 1000`;
  return (statement(db, sql).all(...(activeOnly ? [parentId, now] : [parentId])) as DelegationRow[]).map(toDelegation);
}

/** The delegation that made `id`, live or ended, if it was delegated. */
export function delegationOf(db: LedgerDatabase, id: string): Delegation | undefined {
  const row = statement(db, 'SELECT * FROM delegations WHERE id = ?').get(id) as DelegationRow | undefined;
  return row === undefined ? undefined : toDelegation(row);
}

function toDelegation(row: DelegationRow): Delegation {
  return {
    id: row.id, parentId: row.parent_id, name: row.name, capabilities: JSON.parse(row.capabilities) as string[],
    createdAt: row.created_at, expiresAt: row.expires_at, endedAt: row.ended_at, endReason: row.end_reason,
  };
}

/** Most identities in a chain below an enrolled one: a delegation deeper than this is refused when it is made. */
export const MAX_DELEGATION_DEPTH = 8;
/** Most live delegated identities below one enrolled identity, at every depth (each holds an overlay address). */
export const MAX_LIVE_DELEGATIONS = 64;
/** The lineage walk's bound: far past MAX_DELEGATION_DEPTH, for chains recorded before it was enforced. */
const MAX_RECORDED_DEPTH = 1000;

/** The identities above `id`, nearest first (its parent, then theirs), by the recorded delegations. */
export function ancestorsOf(db: LedgerDatabase, id: string): string[] {
  const found: string[] = [];
  const parentOf = statement(db, 'SELECT parent_id FROM delegations WHERE id = ?', 'pluck');
  // Each step follows a row written when the child was created, naming an identity that existed before it, so
  // the chain cannot loop; the bound guards against a database edited by hand.
  for (let next = parentOf.get(id) as string | undefined; next !== undefined; next = parentOf.get(next) as string | undefined) {
    if (found.includes(next) || found.length >= MAX_RECORDED_DEPTH) {
      throw new LatticeError('DELEGATION_INVALID', `the delegation chain above ${id} loops or is deeper than ${MAX_RECORDED_DEPTH}; revoke ${id} or the identity at its top`);
    }
    found.push(next);
  }
  return found;
}

/** How many live identities are below `id`, at every depth, at `now`. */
export function liveBelow(db: LedgerDatabase, id: string, now: number): number {
  const below = 'WITH RECURSIVE below(id) AS (SELECT id FROM peers WHERE parent_id = ? UNION SELECT p.id FROM peers p JOIN below ON p.parent_id = below.id)';
  return statement(db, `${below} SELECT count(*) FROM peers WHERE id IN (SELECT id FROM below) AND expires_at > ?`, 'pluck').get(id, now) as number;
}

export interface LifeLimit {
  /** The latest expiry (ms) `id` may have; Infinity for an enrolled identity. */
  readonly expiresAt: number;
  /** What sets it: `delegation` (the lifetime granted) or the id of the ancestor that ends first. */
  readonly by: string | null;
}

/**
 * How long the live identity `id` may live: its delegation's expiry and every live ancestor's. An ancestor that
 * is gone or has already expired means `id` is going with it: PEER_NOT_FOUND.
 */
export function lifeLimit(db: LedgerDatabase, id: string, now: number): LifeLimit {
  const granted = statement(db, 'SELECT expires_at FROM delegations WHERE id = ? AND ended_at IS NULL', 'pluck').get(id) as number | undefined;
  let limit: LifeLimit = granted === undefined ? { expiresAt: Infinity, by: null } : { expiresAt: granted, by: 'delegation' };
  const expiry = statement(db, 'SELECT expires_at FROM peers WHERE id = ?', 'pluck');
  for (const ancestor of ancestorsOf(db, id)) {
    const expiresAt = expiry.get(ancestor) as number | undefined;
    if (expiresAt === undefined || expiresAt <= now) {
      throw new LatticeError('PEER_NOT_FOUND', `${ancestor}, which delegated ${id}, is gone or expired; ${id} goes with it`);
    }
    if (expiresAt < limit.expiresAt) limit = { expiresAt, by: ancestor };
  }
  return limit;
}

/**
 * Sets `id`'s expiry, its leases' and its delegation's to `expiresAt`, and brings every live identity below it
 * (their leases and delegations too) down to `expiresAt` where they would outlive it. Runs inside the
 * transaction of the event that records the change; PEER_NOT_FOUND when `id` is not a live peer at `now`.
 */
export function setLife(db: LedgerDatabase, id: string, expiresAt: number, now: number): void {
  if (db.prepare('UPDATE peers SET expires_at = ? WHERE id = ? AND expires_at > ?').run(expiresAt, id, now).changes !== 1) {
    throw new LatticeError('PEER_NOT_FOUND', `no live peer ${id}`);
  }
  db.prepare('UPDATE leases SET expires_at = ? WHERE peer_id = ?').run(expiresAt, id);
  db.prepare('UPDATE delegations SET expires_at = ? WHERE id = ? AND ended_at IS NULL').run(expiresAt, id);
  const below = 'WITH RECURSIVE below(id) AS (SELECT id FROM peers WHERE parent_id = ? UNION SELECT p.id FROM peers p JOIN below ON p.parent_id = below.id)';
  db.prepare(`${below} UPDATE peers SET expires_at = ? WHERE id IN (SELECT id FROM below) AND expires_at > ?`).run(id, expiresAt, expiresAt);
  db.prepare(`${below} UPDATE leases SET expires_at = ? WHERE peer_id IN (SELECT id FROM below) AND expires_at > ?`).run(id, expiresAt, expiresAt);
  db.prepare(`${below} UPDATE delegations SET expires_at = ? WHERE id IN (SELECT id FROM below) AND ended_at IS NULL AND expires_at > ?`).run(id, expiresAt, expiresAt);
}
