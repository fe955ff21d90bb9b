/**
 * The pipeline's API. Agents (DPoP) execute actions, ask can-i, and poll or withdraw their own held requests; operators (the admin
 * socket, or a bearer token with the scope named) review and decide approvals, set budgets and apply policies.
 * An agent credential can never decide an approval, set a budget or apply a policy: those routes accept only
 * operators, and an agent asking is refused like any caller without the scope.
 */
import type { ActionRegistry } from '../actions/registry.ts';
import { LatticeError } from '../errors.ts';
import { authenticateAgent, authenticateCaller, authenticateOperator, operatorName, type AuthDeps } from '../identity/auth.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { checkPolicies } from '../policy/check.ts';
import { formatProblems } from '../policy/engine.ts';
import { actionSchema } from '../policy/schema.ts';
import { policyDir, readPolicyDir, type PolicyStore } from '../policy/store.ts';
import type { Route } from '../server/http.ts';
import { bodyDuration, validator } from '../server/validate.ts';
import type { Approvals } from './approvals.ts';
import { BUDGET_SCOPES, Budgets, type BudgetScope } from './budgets.ts';
import type { Pipeline } from './pipeline.ts';
import type { RequestState } from './requests.ts';

const LABEL = '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$';

interface ExecuteBody {
  params: Record<string, unknown>;
  eventId?: string;
  metadata?: Record<string, string>;
  dataAccessed?: string[];
}

const common = {
  params: { type: 'object', required: [] },
  metadata: { type: 'object', nullable: true, required: [], maxProperties: 16, propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' }, additionalProperties: { type: 'string', maxLength: 256 } },
  dataAccessed: { type: 'array', nullable: true, maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: LABEL } },
} as const;

const executeBody = validator<ExecuteBody>({
  type: 'object',
  additionalProperties: false,
  required: ['params'],
  properties: { ...common, eventId: { type: 'string', nullable: true, pattern: '^[A-Za-z0-9_.:-]{1,128}$' } },
});

const canIBody = validator<{ action: string; params: Record<string, unknown>; dataAccessed?: string[] }>({
  type: 'object',
  additionalProperties: false,
  required: ['action', 'params'],
  properties: { action: { type: 'string', maxLength: 128 }, params: common.params, dataAccessed: common.dataAccessed },
});

