/**
 * The policy engine: pipeline step 4, "Authorize". Decides allow / hold / deny for one request with Cedar
 * (default deny) over a policy set parsed once per policy text.
 *
 * Decision rule:
 * - Cedar allows and at least one determining permit lacks `@approval("required")` → allow;
 * - Cedar allows and every determining permit carries it → hold (a human must approve);
 * - Cedar denies → deny, with a denialReason:
 *   - CONDITIONS_DENIED: a forbid's conditions held, or a permit's scope matched but its conditions failed;
 *   - NO_POLICY: no permit's principal/action/resource constraints match the request;
 *   - POLICY_ERROR: Cedar could not evaluate — a forbid whose scope matched raised an error (so it is treated as
 *     holding: an agent must not escape a forbid by omitting the field it reads), or the engine itself failed;
 *   - REQUEST_INVALID: the context or an identifier cannot be given to Cedar faithfully (context.ts).
 *
 * Fails closed: any evaluation error denies. A forbid that errors denies even when a permit allows; a permit that
 * errors simply grants nothing (Cedar's semantics; an error can never widen access). `decide` never throws: an
 * unexpected exception is a POLICY_ERROR denial.
 */
import { preparsePolicySet, statefulIsAuthorized, type AuthorizationAnswer } from '@cedar-policy/cedar-wasm/nodejs';
import { describeError, LatticeError } from '../errors.ts';
import { toCedarContext } from './context.ts';
import { Explainer, type ConditionResult } from './explain.ts';
import { policyHash, type PolicyFile } from './hash.ts';
import { describeCedarError } from './location.ts';
import { ENTITY, cedarRequest, type CedarRequest, type PolicyRequest } from './request.ts';
import { parsePolicyFiles, type LoadedPolicy, type PolicyProblem } from './source.ts';

export type { ConditionResult } from './explain.ts';
export { canonicalPolicyText, policyHash, type PolicyFile } from './hash.ts';
export type { PolicyRequest } from './request.ts';
export type { PolicyProblem } from './source.ts';

export type DenialReason = 'CONDITIONS_DENIED' | 'NO_POLICY' | 'POLICY_ERROR' | 'REQUEST_INVALID';

export type Decision =
  | { decision: 'allow'; policies: string[] }
  | { decision: 'hold'; policies: string[]; reason: string | null }
  | { decision: 'deny'; denialReason: DenialReason; policies: string[]; reason: string | null; conditions: ConditionResult[] };

/** "file:line:column: message" for each problem, one per line. */
export function formatProblems(problems: readonly PolicyProblem[]): string {
  return problems
    .map((p) => {
      const where = [p.file, p.line, p.column].filter((part) => part !== null).join(':');
      const policy = p.policy === null ? '' : ` [${p.policy}]`;
      return `${where === '' ? '' : `${where}: `}${p.message}${policy}`;
    })
    .join('\n');
}

function firstReason(policies: readonly LoadedPolicy[]): string | null {
  return policies.find((policy) => policy.reason !== null)?.reason ?? null;
}

function deny(denialReason: DenialReason, policies: readonly LoadedPolicy[], reason: string | null, conditions: ConditionResult[] = []): Decision {
  return { decision: 'deny', denialReason, policies: policies.map((p) => p.id), reason, conditions };
}

/** Whether the EST `value` (a policy's conditions) contains the variable `name` anywhere: `{"Var": name}`. */
function mentionsVar(value: unknown, name: string): boolean {
  if (Array.isArray(value)) return value.some((v) => mentionsVar(v, name));
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return record['Var'] === name || Object.values(record).some((v) => mentionsVar(v, name));
}

export class PolicyEngine {
  private static last: PolicyEngine | undefined;

  private constructor(
    /** SHA-256 of the canonical policy text (hash.ts): the receipts' `policyHash`. */
    readonly hash: string,
    private readonly setId: string,
    private readonly byId: ReadonlyMap<string, LoadedPolicy>,
    private readonly explainer: Explainer,
    /** Whether any policy's conditions read `context`; when none does, Cedar is given an empty one (see evaluate). */
    private readonly readsContext: boolean,
  ) {
    let rank = 0;
    for (const id of byId.keys()) this.rank.set(id, rank++);
  }

  /** Load order of each policy id: Cedar lists determining policies in no particular order. */
  private readonly rank = new Map<string, number>();

  /**
   * Parses and preparses the files. Throws INVALID_ARGUMENT (POLICY_INVALID once that code exists) naming the file,
   * line and column of every problem. Loading the same text again returns the same engine without re-parsing.
   */
  static load(files: readonly PolicyFile[]): PolicyEngine {
    const hash = policyHash(files);
    if (PolicyEngine.last?.hash === hash) return PolicyEngine.last;
    const parsed = parsePolicyFiles(files);
    if (!parsed.ok) throw new LatticeError('POLICY_INVALID', `policy refused:\n${formatProblems(parsed.problems)}`);
    // Cedar caches preparsed sets per thread by id; ids derive from the content, so equal ids mean equal sets.
    // A cached set is never freed: one per distinct policy text loaded in this process's lifetime.
    const setId = `lattice:${hash}`;
    const answer = preparsePolicySet(setId, { staticPolicies: Object.fromEntries(parsed.policies.map((p) => [p.id, p.text])) });
    if (answer.type === 'failure') {
      throw new LatticeError('INTERNAL', `Cedar refused the policy set: ${answer.errors.map(describeCedarError).join('; ')}`);
    }
    const explainer = Explainer.build(parsed.policies, `${setId}:explain`);
    const readsContext = parsed.policies.some((p) => mentionsVar(p.json.conditions, 'context'));
    const engine = new PolicyEngine(hash, setId, new Map(parsed.policies.map((p) => [p.id, p])), explainer, readsContext);
    PolicyEngine.last = engine;
    return engine;
  }

