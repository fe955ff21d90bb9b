/**
 * Operator and workspace tokens: bearer credentials with scopes, created only through the admin socket. Agent
 * credentials are leases (peers.ts) and have no scopes at all, so an agent can never hold an operator scope.
 *
 * What a token's limits mean, per scope (checked when the token is made, and again each time it is used):
 * - `workspace`: `enroll` enrolls agents into that workspace only; `peers:write` renews and removes peers of that
 *   workspace only. The other scopes act on the whole gate (approvals, the ledger, policies, secrets) and are not
 *   limited per workspace, so a token holding any of them cannot carry a workspace.
 * - `presets`: the policy presets an `enroll` token may give the agents it enrolls; `sandboxed` unless the
 *   operator names others. Only an `enroll` token has them.
 *
 * Authentication refuses a malformed, unknown, expired or revoked token with its own code; the secret is
 * compared in constant time and never stored or logged.
 */
import { LatticeError } from '../errors.ts';
import type { LedgerDatabase } from '../ledger/database.ts';
import { credentialMatches, issueCredential, parseCredential } from './credential.ts';
import type { PolicyPreset } from './wireguard.ts';

export const SCOPES = ['enroll', 'approve', 'audit:read', 'policy:write', 'secrets:write', 'peers:write'] as const;
export type Scope = (typeof SCOPES)[number];

/** The scopes a workspace limit applies to: each acts on something that belongs to one workspace. */
export const WORKSPACE_SCOPES = ['enroll', 'peers:write'] as const satisfies readonly Scope[];
export type WorkspaceScope = (typeof WORKSPACE_SCOPES)[number];

/** What an enroll token grants when the operator names no presets. */
export const DEFAULT_TOKEN_PRESETS: readonly PolicyPreset[] = ['sandboxed'];

export function isWorkspaceScope(scope: Scope): scope is WorkspaceScope {
  return (WORKSPACE_SCOPES as readonly Scope[]).includes(scope);
}

export interface TokenRecord {
  readonly id: string;
  readonly scopes: readonly Scope[];
  readonly workspace: string | null;
  /** The presets an enroll token may grant; null for a token without the enroll scope. */
  readonly presets: readonly PolicyPreset[] | null;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

interface TokenRow {
  id: string;
  token_hash: string;
  scopes: string;
  workspace: string | null;
  presets: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface TokenInput {
  readonly scopes: readonly Scope[];
  readonly workspace: string | null;
  /** For an enroll token; DEFAULT_TOKEN_PRESETS when null. Refused for a token without the enroll scope. */
  readonly presets: readonly PolicyPreset[] | null;
  readonly ttlMs: number | null;
  readonly now: number;
}

/** A token's scopes and limits as they will be stored, or VALIDATION_FAILED naming a limit that cannot apply. */
export function tokenLimits(input: Pick<TokenInput, 'scopes' | 'workspace' | 'presets'>): Pick<TokenRecord, 'scopes' | 'workspace' | 'presets'> {
  const scopes = [...new Set(input.scopes)].sort();
  const unlimited = scopes.filter((scope) => !isWorkspaceScope(scope));
  if (input.workspace !== null && unlimited.length > 0) {
    throw new LatticeError(
      'VALIDATION_FAILED',
      `a workspace limits only ${WORKSPACE_SCOPES.join(' and ')}; ${unlimited.join(', ')} act(s) on the whole gate: make a separate token for them without a workspace`,
    );
  }
  const enrolls = scopes.includes('enroll');
  if (input.presets !== null && !enrolls) throw new LatticeError('VALIDATION_FAILED', 'presets limit what an enroll token may grant; this token has no enroll scope');
  const presets = enrolls ? [...new Set(input.presets ?? DEFAULT_TOKEN_PRESETS)].sort() : null;
  return { scopes, workspace: input.workspace, presets };
}

export function createToken(db: LedgerDatabase, input: TokenInput): { record: TokenRecord; token: string } {
  const issued = issueCredential('tok');
  const record: TokenRecord = {
    id: issued.id,
    ...tokenLimits(input),
    createdAt: input.now,
    expiresAt: input.ttlMs === null ? null : input.now + input.ttlMs,
    revokedAt: null,
  };
  db.prepare('INSERT INTO tokens (id, token_hash, scopes, workspace, presets, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)').run(
    record.id,
    issued.hash,
    JSON.stringify(record.scopes),
    record.workspace,
    record.presets === null ? null : JSON.stringify(record.presets),
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
    presets: row.presets === null ? null : (JSON.parse(row.presets) as PolicyPreset[]),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}
