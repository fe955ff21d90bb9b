/**
 * Pipeline steps 5 and 6 for a request policy allowed (or a reviewer approved):
 *
 *   intent    a signed one-shot grant is consumed, the budgets are reserved and `action.started` is committed,
 *             all in one transaction, before any effect runs; a consumed grant or a request that already ran
 *             refuses (GRANT_CONSUMED), an exhausted budget denies (BUDGET_EXHAUSTED)
 *   effects   the host performs the plan exactly as it stands, injecting secrets only there, within the action's
 *             timeout; a sink the host refuses denies (SINK_DENIED), any other failure fails the request
 *   finish    the provider turns the host-observed results into the output
 *   evidence  `action.executed` (or `action.failed`) with a signed receipt commits before the agent is answered
 *
 * Once the intent is committed, every outcome is recorded with a receipt; if even that record cannot be written,
 * the request stays `running` and the next start records it as interrupted. Nothing is retried.
 *
 * A plan with no effects (echo, pure transformations) touches nothing outside the gate, so it has nothing for a
 * separate intent commit to protect: finish runs first, and intent and evidence share one group commit, intent
 * first. The evidence write refuses unless this run's grant was consumed, so it can never stand alone.
 */
import { canonicalize, type JsonObject, type JsonValue } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import { describeError, isLatticeError, type LatticeError } from '../errors.ts';
import type { Peer } from '../identity/peers.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { ReceiptFields } from '../ledger/receipt.ts';
import { deniedAnswer, executedAnswer, failedAnswer, type Answer, type PolicyOutcome } from './answers.ts';
import { BudgetExhausted, type Budgets } from './budgets.ts';
import type { Decided } from './decide.ts';
import { evidenceOf, type EffectHost, type EffectResult } from './effects.ts';
import { assertConsumed, consumeGrant, issueGrant } from './grant.ts';
import type { Provider, ProviderResolver } from './provider.ts';
import { insertRequest, transition, type NewRequest } from './requests.ts';

export interface RunDeps {
  readonly ledger: Ledger;
  readonly budgets: Budgets;
  readonly providers: ProviderResolver;
  readonly effects: EffectHost;
  readonly secret: (name: string) => string;
}

export interface Runnable {
  readonly requestId: string;
  readonly peer: Peer;
  readonly decided: Decided;
  readonly approvalId: string | null;
  /** A new request is inserted with its intent; an approved one moves from `approved`. */
  readonly row: NewRequest | null;
  readonly event: JsonObject;
}

type Outcome = { kind: 'executed'; output: JsonValue } | { kind: 'denied'; error: LatticeError } | { kind: 'failed'; error: { code: string; message: string } };

export async function run(deps: RunDeps, r: Runnable): Promise<Answer> {
  const { ledger } = deps;
  const { decided, peer } = r;
  const who = { peerId: peer.id, ancestors: peer.ancestors, workspace: peer.workspace, preset: peer.preset };
  const binding = { requestId: r.requestId, peerId: peer.id, action: decided.manifest.id, requestHash: decided.requestHash, planSha256: decided.planSha256 };
  const grant = await issueGrant(ledger.keys.active, binding, Date.now());
  const startedAt = new Date().toISOString();
  const provider = deps.providers(decided.manifest);
  const intentEvent = { type: 'action.started', principal: peer.id, action: decided.manifest.id, decision: 'allow' as const, payload: { ...r.event, grantId: grant.id } };
  const intent = () =>
    ledger.append(intentEvent, {
      write: (tx) => {
        const now = Date.now();
        consumeGrant(tx, ledger.keys.publicKeys, grant, binding, now);
        deps.budgets.reserve(tx, who, decided.manifest.cost, now);
        if (r.row !== null) insertRequest(tx, { ...r.row, state: 'running' });
        else transition(tx, r.requestId, 'approved', 'running', { now });
      },
    });

  if (decided.plan.effects.length === 0) {
    // Nothing leaves the host, so there is nothing for a separate intent commit to guard: finish runs first and the
    // intent and the evidence are queued together, into one group commit (intent first, in the same order).
    const performed = await perform(deps, r, provider);
    const [started, evidence] = await Promise.allSettled([intent(), recordEvidence(deps, r, grant.id, provider, performed, startedAt)]);
    if (started.status === 'rejected') return refusedIntent(deps, r, started.reason); // and the evidence found no consumed grant
    if (evidence.status === 'rejected') throw evidence.reason;
    return evidence.value;
  }
  try {
    await intent();
  } catch (error) {
    return refusedIntent(deps, r, error);
  }
  return recordEvidence(deps, r, grant.id, provider, await perform(deps, r, provider), startedAt);
}

/** A budget with no room is a recorded denial; any other refusal of the intent (a consumed grant) propagates. */
function refusedIntent(deps: RunDeps, r: Runnable, error: unknown): Promise<Answer> {
  if (!(error instanceof BudgetExhausted)) throw error;
  return recordBudgetDenial(deps, r, error.message);
}

