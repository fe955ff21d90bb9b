/**
 * Why a request was denied: which permits' scope (principal, action and resource constraints) matches it, and how
 * each top-level condition of the reported policies evaluated.
 *
 * Built once per policy set: a second preparsed Cedar set, the "explanation set", holding
 * - `scope:<i>`: permit i with its conditions removed (satisfied ⇔ its scope matches; Cedar's own `in` and `is`
 *   semantics, no re-implementation), and
 * - `cond:<i>:<k>`: `permit(principal, action, resource) when { <conjunct k of policy i> };`.
 * One extra Cedar call on a denial answers both; the allow path never touches it.
 *
 * A conjunct is evaluated on its own, so one guarded by an earlier conjunct (`context.params has x && x < 5`) may
 * error: its result is then `null` ("could not be evaluated"), never a guess. Reported actual values are bounded
 * (long strings cut, large objects summarised) because a denial goes back to the agent and into the ledger.
 */
import { preparsePolicySet, statefulIsAuthorized, type Policy } from '@cedar-policy/cedar-wasm/nodejs';
import { describeError, LatticeError } from '../errors.ts';
import { conjunctsOf, type Conjunct, type Operator } from './conditions.ts';
import { isPlainObject } from './context.ts';
import type { CedarRequest } from './request.ts';
import type { LoadedPolicy } from './source.ts';
import { describeCedarError } from './location.ts';

export type ConditionResult =
  | { policy: string; field: string; operator: Operator; expected: unknown; actual: unknown; result: boolean | null }
  | { policy: string; expression: string; result: boolean | null };

export interface Explanation {
  /** Permits whose principal, action and resource constraints all match the request, in load order. */
  readonly matchedPermits: readonly LoadedPolicy[];
  /** The top-level conditions of `policies`, in order. */
  readonly conditions: (policies: readonly LoadedPolicy[], context: Record<string, unknown>) => ConditionResult[];
}

const MAX_ACTUAL_CHARS = 256;

/** The value at `path` below the context (own members of plain objects only), or null when absent. */
function valueAt(context: Record<string, unknown>, path: readonly string[]): unknown {
  let node: unknown = context;
  for (const key of path) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return null;
    node = node[key];
  }
  return node === undefined ? null : node;
}

/** The agent's value as reported back: small values as sent, large ones cut or summarised. */
function bounded(value: unknown): unknown {
  if (typeof value === 'string') return value.length <= MAX_ACTUAL_CHARS ? value : `${value.slice(0, MAX_ACTUAL_CHARS)}… (${value.length} chars)`;
  if (typeof value !== 'object' || value === null) return value;
  const text = JSON.stringify(value);
  if (text.length <= MAX_ACTUAL_CHARS) return JSON.parse(text) as unknown;
  return Array.isArray(value) ? `(array of ${value.length})` : `(object with ${Object.keys(value).length} members)`;
}

export class Explainer {
  private readonly conjuncts = new Map<LoadedPolicy, { index: number; conjuncts: readonly Conjunct[] }>();

  private constructor(
    private readonly setId: string,
    private readonly policies: readonly LoadedPolicy[],
  ) {}

  /** Builds and preparses the explanation set under `setId`; throws INTERNAL if Cedar refuses it (a bug, not user input). */
  static build(policies: readonly LoadedPolicy[], setId: string): Explainer {
    const explainer = new Explainer(setId, policies);
    const set: Record<string, Policy> = {};
    policies.forEach((policy, index) => {
      const conjuncts = conjunctsOf(policy.json);
      explainer.conjuncts.set(policy, { index, conjuncts });
      if (policy.effect === 'permit') {
        const { principal, action, resource } = policy.json;
        set[`scope:${index}`] = { effect: 'permit', principal, action, resource, conditions: [] };
      }
      conjuncts.forEach((conjunct, k) => {
        if (conjunct.probe !== null) set[`cond:${index}:${k}`] = conjunct.probe;
      });
    });
    const answer = preparsePolicySet(setId, { staticPolicies: set });
    if (answer.type === 'failure') {
      throw new LatticeError('INTERNAL', `Cedar refused the explanation set: ${answer.errors.map(describeCedarError).join('; ')}`);
    }
    return explainer;
  }

  /** Evaluates the explanation set for one request, or says why it could not. */
  explain(request: CedarRequest): { ok: true; value: Explanation } | { ok: false; message: string } {
    let answer: ReturnType<typeof statefulIsAuthorized>;
    try {
      answer = statefulIsAuthorized({ ...request, preparsedPolicySetId: this.setId });
    } catch (error) {
      return { ok: false, message: `policy explanation failed: ${describeError(error)}` };
    }
    if (answer.type === 'failure') return { ok: false, message: `policy explanation failed: ${answer.errors.map(describeCedarError).join('; ')}` };
    const satisfied = new Set(answer.response.diagnostics.reason);
    const errored = new Set(answer.response.diagnostics.errors.map((error) => error.policyId));
    const matchedPermits = this.policies.filter((policy, index) => policy.effect === 'permit' && satisfied.has(`scope:${index}`));
    const conditions = (policies: readonly LoadedPolicy[], context: Record<string, unknown>): ConditionResult[] =>
      policies.flatMap((policy) => {
        const entry = this.conjuncts.get(policy);
        if (entry === undefined) return [];
        return entry.conjuncts.map((conjunct, k): ConditionResult => {
          const id = `cond:${entry.index}:${k}`;
          const result = conjunct.probe === null || errored.has(id) ? null : satisfied.has(id);
          if (conjunct.field === null) return { policy: policy.id, expression: conjunct.expression, result };
          const { path, operator, expected } = conjunct.field;
          return { policy: policy.id, field: path.join('.'), operator, expected, actual: bounded(valueAt(context, path)), result };
        });
      });
    return { ok: true, value: { matchedPermits, conditions } };
  }
}
