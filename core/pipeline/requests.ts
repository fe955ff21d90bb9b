/**
 * The `requests` table: one row per execute request, from its decision to its answer. Every write happens inside
 * the transaction of the ledger event that records it (the caller passes the transaction); state changes are
 * guarded by the state they leave (`WHERE state = ?`), so two deciders racing on one approval cannot both win.
 *
 * States: held → approved → running → executed | failed | denied (a sink the host refused), or held → denied |
 * expired | cancelled | withdrawn; running or approved at a restart → interrupted. denied is also a first state.
 */
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';
import type { Answer } from './answers.ts';

export type RequestState = 'held' | 'approved' | 'running' | 'executed' | 'failed' | 'denied' | 'expired' | 'cancelled' | 'withdrawn' | 'interrupted';

export interface RequestRow {
  readonly id: string;
  readonly peer_id: string;
  readonly workspace: string;
  readonly preset: string;
  readonly event_id: string | null;
  readonly action: string;
  readonly params: string;
  readonly request_hash: string;
  readonly plan: string | null;
  readonly plan_sha256: string | null;
  readonly policy_hash: string | null;
  readonly policy_version: string | null;
  readonly policies: string;
  readonly reason: string | null;
  readonly state: RequestState;
  readonly approval_id: string | null;
  readonly approval_expires_at: number | null;
  readonly decided_by: string | null;
  readonly response: string | null;
  readonly created_at: number;
  readonly updated_at: number;
}

export type NewRequest = Omit<RequestRow, 'response' | 'decided_by' | 'updated_at'> & { readonly response: Answer | null };

export function insertRequest(tx: LedgerDatabase, row: NewRequest): void {
  statement(
    tx,
    `INSERT INTO requests (id, peer_id, workspace, preset, event_id, action, params, request_hash, plan, plan_sha256, policy_hash,
       policy_version, policies, reason, state, approval_id, approval_expires_at, decided_by, response, created_at, updated_at)
     VALUES (@id, @peer_id, @workspace, @preset, @event_id, @action, @params, @request_hash, @plan, @plan_sha256, @policy_hash,
       @policy_version, @policies, @reason, @state, @approval_id, @approval_expires_at, NULL, @response, @created_at, @created_at)`,
  ).run({ ...row, response: row.response === null ? null : JSON.stringify(row.response) });
}

/** Moves a request from `from` to `to`; throws APPROVAL_NOT_PENDING when it is no longer in `from`. */
export function transition(tx: LedgerDatabase, id: string, from: RequestState, to: RequestState, change: { response?: Answer; decidedBy?: string; now: number }): void {
  const update = statement(tx, `UPDATE requests SET state = ?, response = coalesce(?, response), decided_by = coalesce(?, decided_by), updated_at = ? WHERE id = ? AND state = ?`);
  const result = update.run(to, change.response === undefined ? null : JSON.stringify(change.response), change.decidedBy ?? null, change.now, id, from);
  if (result.changes !== 1) throw new LatticeError('APPROVAL_NOT_PENDING', `request ${id} is no longer ${from}`);
}

export function requestById(db: LedgerDatabase, id: string): RequestRow | undefined {
  return statement(db, 'SELECT * FROM requests WHERE id = ?').get(id) as RequestRow | undefined;
}

export function requestByApproval(db: LedgerDatabase, approvalId: string): RequestRow | undefined {
  return statement(db, 'SELECT * FROM requests WHERE approval_id = ?').get(approvalId) as RequestRow | undefined;
}

export function requestByEventId(db: LedgerDatabase, peerId: string, eventId: string): RequestRow | undefined {
  return statement(db, 'SELECT * FROM requests WHERE peer_id = ? AND event_id = ?').get(peerId, eventId) as RequestRow | undefined;
}

export function requestsInState(db: LedgerDatabase, states: readonly RequestState[]): RequestRow[] {
  return statement(db, `SELECT * FROM requests WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY created_at`).all(...states) as RequestRow[];
}

export function storedAnswer(row: RequestRow): Answer | null {
  return row.response === null ? null : (JSON.parse(row.response) as Answer);
}
