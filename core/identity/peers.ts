/**
 * Enrolled agents ("peers") and their leases. Enrollment, renewal, deletion, expiry and revocation each change
 * the peer tables in the same SQLite transaction as the ledger event that records them (the ledger's `write`
 * hook), so the state and the evidence can never disagree.
 *
 * Refuses: an unknown preset, a TTL over the maximum, an unacceptable DPoP key, and (when the pool is full) a new
 * overlay address. Overlay addresses are unique among live peers (a UNIQUE column); an expired or deleted peer's
 * address, lease and key go with it.
 *
 * Delegation: a peer may create a child holding a subset of its capabilities (action patterns: `fs.read`,
 * `github.*`, `*`), living no longer than itself and at most a day; children delegate further, only narrower.
 * Renewal never takes a child past its grant or past anyone above it (lineage.ts).
 * Removing a peer, for any reason, removes everything below it, one event each, in the same group commit.
 */
import { generateWireGuardKeyPair } from '../crypto/x25519.ts';
import { randomId } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { issueCredential } from './credential.ts';
import { MAX_DELEGATION_DEPTH, MAX_LIVE_DELEGATIONS, ancestorsOf, delegationOf, delegationsOf, liveBelow, lifeLimit, setLife, type Delegation } from './lineage.ts';
import { jwkThumbprint } from './dpop.ts';
import { PoolExhausted, allocateAddress, type Cidr } from './overlay.ts';
import { readPublicJwk, type PublicJwk } from './public-jwk.ts';
import type { PolicyPreset } from './wireguard.ts';

export interface Peer {
  readonly id: string;
  readonly name: string;
  readonly agentType: string;
  readonly workspace: string;
  readonly preset: PolicyPreset;
  readonly overlayIp: string;
  readonly jkt: string;
  readonly wgPublicKey: string;
  readonly epoch: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  /** The peer that delegated this one; null for an enrolled peer. */
  readonly parentId: string | null;
  /** Every identity above this one, nearest first (parentId, then its parent, …); empty for an enrolled peer. */
  readonly ancestors: readonly string[];
  /** Action patterns this peer may use; null (an enrolled peer) means whatever policy allows. */
  readonly capabilities: readonly string[] | null;
}

export interface DelegateInput {
  readonly name: string;
  readonly capabilities: readonly string[];
  readonly ttlMs: number;
  /** As the agent sent it (attacker-controlled); checked and reduced to its key members before anything else. */
  readonly publicJwk: unknown;
}

/** Delegations live at most a day, whatever the identity maximum. */
export const MAX_DELEGATION_TTL_MS = 86_400_000;

/** Whether `pattern` (`a.b`, `a.*`, `*`) covers the action id or the narrower pattern `what`. */
export function covers(pattern: string, what: string): boolean {
  if (pattern === '*' || pattern === what) return true;
  return pattern.endsWith('.*') && what !== '*' && what.startsWith(pattern.slice(0, -1));
}

/** Whether a peer with `capabilities` (null: unrestricted) may use `action`. */
export function holds(capabilities: readonly string[] | null, action: string): boolean {
  return capabilities === null || capabilities.some((c) => covers(c, action));
}

export interface EnrollInput {
  readonly name: string;
  readonly agentType: string;
  readonly workspace: string;
  readonly preset: PolicyPreset;
  readonly ttlMs: number;
  /** As the agent sent it (attacker-controlled); checked and reduced to its key members before anything else. */
  readonly publicJwk: unknown;
  /** Who enrolled it: `operator` (admin socket) or the workspace token's id. */
  readonly by: string;
}

export interface Enrolled {
  readonly peer: Peer;
  readonly leaseId: string;
  /** The access token, shown once. */
  readonly token: string;
  /** The agent's WireGuard private key, shown once (only its public key is kept). */
  readonly wgPrivateKey: string;
}

interface PeerRow {
  id: string;
  name: string;
  agent_type: string;
  workspace: string;
  preset: string;
  overlay_ip: string;
  jkt: string;
  wg_public_key: string;
  epoch: number;
  created_at: number;
  expires_at: number;
  parent_id: string | null;
  capabilities: string | null;
}

