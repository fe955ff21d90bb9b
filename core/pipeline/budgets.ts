/**
 * Budgets: operator-set limits on how many actions (calls) and how much declared cost (the manifests' `cost`) an
 * agent, a workspace or a preset may use per fixed window. Set in the configuration (`[[budgets]]`) or with
 * `lattice budgets set`, through the admin socket only: an agent can neither raise nor choose its budget.
 *
 * Every budget that applies to a request must have room for it; an agent budget applies to the agent and to
 * everything it delegated, directly or further down. `check` answers for can-i and before a hold;
 * `reserve` takes the room inside the transaction that consumes the grant and records the intent, so concurrent
 * requests can never overspend a budget between the check and the use. A budget is never refunded: a call that
 * failed still used its attempt.
 */
import { LatticeError } from '../errors.ts';
import { statement, type LedgerDatabase } from '../ledger/database.ts';

export const BUDGET_SCOPES = ['agent', 'workspace', 'preset'] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];

export interface Budget {
  readonly scope: BudgetScope;
  readonly subject: string;
  readonly calls: number | null;
  readonly cost: number | null;
  readonly windowMs: number;
  readonly source: 'config' | 'operator';
}

export interface BudgetSubject {
  readonly peerId: string;
  /** The identities that delegated this one, nearest first: an agent budget on any of them is charged too. */
  readonly ancestors: readonly string[];
  readonly workspace: string;
  readonly preset: string;
}

export type BudgetCheck = { readonly ok: true } | { readonly ok: false; readonly budget: Budget; readonly message: string };

/** Thrown inside the intent transaction when a budget has no room; the pipeline turns it into a denial. */
export class BudgetExhausted extends Error {
  constructor(readonly check: Extract<BudgetCheck, { ok: false }>) {
    super(check.message);
  }
}

interface BudgetRow {
  scope: BudgetScope;
  subject: string;
  calls: number | null;
  cost: number | null;
  window_ms: number;
}

export class Budgets {
  constructor(
    private readonly db: LedgerDatabase,
    private readonly configured: readonly Budget[],
  ) {
    for (const b of configured) validateBudget(b);
  }

  list(): Budget[] {
    const rows = statement(this.db, 'SELECT scope, subject, calls, cost, window_ms FROM budgets ORDER BY scope, subject').all() as BudgetRow[];
    return [...this.configured, ...rows.map((r) => ({ scope: r.scope, subject: r.subject, calls: r.calls, cost: r.cost, windowMs: r.window_ms, source: 'operator' as const }))];
  }

  /** Sets (or replaces) an operator budget; must run inside the transaction that records the change. */
  static set(tx: LedgerDatabase, budget: Omit<Budget, 'source'>, now: number): void {
    validateBudget(budget);
    statement(
      tx,
      `INSERT INTO budgets (scope, subject, calls, cost, window_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, subject) DO UPDATE SET calls = excluded.calls, cost = excluded.cost, window_ms = excluded.window_ms, updated_at = excluded.updated_at`,
    ).run(budget.scope, budget.subject, budget.calls, budget.cost, budget.windowMs, now);
  }

  static remove(tx: LedgerDatabase, scope: BudgetScope, subject: string): boolean {
    return statement(tx, 'DELETE FROM budgets WHERE scope = ? AND subject = ?').run(scope, subject).changes === 1;
  }

  check(who: BudgetSubject, cost: number, now: number): BudgetCheck {
    return this.evaluate(this.db, who, cost, now, false);
  }

  /** Takes room in every applicable budget, or throws BudgetExhausted; must run inside the intent transaction. */
  reserve(tx: LedgerDatabase, who: BudgetSubject, cost: number, now: number): void {
    const result = this.evaluate(tx, who, cost, now, true);
    if (!result.ok) throw new BudgetExhausted(result);
  }

  /** Usage rows of windows that have ended are no longer read; removes them. */
  purge(now: number): void {
    statement(this.db, 'DELETE FROM budget_usage WHERE window_start + window_ms <= ?').run(now);
  }

  private evaluate(db: LedgerDatabase, who: BudgetSubject, cost: number, now: number, take: boolean): BudgetCheck {
    const applicable = this.list().filter((b) => appliesTo(b, who));
    const used = statement(db, 'SELECT calls, cost FROM budget_usage WHERE scope = ? AND subject = ? AND window_ms = ? AND window_start = ?');
    for (const b of applicable) {
      const start = now - (now % b.windowMs);
      const u = (used.get(b.scope, b.subject, b.windowMs, start) as { calls: number; cost: number } | undefined) ?? { calls: 0, cost: 0 };
      const name = `the ${b.scope} budget for ${b.subject}${b.scope === 'agent' && b.subject !== who.peerId ? ' (which delegated this identity)' : ''}`;
      if (b.calls !== null && u.calls + 1 > b.calls) return exhausted(b, `${name} allows ${b.calls} call(s) per window; ${u.calls} used`, start);
      if (b.cost !== null && u.cost + cost > b.cost) return exhausted(b, `${name} allows cost ${b.cost} per window; ${u.cost} used, this action costs ${cost}`, start);
    }
    if (take) {
      const add = statement(
        db,
        `INSERT INTO budget_usage (scope, subject, window_ms, window_start, calls, cost) VALUES (?, ?, ?, ?, 1, ?)
         ON CONFLICT DO UPDATE SET calls = calls + 1, cost = cost + excluded.cost`,
      );
      // Two budgets on the same subject and window share one usage row; count the call once per row.
      const seen = new Set<string>();
      for (const b of applicable) {
        const start = now - (now % b.windowMs);
        const key = `${b.scope}\0${b.subject}\0${b.windowMs}`;
        if (seen.has(key)) continue;
        seen.add(key);
        add.run(b.scope, b.subject, b.windowMs, start, cost);
      }
    }
    return { ok: true };
  }
}

/**
 * Whether a budget limits this request: its workspace's or preset's, or an agent budget of the agent or of any
 * identity above it. Delegating must not multiply what an agent may spend: every call a child makes is charged to
 * each ancestor's agent budget as well as its own.
 */
function appliesTo(b: Budget, who: BudgetSubject): boolean {
  if (b.scope === 'workspace') return b.subject === who.workspace;
  if (b.scope === 'preset') return b.subject === who.preset;
  return b.subject === who.peerId || who.ancestors.includes(b.subject);
}

function exhausted(budget: Budget, message: string, windowStart: number): BudgetCheck {
  return { ok: false, budget, message: `${message}; the window resets at ${new Date(windowStart + budget.windowMs).toISOString()}` };
}

function validateBudget(b: Omit<Budget, 'source'>): void {
  if (!BUDGET_SCOPES.includes(b.scope) || b.subject.length === 0) throw new LatticeError('INVALID_ARGUMENT', 'a budget needs an agent, a workspace or a preset');
  if (b.calls === null && b.cost === null) throw new LatticeError('INVALID_ARGUMENT', 'a budget needs a calls limit, a cost limit or both');
  if (b.calls !== null && (!Number.isSafeInteger(b.calls) || b.calls < 0)) throw new LatticeError('INVALID_ARGUMENT', 'calls must be a whole number ≥ 0');
  if (b.cost !== null && (!Number.isFinite(b.cost) || b.cost < 0)) throw new LatticeError('INVALID_ARGUMENT', 'cost must be a number ≥ 0');
  if (!Number.isSafeInteger(b.windowMs) || b.windowMs < 1000) throw new LatticeError('INVALID_ARGUMENT', 'the window must be at least 1s');
}
