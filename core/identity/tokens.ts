/**
 * Operator and workspace tokens: bearer credentials with scopes, created only through the admin socket. An
 * `enroll` token may be limited to one workspace. Agent credentials are leases (peers.ts) and have no scopes at
 * all, so an agent can never hold an operator scope.
 *
 * Authentication refuses a malformed, unknown, expired or revoked token with its own code; the secret is
 * compared in constant time and never stored or logged.
 */
import { LatticeError } from '../errors.ts';
import type { LedgerDatabase } from '../ledger/database.ts';
import { credentialMatches, issueCredential, parseCredential } from './credential.ts';

export const SCOPES = ['enroll', 'approve', 'audit:read', 'policy:write', 'secrets:write', 'peers:write'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenRecord {
  readonly id: string;
  readonly scopes: readonly Scope[];
  readonly workspace: string | null;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

interface TokenRow {
  id: string;
  token_hash: string;
  scopes: string;
  workspace: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export function createToken(db: LedgerDatabase, input: { scopes: readonly Scope[]; workspace: string | null; ttlMs: number | null; now: number }): { record: TokenRecord; token: string } {
  const issued = issueCredential('tok');
  const record: TokenRecord = {
    id: issued.id,
    scopes: [...new Set(input.scopes)].sort(),
    workspace: input.workspace,
    createdAt: input.now,
    expiresAt: input.ttlMs === null ? null : input.now + input.ttlMs,
    revokedAt: null,
  };
  db.prepare('INSERT INTO tokens (id, token_hash, scopes, workspace, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)').run(
    record.id,
    issued.hash,
    JSON.stringify(record.scopes),
    record.workspace,
    record.createdAt,
    record.expiresAt,
  );
  return { record, token: issued.secret };
}

export function listTokens(db: LedgerDatabase): TokenRecord[] {
  return (db.prepare('SELECT * FROM tokens ORDER BY created_at').all() as TokenRow[]).map(toRecord);
}

/** Marks a token revoked; returns false when there is no such token. */
export function revokeToken(db: LedgerDatabase, id: string, now: number): boolean {
  return db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes === 1 || tokenExists(db, id);
}

function tokenExists(db: LedgerDatabase, id: string): boolean {
  return db.prepare('SELECT 1 FROM tokens WHERE id = ?').get(id) !== undefined;
}

/** The token behind a presented bearer credential, or a refusal. */
export function authenticateToken(db: LedgerDatabase, presented: string, now: number): TokenRecord {
  const parsed = parseCredential(presented);
  if (parsed === undefined || !parsed.id.startsWith('tok_')) throw new LatticeError('TOKEN_INVALID', 'the bearer token is not a lattice token');
  const row = db.prepare('SELECT * FROM tokens WHERE id = ?').get(parsed.id) as TokenRow | undefined;
  if (row === undefined || !credentialMatches(parsed.hash, row.token_hash)) throw new LatticeError('TOKEN_INVALID', 'the bearer token is not valid');
  if (row.revoked_at !== null) throw new LatticeError('TOKEN_REVOKED', `token ${row.id} has been revoked`);
  if (row.expires_at !== null && row.expires_at <= now) throw new LatticeError('TOKEN_EXPIRED', `token ${row.id} has expired`);
  return toRecord(row);
}

function toRecord(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    scopes: JSON.parse(row.scopes) as Scope[],
    workspace: row.workspace,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}
