/**
 * Approvals: plan → review → approve(planSha256) → run → result → audit. A held request keeps its immutable plan;
 * the reviewer sees it with its SHA-256 and must send that hash back: a different hash is refused
 * (PLAN_HASH_MISMATCH) and nothing runs. An approved plan runs exactly as stored, never re-planned, and only under
 * the manifest it was planned with. Only operators decide (the routes check it); an agent can only poll its own.
 *
 * Held requests end by approval, by denial (DENIED_BY_REVIEWER), by expiry (after the configured timeout), by
 * cancellation when the agent is revoked or removed, or by withdrawal when the agent that asked takes it back (its
 * caller is gone: an MCP client cancelled the tool call). Each end is one ledger event committed with the state
 * change, and the state change is guarded, so a request is decided at most once: a reviewer approving a withdrawn
 * request is refused (APPROVAL_WITHDRAWN) and nothing runs.
 */
import type { JsonObject } from '../canonical.ts';
import { constantTimeEqual } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import { currentEpoch, type Peer, type Peers } from '../identity/peers.ts';
import { deniedAnswer, endedAnswer, interruptedAnswer, type Answer, type PolicyOutcome } from './answers.ts';
import type { Decided, Plan } from './decide.ts';
import type { PipelineDeps } from './pipeline.ts';
import { requestByApproval, requestsInState, storedAnswer, transition, type RequestRow } from './requests.ts';
import { run } from './run.ts';

export interface ApprovalView {
  readonly approvalId: string;
  readonly requestId: string;
  readonly state: string;
  readonly peerId: string;
  readonly workspace: string;
  readonly preset: string;
  readonly action: string;
  readonly plan: JsonObject | null;
  readonly planSha256: string | null;
  readonly requestHash: string;
  readonly policies: string[];
  readonly reason: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly decidedBy: string | null;
}

export class Approvals {
  constructor(
    private readonly deps: PipelineDeps,
    private readonly peers: Peers,
  ) {}

  async list(states: readonly RequestRow['state'][] = ['held']): Promise<ApprovalView[]> {
    await this.expireDue(Date.now());
    const db = this.deps.ledger.database;
    const rows = db.prepare(`SELECT * FROM requests WHERE approval_id IS NOT NULL AND state IN (${states.map(() => '?').join(', ')}) ORDER BY created_at`).all(...states) as RequestRow[];
    return rows.map(view);
  }

  show(approvalId: string): ApprovalView {
    return view(this.find(approvalId));
  }

  /** The request's current answer, for its agent (only its own) or an operator (`peer` null). */
  async poll(approvalId: string, peer: Peer | null): Promise<Answer> {
    const row = this.find(approvalId);
    if (peer !== null && row.peer_id !== peer.id) throw notFound(approvalId); // another agent's approval does not exist for this one
    if (row.state === 'held') await this.expireIfDue(row);
    const answer = storedAnswer(this.find(approvalId));
    if (answer === null) throw new LatticeError('APPROVAL_NOT_PENDING', `request ${row.id} is ${row.state}; poll again shortly`);
    return answer;
  }

  async approve(approvalId: string, planSha256: string, by: string): Promise<Answer> {
    const row = await this.pending(approvalId);
    if (row.plan === null || row.plan_sha256 === null || !constantTimeEqual(row.plan_sha256, planSha256.toLowerCase())) {
      throw new LatticeError('PLAN_HASH_MISMATCH', `the plan of ${approvalId} has SHA-256 ${row.plan_sha256 ?? 'none'}, not ${planSha256}; review it with \`lattice approvals show ${approvalId}\``);
    }
    const peer = this.livePeer(row);
    if (peer === null) return this.cancel(row, 'the agent was revoked or removed');
    const manifest = this.deps.registry.get(row.action);
    const plan = JSON.parse(row.plan) as Plan;
    await this.decided(
      approvalId,
      this.deps.ledger.append(
        { type: 'approval.approved', principal: by, action: row.action, decision: 'allow', payload: { approvalId, requestId: row.id, planSha256: row.plan_sha256 } },
        { write: (tx) => transition(tx, row.id, 'held', 'approved', { decidedBy: by, now: Date.now() }) },
      ),
    );
    const policy = policyOf(row);
    const decided = {
      manifest,
      params: JSON.parse(row.params) as JsonObject,
      requestHash: row.request_hash,
      plan,
      planSha256: row.plan_sha256,
      policyVersion: row.policy_version,
      ...policy,
      decision: 'allow',
    } as const satisfies Decided;
    if (manifest.digest !== plan.manifest) return this.refuseStale(row, decided);
    return run(this.deps, { requestId: row.id, peer, decided, approvalId, row: null, event: { requestId: row.id, approvalId, requestHash: row.request_hash, planSha256: row.plan_sha256 } });
  }