type RemovalType = 'peer.deleted' | 'peer.expired' | 'peer.revoked';

export class Peers {
  constructor(
    private readonly ledger: Ledger,
    private readonly cidr: Cidr,
    private readonly maxTtlMs: number,
  ) {}

  private get db(): LedgerDatabase {
    return this.ledger.database;
  }

  async enroll(input: EnrollInput, now = Date.now()): Promise<Enrolled> {
    this.checkTtl(input.ttlMs);
    const { key, jkt } = await dpopKey(input.publicJwk);
    const wg = generateWireGuardKeyPair();
    const lease = issueCredential('lease');
    const id = randomId('peer');
    const expiresAt = now + input.ttlMs;
    let peer: Peer | undefined;
    await this.ledger.append(
      { type: 'peer.enrolled', principal: input.by, action: null, decision: 'allow', payload: { peerId: id, name: input.name, agentType: input.agentType, workspace: input.workspace, preset: input.preset, jkt, leaseId: lease.id, expiresAt: new Date(expiresAt).toISOString() } },
      {
        write: (db) => {
          const overlayIp = this.allocate(db);
          const epoch = currentEpoch(db);
          db.prepare(
            'INSERT INTO peers (id, name, agent_type, workspace, preset, overlay_ip, jkt, public_jwk, wg_public_key, epoch, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          ).run(id, input.name, input.agentType, input.workspace, input.preset, overlayIp, jkt, JSON.stringify(key), wg.publicKey, epoch, now, expiresAt);
          db.prepare('INSERT INTO leases (id, peer_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(lease.id, id, lease.hash, now, expiresAt);
          peer = { id, name: input.name, agentType: input.agentType, workspace: input.workspace, preset: input.preset, overlayIp, jkt, wgPublicKey: wg.publicKey, epoch, createdAt: now, expiresAt, parentId: null, ancestors: [], capabilities: null };
        },
      },
    );
    if (peer === undefined) throw new Error('enrollment committed without a peer');
    return { peer, leaseId: lease.id, token: lease.secret, wgPrivateKey: wg.privateKey };
  }

  /**
   * A child of `parent`: its workspace, preset and type, `capabilities` within the parent's, a TTL within the
   * parent's remaining life and a day, at most MAX_DELEGATION_DEPTH below an enrolled identity, which may have at
   * most MAX_LIVE_DELEGATIONS live below it (so one agent cannot take the overlay pool, nor make a chain that every
   * lineage walk pays for). Refused (DELEGATION_INVALID, TTL_TOO_LONG) otherwise.
   */
  async delegate(parent: Peer, input: DelegateInput, now = Date.now()): Promise<Enrolled> {
    // A peer's ancestors are fixed when it is made, so its depth is known from its authentication.
    if (parent.ancestors.length + 1 > MAX_DELEGATION_DEPTH) {
      throw new LatticeError('DELEGATION_INVALID', `cannot delegate: ${parent.id} is already ${parent.ancestors.length} delegations below an enrolled identity, and a chain may be at most ${MAX_DELEGATION_DEPTH} deep; delegate from an identity higher in the chain`);
    }
    const root = parent.ancestors.at(-1) ?? parent.id;
    const beyond = input.capabilities.find((c) => !(parent.capabilities ?? ['*']).some((p) => covers(p, c)));
    if (beyond !== undefined) {
      throw new LatticeError('DELEGATION_INVALID', `cannot delegate ${beyond}: it is not within this identity's capabilities (${(parent.capabilities ?? ['*']).join(', ')})`);
    }
    const limit = Math.min(MAX_DELEGATION_TTL_MS, parent.expiresAt - now);
    if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs < 1000) throw new LatticeError('VALIDATION_FAILED', 'ttl must be at least 1s');
    if (input.ttlMs > limit) throw new LatticeError('TTL_TOO_LONG', `ttl must be at most ${Math.floor(limit / 1000)}s (a day, and no longer than the delegating identity lives)`);
    const { key, jkt } = await dpopKey(input.publicJwk);
    const wg = generateWireGuardKeyPair();
    const lease = issueCredential('lease');
    const id = randomId('peer');
    const expiresAt = now + input.ttlMs;
    const capabilities = [...new Set(input.capabilities)].sort();
    let peer: Peer | undefined;
    await this.ledger.append(
      { type: 'delegation.created', principal: parent.id, decision: 'allow', payload: { peerId: id, parentId: parent.id, name: input.name, capabilities, jkt, leaseId: lease.id, expiresAt: new Date(expiresAt).toISOString() } },
      {
        write: (db) => {
          const parentExpiresAt = statement(db, 'SELECT expires_at FROM peers WHERE id = ?', 'pluck').get(parent.id) as number | undefined;
          if (parentExpiresAt === undefined) throw notFound(parent.id);
          // The parent may have shortened its life since it was authenticated; a child never outlives it.
          if (parentExpiresAt < expiresAt) throw new LatticeError('TTL_TOO_LONG', `ttl must end by ${new Date(parentExpiresAt).toISOString()}, when the delegating identity does`);
          // Counted in the transaction that adds the child, so concurrent delegations cannot pass the cap together.
          if (liveBelow(db, root, now) >= MAX_LIVE_DELEGATIONS) {
            throw new LatticeError('DELEGATION_INVALID', `cannot delegate: ${root} already has ${MAX_LIVE_DELEGATIONS} live delegated identities below it, the most one enrolled identity may have; revoke some (DELETE /api/v1/peers/:id) or let them expire`);
          }
          const overlayIp = this.allocate(db);
          db.prepare(
            'INSERT INTO peers (id, name, agent_type, workspace, preset, overlay_ip, jkt, public_jwk, wg_public_key, epoch, created_at, expires_at, parent_id, capabilities) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          ).run(id, input.name, parent.agentType, parent.workspace, parent.preset, overlayIp, jkt, JSON.stringify(key), wg.publicKey, parent.epoch, now, expiresAt, parent.id, JSON.stringify(capabilities));
          db.prepare('INSERT INTO leases (id, peer_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(lease.id, id, lease.hash, now, expiresAt);
          db.prepare('INSERT INTO delegations (id, parent_id, name, capabilities, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, parent.id, input.name, JSON.stringify(capabilities), now, expiresAt);
          peer = { ...parent, id, name: input.name, overlayIp, jkt, wgPublicKey: wg.publicKey, createdAt: now, expiresAt, parentId: parent.id, ancestors: [parent.id, ...parent.ancestors], capabilities };
        },
      },
    );
    if (peer === undefined) throw new Error('delegation committed without a peer');
    return { peer, leaseId: lease.id, token: lease.secret, wgPrivateKey: wg.privateKey };
  }

  /** The delegations `parentId` made (newest first), or only those still live. */
  delegationsOf(parentId: string, activeOnly: boolean, now = Date.now()): Delegation[] {
    return delegationsOf(this.db, parentId, activeOnly, now);
  }

  /** The delegation that made `id`, if it was delegated. */
  delegation(id: string): Delegation | undefined {
    return delegationOf(this.db, id);
  }

  /** Whether `ancestor` is `id`'s parent, grandparent, …, among live peers. */
  isAncestor(ancestor: string, id: string): boolean {
    return this.descendants(ancestor).includes(id);
  }

  /** Whether `ancestor` delegated `id`, directly or through others, by the recorded delegations (live or ended). */
  delegatedBy(ancestor: string, id: string): boolean {
    return ancestorsOf(this.db, id).includes(ancestor);
  }

  /** Live peers below `id`, parents before their children. */
  descendants(id: string): string[] {
    return this.db
      .prepare('WITH RECURSIVE d(id, depth) AS (SELECT id, 1 FROM peers WHERE parent_id = ? UNION SELECT p.id, d.depth + 1 FROM peers p JOIN d ON p.parent_id = d.id) SELECT id FROM d ORDER BY depth')
      .pluck()
      .all(id) as string[];
  }

  /**
   * Sets a peer's life (and its lease's) to now + ttl, clamped to what the peer may have: the maximum TTL (asking
   * for more is TTL_TOO_LONG), and for a delegated peer the lifetime its delegation granted and every ancestor's
   * expiry (lineage.ts). A delegated identity can shorten its life, never extend it past what it was given.
   * Everything delegated below the peer is shortened with it. The event records the expiry set, and the one asked
   * for when it was clamped.
   */
  async renew(id: string, ttlMs: number, by: string, now = Date.now()): Promise<Peer> {
    this.checkTtl(ttlMs);
    const requested = now + ttlMs;
    const limit = lifeLimit(this.db, id, now);
    const expiresAt = Math.min(requested, limit.expiresAt);
    const clamped = expiresAt < requested ? { requestedExpiresAt: new Date(requested).toISOString(), limitedBy: limit.by } : {};
    await this.ledger.append(
      { type: 'peer.renewed', principal: by, decision: 'allow', payload: { peerId: id, expiresAt: new Date(expiresAt).toISOString(), ...clamped } },
      {
        write: (db) => {
          // The chain may have been shortened since the limit was read (an ancestor's renewal in the same commit).
          if (lifeLimit(db, id, now).expiresAt < expiresAt) throw new LatticeError('TTL_TOO_LONG', `an identity above ${id} shortened its life meanwhile; renew again`);
          setLife(db, id, expiresAt, now);
        },
      },
    );
    return this.get(id);
  }

  /**
   * Removes a peer with its leases and overlay address, and every peer delegated below it; `type` says why
   * (deleted, expired, revoked). A delegated peer's event is `delegation.expired` or `delegation.revoked`. The
   * appends are queued in one tick, so the whole subtree goes in one group commit. Returns the ids removed.
   */
  async remove(id: string, type: RemovalType, by: string): Promise<string[]> {
    const below = this.descendants(id);
    const removals = [this.removeOne(id, type, by, null), ...below.map((child) => this.removeOne(child, type === 'peer.expired' ? 'peer.expired' : 'peer.revoked', by, id))];
    const results = await Promise.allSettled(removals);
    const first = results[0];
    if (first?.status === 'rejected') throw first.reason;
    // A child removed meanwhile (its own expiry, its agent) is already gone; anything else is a real failure.
    for (const r of results.slice(1)) if (r.status === 'rejected' && !(r.reason instanceof LatticeError && r.reason.code === 'PEER_NOT_FOUND')) throw r.reason;
    return [id, ...below];
  }

  private removeOne(id: string, type: RemovalType, by: string, cause: string | null): Promise<unknown> {
    const delegation = this.delegation(id);
    const eventType = delegation === undefined ? type : type === 'peer.expired' ? 'delegation.expired' : 'delegation.revoked';
    const reason = cause === null ? type.slice(5) : `${type === 'peer.expired' ? 'expired' : 'removed'} with ${cause}`;
    return this.ledger.append(
      { type: eventType, principal: by, ...(eventType === 'delegation.revoked' ? { decision: 'deny' as const } : {}), payload: { peerId: id, ...(delegation === undefined ? {} : { parentId: delegation.parentId, reason }) } },
      {
        write: (db) => {
          if (db.prepare('DELETE FROM peers WHERE id = ?').run(id).changes !== 1) throw notFound(id);
          if (type === 'peer.revoked' || eventType === 'delegation.revoked') recordRevocation(db, id, 'peer');
          if (delegation !== undefined) db.prepare('UPDATE delegations SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL').run(Date.now(), reason, id);
        },
      },
    );
  }

  /** Removes every expired peer, one event each. */
  async reap(now = Date.now()): Promise<string[]> {
    // A peer whose parent expired too goes with its parent (and is recorded as such), not on its own.
    const expired = this.db
      .prepare('SELECT id FROM peers p WHERE expires_at <= ? AND NOT EXISTS (SELECT 1 FROM peers q WHERE q.id = p.parent_id AND q.expires_at <= ?) ORDER BY expires_at')
      .pluck()
      .all(now, now) as string[];
    const reaped: string[] = [];
    for (const id of expired) {
      try {
        await this.remove(id, 'peer.expired', 'gate');
        reaped.push(id);
      } catch (error) {
        // Deleted meanwhile (by its agent or the operator): nothing left to reap. Anything else is a real failure.
        if (!(error instanceof LatticeError && error.code === 'PEER_NOT_FOUND')) throw error;
      }
    }
    return reaped;
  }

  get(id: string): Peer {
    const peer = this.find(id);
    if (peer === undefined) throw notFound(id);
    return peer;
  }

  /** The peer, or undefined when there is none by that id (removed, expired and reaped, or never enrolled). */
  find(id: string): Peer | undefined {
    const row = statement(this.db, 'SELECT * FROM peers WHERE id = ?').get(id) as PeerRow | undefined;
    return row === undefined ? undefined : toPeer(row, this.ancestors(row));
  }

  list(): Peer[] {
    return (this.db.prepare('SELECT * FROM peers ORDER BY created_at').all() as PeerRow[]).map((row) => toPeer(row, this.ancestors(row)));
  }

  /** The identities above `id` by the recorded delegations (known after they ended), nearest first. */
  lineage(id: string): string[] {
    return ancestorsOf(this.db, id);
  }

  private ancestors(row: PeerRow): string[] {
    return row.parent_id === null ? [] : ancestorsOf(this.db, row.id);
  }

  private checkTtl(ttlMs: number): void {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000) throw new LatticeError('VALIDATION_FAILED', 'ttl must be at least 1s');
    if (ttlMs > this.maxTtlMs) throw new LatticeError('TTL_TOO_LONG', `ttl must be at most ${Math.round(this.maxTtlMs / 3_600_000)}h`);
  }

  private allocate(db: LedgerDatabase): string {
    const taken = db.prepare('SELECT 1 FROM peers WHERE overlay_ip = ?').pluck();
    try {
      return allocateAddress(this.cidr, (ip) => taken.get(ip) !== undefined);
    } catch (error) {
      if (error instanceof PoolExhausted) throw new LatticeError('OVERLAY_EXHAUSTED', `no free overlay address left in ${this.cidr.text}`);
      throw error;
    }
  }
}

export function currentEpoch(db: LedgerDatabase): number {
  const value = statement(db, `SELECT value FROM gate_state WHERE key = 'epoch'`, 'pluck').get() as string | undefined;
  return value === undefined ? 0 : Number(value);
}

export function recordRevocation(db: LedgerDatabase, id: string, kind: string): void {
  db.prepare('INSERT INTO revocations (id, kind, revoked_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING').run(id, kind, Date.now());
}

/**
 * The public key DPoP proofs will be checked against (its required members only) and its RFC 7638 thumbprint,
 * or VALIDATION_FAILED saying exactly why the key sent is refused.
 */
async function dpopKey(jwk: unknown): Promise<{ key: PublicJwk; jkt: string }> {
  const read = readPublicJwk(jwk);
  if (!read.ok) throw new LatticeError('VALIDATION_FAILED', `publicJwk is refused: ${read.reason}`);
  return { key: read.key, jkt: await jwkThumbprint(read.key) };
}

function notFound(id: string): LatticeError {
  return new LatticeError('PEER_NOT_FOUND', `no live peer ${id}`);
}

function toPeer(row: PeerRow, ancestors: readonly string[]): Peer {
  return {
    id: row.id,
    name: row.name,
    agentType: row.agent_type,
    workspace: row.workspace,
    preset: row.preset as PolicyPreset,
    overlayIp: row.overlay_ip,
    jkt: row.jkt,
    wgPublicKey: row.wg_public_key,
    epoch: row.epoch,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    parentId: row.parent_id,
    ancestors,
    capabilities: row.capabilities === null ? null : (JSON.parse(row.capabilities) as string[]),
  };
}