  /** The policies in evaluation order (files by name, then position), for `lattice policy list`. */
  get policies(): LoadedPolicy[] {
    return [...this.byId.values()];
  }

  /** Decides one request. Never throws; see the header for the rule and the denial reasons. */
  decide(req: PolicyRequest): Decision {
    try {
      return this.evaluate(req);
    } catch (error) {
      return deny('POLICY_ERROR', [], `policy evaluation failed: ${describeError(error)}`);
    }
  }

  /**
   * The permits whose scope (principal, action, resource) matches this request, ignoring their conditions: the
   * policies that could let it through for some params. Used to judge a policy set (posture), never to decide.
   * Scopes never read the context, so none is asked for. Null when the request cannot be evaluated (the caller
   * must not read that as "nothing matches").
   */
  permitsInScope(req: Omit<PolicyRequest, 'context'>): LoadedPolicy[] | null {
    const request = cedarRequest({ ...req, context: {} }, {});
    if (!request.ok) return null;
    const explanation = this.explainer.explain(request.value);
    return explanation.ok ? [...explanation.value.matchedPermits] : null;
  }

  /**
   * The policies (permits and forbids) whose principal constraint covers this agent: every policy that can ever
   * apply to it, whatever the action. `in` is reflexive and follows the agent's parents (workspace, preset).
   */
  policiesFor(who: { readonly peerId: string; readonly workspace: string; readonly preset: string }): LoadedPolicy[] {
    const entities = new Set([`${ENTITY.agent}\0${who.peerId}`, `${ENTITY.workspace}\0${who.workspace}`, `${ENTITY.preset}\0${who.preset}`]);
    const uid = (e: unknown) => {
      const ref = (e as { __entity?: { type: string; id: string } }).__entity ?? (e as { type: string; id: string });
      return `${ref.type}\0${ref.id}`;
    };
    return this.policies.filter(({ json: { principal: c } }) => {
      if (c.op === 'All') return true;
      if (c.op === '==') return 'entity' in c && uid(c.entity) === `${ENTITY.agent}\0${who.peerId}`;
      if (c.op === 'in') return 'entity' in c && entities.has(uid(c.entity));
      return c.entity_type === ENTITY.agent && (c.in === undefined || ('entity' in c.in && entities.has(uid(c.in.entity))));
    });
  }

  private evaluate(req: PolicyRequest): Decision {
    const context = toCedarContext(req.context);
    if (!context.ok) return deny('REQUEST_INVALID', [], context.message);
    const request = cedarRequest(req, context.value);
    if (!request.ok) return deny('REQUEST_INVALID', [], request.message);
    // Handing Cedar the context costs about as much as the decision itself. A set whose conditions never name
    // `context` cannot be swayed by it, so such a set decides on an empty one (the explanations still get all of it).
    const call = this.readsContext ? request.value : { ...request.value, context: {} };
    const answer: AuthorizationAnswer = statefulIsAuthorized({ ...call, preparsedPolicySetId: this.setId });
    if (answer.type === 'failure') {
      return deny('POLICY_ERROR', [], `policy evaluation failed: ${answer.errors.map(describeCedarError).join('; ')}`);
    }
    const { decision, diagnostics } = answer.response;
    const determining = this.lookup(diagnostics.reason);
    const erroredForbids = diagnostics.errors.flatMap(({ policyId, error }) => {
      const policy = this.byId.get(policyId);
      return policy?.effect === 'forbid' ? [{ policy, message: error.message }] : [];
    });

    if (decision === 'allow' && erroredForbids.length === 0) {
      if (determining.some((p) => !p.approval)) return { decision: 'allow', policies: determining.map((p) => p.id) };
      return { decision: 'hold', policies: determining.map((p) => p.id), reason: firstReason(determining) };
    }
    const forbids = determining.filter((p) => p.effect === 'forbid');
    if (forbids.length > 0) return this.explained(request.value, req, 'CONDITIONS_DENIED', forbids, firstReason(forbids));
    if (erroredForbids.length > 0) {
      const policies = erroredForbids.map((e) => e.policy);
      const reason = firstReason(policies) ?? `policy ${policies[0]!.id} could not be evaluated: ${erroredForbids[0]!.message}`;
      return this.explained(request.value, req, 'POLICY_ERROR', policies, reason);
    }
    return this.explained(request.value, req, null, [], null);
  }

  /**
   * A denial with its conditions. `denialReason` null means Cedar's default deny: CONDITIONS_DENIED when some permit's
   * scope matched (its conditions failed), NO_POLICY when none did.
   */
  private explained(request: CedarRequest, req: PolicyRequest, denialReason: DenialReason | null, policies: LoadedPolicy[], reason: string | null): Decision {
    const explanation = this.explainer.explain(request);
    // Without an explanation a default deny cannot be classified; a forbid's denial stands, just without conditions.
    if (!explanation.ok) return deny(denialReason ?? 'POLICY_ERROR', policies, reason ?? explanation.message);
    const { matchedPermits, conditions } = explanation.value;
    if (denialReason === null) {
      if (matchedPermits.length === 0) return deny('NO_POLICY', [], null);
      return deny('CONDITIONS_DENIED', matchedPermits, firstReason(matchedPermits), conditions(matchedPermits, req.context));
    }
    const reported = [...policies, ...matchedPermits.filter((p) => !policies.includes(p))];
    return deny(denialReason, policies, reason, conditions(reported, req.context));
  }

  private lookup(ids: readonly string[]): LoadedPolicy[] {
    return ids.flatMap((id) => this.byId.get(id) ?? []).sort((a, b) => (this.rank.get(a.id) ?? 0) - (this.rank.get(b.id) ?? 0));
  }
}