  async deny(approvalId: string, reason: string, by: string): Promise<Answer> {
    const row = await this.pending(approvalId);
    let answer: Answer | undefined;
    await this.decided(
      approvalId,
      this.deps.ledger.append(
        { type: 'approval.denied', principal: by, action: row.action, decision: 'deny', payload: { approvalId, requestId: row.id, reason } },
        {
          write: (tx, seq) => {
            answer = deniedAnswer(row.id, seq, 'DENIED_BY_REVIEWER', reason, { ...policyOf(row), reason });
            transition(tx, row.id, 'held', 'denied', { response: answer, decidedBy: by, now: Date.now() });
          },
        },
      ),
    );
    return settled(answer);
  }

  /**
   * The agent that asked takes its held request back: `approval.withdrawn`, by that agent, and the request will
   * never run. Another agent's request does not exist for it (APPROVAL_NOT_FOUND, as for a poll). Answers what a
   * poll would then answer: `withdrawn`, or the outcome the request already had when it was decided first; a
   * request a reviewer approved and that is running is past withdrawing (APPROVAL_NOT_PENDING).
   */
  async withdraw(approvalId: string, peer: Peer, reason: string | null): Promise<Answer> {
    const row = this.find(approvalId);
    if (row.peer_id !== peer.id) throw notFound(approvalId);
    if (row.state === 'held' && !(await this.expireIfDue(row))) {
      const message = `withdrawn by the agent that asked${reason === null ? '' : `: ${reason}`}; it never runs`;
      await this.end(row, 'withdrawn', message, peer.id, reason === null ? {} : { reason });
    }
    const now = this.find(approvalId);
    if (now.state === 'approved' || now.state === 'running') {
      throw new LatticeError('APPROVAL_NOT_PENDING', `${approvalId} was approved and is running; it can no longer be withdrawn (poll it for its outcome)`);
    }
    return storedAnswer(now) ?? settled(undefined);
  }

  /** Expires every held request whose time is up; returns how many. */
  async expireDue(now: number): Promise<number> {
    const due = requestsInState(this.deps.ledger.database, ['held']).filter((r) => (r.approval_expires_at ?? Infinity) <= now);
    for (const row of due) await this.end(row, 'expired', 'no reviewer decided before the approval timed out', 'gate');
    return due.length;
  }

  /** Cancels held requests whose agent is gone (revoked, deleted, expired, or of an old revocation epoch). */
  async cancelOrphaned(): Promise<number> {
    const orphaned = requestsInState(this.deps.ledger.database, ['held']).filter((r) => this.livePeer(r) === null);
    for (const row of orphaned) await this.end(row, 'cancelled', 'the agent was revoked or removed', 'gate');
    return orphaned.length;
  }

  /**
   * At start: requests a previous run left `running` (or approved but not started) are recorded as interrupted
   * with a receipt, and never re-run: their effects may or may not have happened.
   */
  async recover(): Promise<number> {
    const left = requestsInState(this.deps.ledger.database, ['running', 'approved']);
    for (const row of left) {
      let answer: Answer | undefined;
      const now = new Date().toISOString();
      await this.deps.ledger.append(
        { type: 'action.interrupted', principal: row.peer_id, action: row.action, decision: 'error', payload: { requestId: row.id, approvalId: row.approval_id, was: row.state } },
        {
          receipt: {
            action: row.action,
            principal: row.peer_id,
            requestHash: row.request_hash,
            planSha256: row.plan_sha256,
            policyHash: row.policy_hash,
            policyVersion: row.policy_version,
            approvalId: row.approval_id,
            providerSha256: null,
            effectsHash: null,
            outputHash: null,
            status: 'interrupted',
            startedAt: new Date(row.updated_at).toISOString(),
            finishedAt: now,
          },
          write: (tx, seq, receipt) => {
            answer = interruptedAnswer(row.id, seq, receipt?.id ?? '');
            transition(tx, row.id, row.state, 'interrupted', { response: answer, now: Date.now() });
          },
        },
      );
    }
    return left.length;
  }

  private find(approvalId: string): RequestRow {
    const row = requestByApproval(this.deps.ledger.database, approvalId);
    if (row === undefined) throw notFound(approvalId);
    return row;
  }

  /** The held request, after expiring it if its time is up (then APPROVAL_NOT_PENDING). */
  private async pending(approvalId: string): Promise<RequestRow> {
    const row = this.find(approvalId);
    if (row.state === 'held' && !(await this.expireIfDue(row))) return row;
    throw this.notPending(approvalId);
  }

