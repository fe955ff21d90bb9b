/**
 * The action pipeline for one agent request: authenticate (the route) → decide (validate, plan, sinks, policy,
 * budgets; decide.ts) → deny, hold for approval, or run (run.ts) → answer. Every decision is committed to the
 * ledger, with the request's row, before the agent hears it; can-i makes the same decision and records nothing.
 *
 * `eventId` makes a request idempotent per agent: a repeat (same action and params) gets the first answer and runs
 * nothing; a repeat with other params is refused (EVENT_ID_REUSED). Concurrent repeats wait for the first.
 */
import { canonicalize, type JsonObject, type JsonValue } from '../canonical.ts';
import { randomId, sha256Hex } from '../crypto/index.ts';
import { LatticeError } from '../errors.ts';
import type { Peer } from '../identity/peers.ts';
import { deniedAnswer, requestedAnswer, type Answer } from './answers.ts';
import { checkParamsShape, decide, type DecideDeps, type Decided, type Proposal } from './decide.ts';
import { insertRequest, requestByEventId, storedAnswer, type NewRequest, type RequestRow } from './requests.ts';
import { run, type RunDeps } from './run.ts';

export interface ExecuteInput extends Proposal {
  readonly eventId: string | null;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface PipelineDeps extends DecideDeps, RunDeps {
  /** How long a held request waits for a reviewer. */
  readonly approvalTimeoutMs: number;
}

export class Pipeline {
  private readonly inflight = new Map<string, Promise<Answer>>();

  constructor(readonly deps: PipelineDeps) {}

  async execute(peer: Peer, input: ExecuteInput): Promise<Answer> {
    checkParamsShape(input.params); // before a repeat is compared by hashing its params
    if (input.eventId === null) return this.decideAndAct(peer, input);
    const key = `${peer.id}\0${input.eventId}`;
    const running = this.inflight.get(key);
    if (running !== undefined) {
      await running.catch(() => undefined); // its failure is the first caller's to report; the repeat reads the row
      return this.repeat(peer, input);
    }
    const existing = requestByEventId(this.deps.ledger.database, peer.id, input.eventId);
    if (existing !== undefined) return this.answerRepeat(existing, input);
    const work = this.decideAndAct(peer, input);
    this.inflight.set(key, work);
    try {
      return await work;
    } finally {
      this.inflight.delete(key);
    }
  }

  /** The decision execute would make now, with no grant, no effect and no ledger event. */
  async canI(peer: Peer, proposal: Proposal): Promise<JsonObject> {
    const d = await decide(this.deps, peer, proposal, Date.now());
    return {
      action: d.manifest.id,
      decision: d.decision,
      allowed: d.decision === 'allow',
      needsApproval: d.decision === 'hold',
      denialReason: d.decision === 'deny' ? d.denialReason : null,
      message: d.decision === 'deny' ? d.message : null,
      policy: d.policies[0] ?? null,
      policies: [...d.policies],
      reason: d.reason,
      conditions: d.conditions as unknown as JsonValue[],
      requestHash: d.requestHash,
      planSha256: d.planSha256,
      policyHash: d.policyHash,
    };
  }

  private async repeat(peer: Peer, input: ExecuteInput): Promise<Answer> {
    const row = requestByEventId(this.deps.ledger.database, peer.id, input.eventId ?? '');
    if (row === undefined) return this.execute(peer, input); // the first attempt was refused before it was recorded
    return this.answerRepeat(row, input);
  }

  private answerRepeat(row: RequestRow, input: ExecuteInput): Answer {
    const requestHash = sha256Hex(canonicalize(input.params as JsonObject)); // its shape was checked by execute
    if (row.action !== input.action || row.request_hash !== requestHash) {
      throw new LatticeError('EVENT_ID_REUSED', `eventId ${JSON.stringify(row.event_id)} was already used for another request (${row.action}); use a new eventId`);
    }
    const answer = storedAnswer(row);
    if (answer !== null) return answer;
    throw new LatticeError('APPROVAL_NOT_PENDING', `request ${row.id} is ${row.state}; ask again shortly`);
  }

  private async decideAndAct(peer: Peer, input: ExecuteInput): Promise<Answer> {
    const now = Date.now();
    const d = await decide(this.deps, peer, input, now);
    const requestId = randomId('req');
    const event: JsonObject = {
      requestId,
      requestHash: d.requestHash,
      planSha256: d.planSha256,
      manifest: d.manifest.digest,
      policies: [...d.policies],
      policyHash: d.policyHash,
      eventId: input.eventId,
      metadata: { ...input.metadata },
      dataAccessed: [...input.dataAccessed],
    };
    const approvalId = d.decision === 'hold' ? randomId('apr') : null;
    const expiresAt = now + this.deps.approvalTimeoutMs;
    const row: NewRequest = {
      id: requestId,
      peer_id: peer.id,
      workspace: peer.workspace,
      preset: peer.preset,
      event_id: input.eventId,
      action: d.manifest.id,
      params: canonicalize(d.params),
      request_hash: d.requestHash,
      plan: canonicalize(d.plan as unknown as JsonValue),
      plan_sha256: d.planSha256,
      policy_hash: d.policyHash,
      policy_version: d.policyVersion,
      policies: JSON.stringify(d.policies),
      reason: d.reason,
      state: 'held',
      approval_id: approvalId,
      approval_expires_at: approvalId === null ? null : expiresAt,
      response: null,
      created_at: now,
    };
    switch (d.decision) {
      case 'allow':
        return run(this.deps, { requestId, peer, decided: d, approvalId: null, row, event });
      case 'deny':
        return this.recordDenial(peer, d, row, event);
      case 'hold':
        return this.recordHold(peer, d, row, event, approvalId ?? '', expiresAt);
    }
  }

  private async recordDenial(peer: Peer, d: Extract<Decided, { decision: 'deny' }>, row: NewRequest, event: JsonObject): Promise<Answer> {
    if (d.denialReason === 'POLICY_TAMPERED') {
      const active = this.deps.policies.current();
      if (!active.ok) await this.deps.policies.reportTamper(active);
    }
    let answer: Answer | undefined;
    await this.deps.ledger.append(
      { type: 'action.denied', principal: peer.id, action: d.manifest.id, decision: 'deny', payload: { ...event, denialReason: d.denialReason } },
      {
        write: (tx, seq) => {
          answer = deniedAnswer(row.id, seq, d.denialReason, d.message, d);
          insertRequest(tx, { ...row, state: 'denied', approval_id: null, approval_expires_at: null, response: answer });
        },
      },
    );
    if (answer === undefined) throw new Error('denial committed without an answer');
    return answer;
  }

  private async recordHold(peer: Peer, d: Decided, row: NewRequest, event: JsonObject, approvalId: string, expiresAt: number): Promise<Answer> {
    let answer: Answer | undefined;
    await this.deps.ledger.append(
      { type: 'approval.requested', principal: peer.id, action: d.manifest.id, decision: 'hold', payload: { ...event, approvalId, expiresAt: new Date(expiresAt).toISOString() } },
      {
        write: (tx, seq) => {
          answer = requestedAnswer(row.id, seq, approvalId, d.planSha256, expiresAt, d);
          insertRequest(tx, { ...row, response: answer }); // a poll or repeat gets this until the request is decided
        },
      },
    );
    if (answer === undefined) throw new Error('hold committed without an answer');
    return answer;
  }
}