/**
 * `action.executed` (or denied or failed) with its receipt; the request leaves `running` in the same transaction,
 * which refuses unless this run's grant was consumed (by an earlier commit, or earlier in this one).
 */
async function recordEvidence(deps: RunDeps, r: Runnable, grantId: string, provider: Provider, performed: { outcome: Outcome; results: EffectResult[] }, startedAt: string): Promise<Answer> {
  const { decided, peer } = r;
  const policy: PolicyOutcome = decided;
  const { results, outcome: o } = performed;
  const output = o.kind === 'executed' ? o.output : null;
  const receipt: ReceiptFields = {
    action: decided.manifest.id,
    principal: peer.id,
    requestHash: decided.requestHash,
    planSha256: decided.planSha256,
    policyHash: decided.policyHash,
    policyVersion: decided.policyVersion,
    approvalId: r.approvalId,
    providerSha256: provider.sha256,
    effectsHash: sha256Hex(canonicalize(results.map(evidenceOf) as JsonValue)),
    outputHash: output === null ? null : sha256Hex(canonicalize(output)),
    status: o.kind === 'executed' ? 'executed' : 'failed',
    startedAt,
    finishedAt: new Date().toISOString(),
  };
  let answer: Answer | undefined;
  await deps.ledger.append(
    {
      type: o.kind === 'executed' ? 'action.executed' : o.kind === 'denied' ? 'action.denied' : 'action.failed',
      principal: peer.id,
      action: decided.manifest.id,
      decision: o.kind === 'executed' ? 'allow' : o.kind === 'denied' ? 'deny' : 'error',
      payload: { requestId: r.requestId, effects: results.map(evidenceOf) as JsonValue, ...(o.kind === 'executed' ? {} : { code: o.error.code }) },
    },
    {
      receipt,
      write: (tx, seq, stored) => {
        assertConsumed(tx, grantId);
        const receiptId = stored?.id ?? '';
        answer =
          o.kind === 'executed'
            ? executedAnswer(r.requestId, seq, receiptId, o.output, policy, r.approvalId)
            : o.kind === 'denied'
              ? deniedAnswer(r.requestId, seq, 'SINK_DENIED', o.error.message, policy, receiptId)
              : failedAnswer(r.requestId, seq, receiptId, o.error);
        transition(tx, r.requestId, 'running', o.kind === 'executed' ? 'executed' : o.kind === 'denied' ? 'denied' : 'failed', { response: answer, now: Date.now() });
      },
    },
  );
  if (answer === undefined) throw new Error('evidence committed without an answer');
  return answer;
}

/** The effects, in order, then finish; never throws (every failure is an outcome to record). */
async function perform(deps: RunDeps, r: Runnable, provider: Provider): Promise<{ outcome: Outcome; results: EffectResult[] }> {
  const { manifest, plan, params } = r.decided;
  const results: EffectResult[] = [];
  const signal = AbortSignal.timeout(manifest.timeoutMs);
  try {
    for (const effect of plan.effects) results.push(await deps.effects.perform(effect, { manifest, secret: deps.secret, signal }));
    const finished = await provider.finish(manifest, params, results);
    if (!finished.ok) return { outcome: { kind: 'failed', error: { code: 'PROVIDER_FAILED', message: `the ${manifest.id} provider could not finish: ${finished.message}` } }, results };
    return { outcome: { kind: 'executed', output: finished.value }, results };
  } catch (error) {
    if (isLatticeError(error) && error.code === 'SINK_DENIED') return { outcome: { kind: 'denied', error }, results };
    if (isLatticeError(error) && (error.code === 'EFFECT_FAILED' || error.code === 'SECRET_NOT_FOUND')) {
      return { outcome: { kind: 'failed', error: { code: error.code, message: error.message } }, results };
    }
    process.stderr.write(`lattice gate: ${manifest.id} failed unexpectedly: ${describeError(error)}\n`);
    return { outcome: { kind: 'failed', error: { code: 'EFFECT_FAILED', message: `${manifest.id} could not be completed (internal error)` } }, results };
  }
}

async function recordBudgetDenial(deps: RunDeps, r: Runnable, message: string): Promise<Answer> {
  let answer: Answer | undefined;
  await deps.ledger.append(
    { type: 'action.denied', principal: r.peer.id, action: r.decided.manifest.id, decision: 'deny', payload: { ...r.event, denialReason: 'BUDGET_EXHAUSTED' } },
    {
      write: (tx, seq) => {
        answer = deniedAnswer(r.requestId, seq, 'BUDGET_EXHAUSTED', message, { ...r.decided, conditions: [] });
        if (r.row !== null) insertRequest(tx, { ...r.row, state: 'denied', response: answer });
        else transition(tx, r.requestId, 'approved', 'denied', { response: answer, now: Date.now() });
      },
    },
  );
  if (answer === undefined) throw new Error('denial committed without an answer');
  return answer;
}
