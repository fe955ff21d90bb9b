/**
 * Enrolled agents ("peers") and their leases. Enrollment, renewal, deletion, expiry and revocation each change
 * the peer tables in the same SQLite transaction as the ledger event that records them (the ledger's `write`
 * hook), so the state and the evidence can never disagree.
 *
 * Refuses: an unknown preset, a TTL over the maximum, an unacceptable DPoP key, and (when the pool is full) a new
 * overlay address. Overlay addresses are unique among live peers (a UNIQUE column); an expired or deleted peer's
 * address, lease and key go with it.
 */
import type { JWK } from 'jose';
import { generateWireGuardKeyPair } from '../crypto/x25519.ts';
import { randomId } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { issueCredential } from './credential.ts';
import { jwkThumbprint } from './dpop.ts';
import { PoolExhausted, allocateAddress, type Cidr } from './overlay.ts';
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
}

export interface EnrollInput {
  readonly name: string;
  readonly agentType: string;
  readonly workspace: string;
  readonly preset: PolicyPreset;
  readonly ttlMs: number;
  readonly publicJwk: JWK;
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
}

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
    const jkt = await jwkThumbprint(input.publicJwk);
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
          ).run(id, input.name, input.agentType, input.workspace, input.preset, overlayIp, jkt, JSON.stringify(input.publicJwk), wg.publicKey, epoch, now, expiresAt);
          db.prepare('INSERT INTO leases (id, peer_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(lease.id, id, lease.hash, now, expiresAt);
          peer = { id, name: input.name, agentType: input.agentType, workspace: input.workspace, preset: input.preset, overlayIp, jkt, wgPublicKey: wg.publicKey, epoch, createdAt: now, expiresAt };
        },
      },
    );
    if (peer === undefined) throw new Error('enrollment committed without a peer');
    return { peer, leaseId: lease.id, token: lease.secret, wgPrivateKey: wg.privateKey };
  }

  /** Extends a peer's life (and its lease) to now + ttl, within the maximum. */
  async renew(id: string, ttlMs: number, by: string, now = Date.now()): Promise<Peer> {
    this.checkTtl(ttlMs);
    const expiresAt = now + ttlMs;
    await this.ledger.append(
      { type: 'peer.renewed', principal: by, decision: 'allow', payload: { peerId: id, expiresAt: new Date(expiresAt).toISOString() } },
      {
        write: (db) => {
          if (db.prepare('UPDATE peers SET expires_at = ? WHERE id = ? AND expires_at > ?').run(expiresAt, id, now).changes !== 1) throw notFound(id);
          db.prepare('UPDATE leases SET expires_at = ? WHERE peer_id = ?').run(expiresAt, id);
        },
      },
    );
    return this.get(id);
  }

  /** Removes a peer with its leases and overlay address; `type` says why (deleted, expired, revoked). */
  async remove(id: string, type: 'peer.deleted' | 'peer.expired' | 'peer.revoked', by: string): Promise<void> {
    await this.ledger.append(
      { type, principal: by, payload: { peerId: id } },
      {
        write: (db) => {
          if (db.prepare('DELETE FROM peers WHERE id = ?').run(id).changes !== 1) throw notFound(id);
          if (type === 'peer.revoked') recordRevocation(db, id, 'peer');
        },
      },
    );
  }

  /** Removes every expired peer, one event each. */
  async reap(now = Date.now()): Promise<string[]> {
    const expired = this.db.prepare('SELECT id FROM peers WHERE expires_at <= ? ORDER BY expires_at').pluck().all(now) as string[];
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
    return row === undefined ? undefined : toPeer(row);
  }

  list(): Peer[] {
    return (this.db.prepare('SELECT * FROM peers ORDER BY created_at').all() as PeerRow[]).map(toPeer);
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

function notFound(id: string): LatticeError {
  return new LatticeError('PEER_NOT_FOUND', `no live peer ${id}`);
}

function toPeer(row: PeerRow): Peer {
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
  };
}
