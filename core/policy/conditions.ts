/**
 * A policy's top-level conditions, for denial feedback: each `when` clause split at its top-level `&&` chain into
 * conjuncts, each `unless { e }` clause as the single conjunct `!(e)`. A conjunct of the shape
 * `context.<path> <op> <literal>` (op one of == != < <= > >=, literal a Long, String or Boolean) is also described
 * as a field comparison, so the agent is told the field, the expected value and the value it sent.
 *
 * Works on Cedar's JSON form (EST) of a policy; renders each conjunct back to Cedar text with `policyToText`. A
 * conjunct Cedar cannot render (e.g. a Long literal beyond 2^53, which the EST has already rounded) keeps a
 * placeholder expression and is reported with result `null`, never guessed.
 */
import { policyToJson, policyToText, type Expr, type PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';

export type Operator = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

const OPERATORS = { '==': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge' } as const satisfies Record<string, Operator>;

export interface FieldComparison {
  /** Attribute names below `context`, e.g. ['params', 'files']. */
  readonly path: readonly string[];
  readonly operator: Operator;
  readonly expected: string | number | boolean;
}

export interface Conjunct {
  /** Cedar text of the conjunct, or a placeholder when Cedar could not render it. */
  readonly expression: string;
  readonly field: FieldComparison | null;
  /** `permit(principal, action, resource) when { <conjunct> };`, or null when it cannot be evaluated alone. */
  readonly probe: string | null;
}

const PROBE_PREFIX = 'permit(principal, action, resource) when { ';
const PROBE_SUFFIX = ' };';

function splitAnd(expr: Expr, out: Expr[]): void {
  if ('&&' in expr) {
    const both = expr['&&'] as { left: Expr; right: Expr };
    splitAnd(both.left, out);
    splitAnd(both.right, out);
  } else {
    out.push(expr);
  }
}

/** `context.a.b` → ['a', 'b']; anything else (or a name containing '.', which a dotted path could not show) → null. */
function contextPath(expr: Expr): string[] | null {
  const path: string[] = [];
  let node: Expr = expr;
  while ('.' in node) {
    const access = node['.'] as { left: Expr; attr: string };
    if (access.attr.includes('.')) return null;
    path.unshift(access.attr);
    node = access.left;
  }
  return 'Var' in node && node.Var === 'context' && path.length > 0 ? path : null;
}

function fieldComparison(expr: Expr): FieldComparison | null {
  for (const [symbol, operator] of Object.entries(OPERATORS)) {
    if (!Object.hasOwn(expr, symbol)) continue;
    const { left, right } = (expr as Record<string, { left: Expr; right: Expr }>)[symbol]!;
    const path = contextPath(left);
    if (path === null || !('Value' in right)) return null;
    const expected = right.Value;
    if (typeof expected !== 'string' && typeof expected !== 'number' && typeof expected !== 'boolean') return null;
    return { path, operator, expected };
  }
  return null;
}

function render(expr: Expr): { expression: string; probe: string } | null {
  try {
    const answer = policyToText({ effect: 'permit', principal: { op: 'All' }, action: { op: 'All' }, resource: { op: 'All' }, conditions: [{ kind: 'when', body: expr }] });
    if (answer.type === 'failure') return null;
    const probe = answer.text;
    if (!probe.startsWith(PROBE_PREFIX) || !probe.endsWith(PROBE_SUFFIX)) return null;
    // The probe must read back as Cedar text, or evaluating it would fail the whole explanation set.
    if (policyToJson(probe).type === 'failure') return null;
    return { expression: probe.slice(PROBE_PREFIX.length, -PROBE_SUFFIX.length), probe };
  } catch {
    // Cedar's JSON reader throws on inputs it cannot take (e.g. deeper than 128 levels): this conjunct is reported
    // as not renderable with result null; the policy itself is unaffected.
    return null;
  }
}

/** The policy's conjuncts in clause order. */
export function conjunctsOf(policy: PolicyJson): Conjunct[] {
  const exprs: Expr[] = [];
  for (const clause of policy.conditions) {
    if (clause.kind === 'when') splitAnd(clause.body, exprs);
    else exprs.push({ '!': { arg: clause.body } });
  }
  return exprs.map((expr, index) => {
    const rendered = render(expr);
    const expression = rendered?.expression ?? `(condition ${index + 1}: not renderable)`;
    return { expression, field: fieldComparison(expr), probe: rendered?.probe ?? null };
  });
}