const approveBody = validator<{ planSha256: string }>({ type: 'object', additionalProperties: false, required: ['planSha256'], properties: { planSha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' } } });
const denyBody = validator<{ reason: string }>({ type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 1024 } } });
/** An agent's reason is shown to reviewers: one line, no control characters. */
const withdrawBody = validator<{ reason?: string }>({
  type: 'object',
  additionalProperties: false,
  required: [],
  properties: { reason: { type: 'string', nullable: true, minLength: 1, maxLength: 512, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$' } },
});

const budgetBody = validator<{ scope: BudgetScope; subject: string; calls?: number; cost?: number; window: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['scope', 'subject', 'window'],
  properties: {
    scope: { type: 'string', enum: [...BUDGET_SCOPES] },
    subject: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$' },
    calls: { type: 'integer', nullable: true, minimum: 0, maximum: 1e12 },
    cost: { type: 'number', nullable: true, minimum: 0, maximum: 1e15 },
    window: { type: 'string', maxLength: 16 },
  },
});

const policyBody = validator<{ files: { name: string; text: string }[] }>({
  type: 'object',
  additionalProperties: false,
  required: ['files'],
  properties: {
    files: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: { type: 'object', additionalProperties: false, required: ['name', 'text'], properties: { name: { type: 'string', maxLength: 134 }, text: { type: 'string', maxLength: 512 * 1024 } } },
    },
  },
});

const STATES: readonly RequestState[] = ['held', 'approved', 'running', 'executed', 'failed', 'denied', 'expired', 'cancelled', 'withdrawn', 'interrupted'];

export interface PipelineRouteDeps {
  readonly pipeline: Pipeline;
  readonly approvals: Approvals;
  readonly budgets: Budgets;
  readonly policies: PolicyStore;
  readonly registry: ActionRegistry;
  readonly ledger: Ledger;
  readonly auth: AuthDeps;
}

export function pipelineRoutes(d: PipelineRouteDeps): Route[] {
  const { auth } = d;
  return [
    {
      method: 'POST',
      path: '/api/v1/actions/:id/execute',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const body = executeBody(await ctx.readBody());
        const answer = await d.pipeline.execute(peer, {
          action: ctx.params['id'] ?? '',
          params: body.params,
          eventId: body.eventId ?? null,
          metadata: body.metadata ?? {},
          dataAccessed: body.dataAccessed ?? [],
        });
        return answer;
      },
    },
    {
      method: 'POST',
      path: '/api/v1/can-i',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const body = canIBody(await ctx.readBody());
        return { status: 200, body: await d.pipeline.canI(peer, { action: body.action, params: body.params, dataAccessed: body.dataAccessed ?? [] }) };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/approvals',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        authenticateOperator(ctx, auth.db, 'approve');
        const state = ctx.query.get('state') ?? 'held';
        const states = state === 'all' ? STATES : STATES.filter((s) => s === state);
        if (states.length === 0) throw new LatticeError('VALIDATION_FAILED', `state must be one of ${STATES.join(', ')} or all`);
        return { status: 200, body: { approvals: await d.approvals.list(states) } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/approvals/:id',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        const caller = await authenticateCaller(ctx, auth, 'approve');
        if (caller.kind === 'agent') return d.approvals.poll(id, caller.agent.peer);
        const answer = await d.approvals.poll(id, null).catch((error: unknown) => {
          if (error instanceof LatticeError && error.code === 'APPROVAL_NOT_PENDING') return null; // mid-run: no answer yet
          throw error;
        });
        return { status: 200, body: { ...d.approvals.show(id), answer } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/approvals/:id/withdraw',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const { reason } = withdrawBody(await ctx.readBody());
        if (reason !== undefined && !reason.isWellFormed()) throw new LatticeError('VALIDATION_FAILED', 'reason is not well-formed Unicode');
        return d.approvals.withdraw(ctx.params['id'] ?? '', peer, reason ?? null);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/approvals/:id/approve',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const by = operatorName(authenticateOperator(ctx, auth.db, 'approve'));
        return d.approvals.approve(ctx.params['id'] ?? '', approveBody(await ctx.readBody()).planSha256, by);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/approvals/:id/deny',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const by = operatorName(authenticateOperator(ctx, auth.db, 'approve'));
        return d.approvals.deny(ctx.params['id'] ?? '', denyBody(await ctx.readBody()).reason, by);
      },
    },
    {
      method: 'GET',
      path: '/api/v1/budgets',
      on: ['admin'],
      handle: () => Promise.resolve({ status: 200, body: { budgets: d.budgets.list() } }),
    },
    {
      method: 'POST',
      path: '/api/v1/budgets',
      on: ['admin'],
      async handle(ctx) {
        const b = budgetBody(await ctx.readBody());
        const windowMs = bodyDuration(b.window, 'window');
        const budget = { scope: b.scope, subject: b.subject, calls: b.calls ?? null, cost: b.cost ?? null, windowMs };
        await d.ledger.append({ type: 'budget.set', principal: 'operator', payload: { ...budget } }, { write: (tx) => Budgets.set(tx, budget, Date.now()) });
        return { status: 200, body: { ...budget, source: 'operator' } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/budgets/:scope/:subject',
      on: ['admin'],
      async handle(ctx) {
        const scope = ctx.params['scope'] as BudgetScope;
        const subject = ctx.params['subject'] ?? '';
        if (!BUDGET_SCOPES.includes(scope)) throw new LatticeError('VALIDATION_FAILED', `scope must be one of ${BUDGET_SCOPES.join(', ')}`);
        await d.ledger.append(
          { type: 'budget.removed', principal: 'operator', payload: { scope, subject } },
          {
            write: (tx) => {
              if (!Budgets.remove(tx, scope, subject)) throw new LatticeError('NOT_FOUND', `no operator budget for ${scope} ${subject}`);
            },
          },
        );
        return { status: 200, body: { removed: { scope, subject } } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/policies',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const caller = await authenticateCaller(ctx, auth, 'audit:read');
        const scope = ctx.query.get('scope') ?? (caller.kind === 'agent' ? 'own' : 'org');
        if (scope !== 'own' && scope !== 'org') throw new LatticeError('VALIDATION_FAILED', 'scope must be own or org');
        if (scope === 'own' && caller.kind !== 'agent') throw new LatticeError('VALIDATION_FAILED', 'scope=own is for agents; an operator reads scope=org');
        const state = d.policies.current();
        if (!state.ok) return { status: 200, body: { scope, state: 'tampered', message: state.message, ...(caller.kind === 'operator' && { expected: state.expected, found: state.found }), policies: [] } };
        const peer = caller.kind === 'agent' ? caller.agent.peer : null;
        const listed = peer !== null && scope === 'own' ? state.engine.policiesFor({ peerId: peer.id, workspace: peer.workspace, preset: peer.preset }) : state.engine.policies;
        const policies = listed.map((p) => ({ id: p.id, file: p.file, effect: p.effect, approval: p.approval, reason: p.reason, text: p.text }));
        if (caller.kind === 'agent') return { status: 200, body: { scope, state: 'applied', hash: state.hash, version: state.version, policies } };
        return { status: 200, body: { scope, state: 'applied', hash: state.hash, version: state.version, dir: policyDir(d.ledger.paths), files: readPolicyDir(d.ledger.paths), policies } };
      },
    },
    {
      method: 'POST',
      path: '/api/v1/policies',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const by = operatorName(authenticateOperator(ctx, auth.db, 'policy:write'));
        const { files } = policyBody(await ctx.readBody());
        const problems = checkPolicies(files, actionSchema(d.registry)).filter((p) => p.severity === 'error');
        if (problems.length > 0) throw new LatticeError('POLICY_INVALID', `policy refused:\n${formatProblems(problems)}`);
        const applied = await d.policies.apply(files, by);
        return { status: 200, body: { ...applied, files: files.map((f) => f.name) } };
      },
    },
  ];
}