  /** A reviewer's decision, committed unless the request stopped being held meanwhile (then why it did). */
  private async decided(approvalId: string, commit: Promise<unknown>): Promise<void> {
    try {
      await commit;
    } catch (error) {
      if (error instanceof LatticeError && error.code === 'APPROVAL_NOT_PENDING') throw this.notPending(approvalId);
      throw error;
    }
  }

  private notPending(approvalId: string): LatticeError {
    const row = this.find(approvalId);
    if (row.state === 'withdrawn') {
      return new LatticeError('APPROVAL_WITHDRAWN', `${approvalId} was withdrawn by the agent that asked (${row.decided_by ?? row.peer_id}); it never runs, and the agent asks again if it still wants it`);
    }
    return new LatticeError('APPROVAL_NOT_PENDING', `${approvalId} is ${row.state}, not waiting for a decision`);
  }

  private async expireIfDue(row: RequestRow): Promise<boolean> {
    if ((row.approval_expires_at ?? Infinity) > Date.now()) return false;
    await this.end(row, 'expired', 'no reviewer decided before the approval timed out', 'gate');
    return true;
  }

  private livePeer(row: RequestRow): Peer | null {
    const peer = this.peers.find(row.peer_id);
    if (peer === undefined || peer.expiresAt <= Date.now() || peer.epoch < currentEpoch(this.deps.ledger.database)) return null;
    return peer;
  }

  private cancel(row: RequestRow, message: string): Promise<Answer> {
    return this.end(row, 'cancelled', message, 'gate');
  }

  private async end(row: RequestRow, state: 'expired' | 'cancelled' | 'withdrawn', message: string, by: string, extra: JsonObject = {}): Promise<Answer> {
    let answer: Answer | undefined;
    try {
      await this.deps.ledger.append(
        { type: `approval.${state}`, principal: by, action: row.action, decision: 'deny', payload: { approvalId: row.approval_id, requestId: row.id, ...extra } },
        {
          write: (tx, seq) => {
            answer = endedAnswer(state, row.id, row.approval_id ?? '', seq, message);
            transition(tx, row.id, 'held', state, { response: answer, decidedBy: by, now: Date.now() });
          },
        },
      );
    } catch (error) {
      // Decided meanwhile by someone else: theirs stands. Anything else is a real failure.
      if (!(error instanceof LatticeError && error.code === 'APPROVAL_NOT_PENDING')) throw error;
      return storedAnswer(this.find(row.approval_id ?? '')) ?? settled(undefined);
    }
    return settled(answer);
  }

  private async refuseStale(row: RequestRow, decided: Decided): Promise<Answer> {
    let answer: Answer | undefined;
    await this.deps.ledger.append(
      { type: 'action.denied', principal: row.peer_id, action: row.action, decision: 'deny', payload: { requestId: row.id, approvalId: row.approval_id, denialReason: 'SINK_DENIED' } },
      {
        write: (tx, seq) => {
          answer = deniedAnswer(row.id, seq, 'SINK_DENIED', `${row.action}'s manifest changed after the plan was made; the approved plan no longer matches its sinks`, decided);
          transition(tx, row.id, 'approved', 'denied', { response: answer, now: Date.now() });
        },
      },
    );
    return settled(answer);
  }
}

function policyOf(row: RequestRow): PolicyOutcome {
  return { policies: JSON.parse(row.policies) as string[], reason: row.reason, policyHash: row.policy_hash, conditions: [] };
}

function view(row: RequestRow): ApprovalView {
  return {
    approvalId: row.approval_id ?? '',
    requestId: row.id,
    state: row.state,
    peerId: row.peer_id,
    workspace: row.workspace,
    preset: row.preset,
    action: row.action,
    plan: row.plan === null ? null : (JSON.parse(row.plan) as JsonObject),
    planSha256: row.plan_sha256,
    requestHash: row.request_hash,
    policies: JSON.parse(row.policies) as string[],
    reason: row.reason,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: row.approval_expires_at === null ? null : new Date(row.approval_expires_at).toISOString(),
    decidedBy: row.decided_by,
  };
}

function notFound(approvalId: string): LatticeError {
  return new LatticeError('APPROVAL_NOT_FOUND', `no approval ${JSON.stringify(approvalId.slice(0, 64))}; \`lattice approvals list\` shows the pending ones`);
}

function settled(answer: Answer | undefined): Answer {
  if (answer === undefined) throw new Error('decision committed without an answer');
  return answer;
}
