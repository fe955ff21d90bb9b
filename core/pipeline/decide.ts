/**
 * Pipeline steps 2–4 for one request, shared by execute and can-i so the two can never disagree:
 *
 *   validate  the params against the action's schema (refused with VALIDATION_FAILED, 400);
 *             requestHash = sha256(JCS(params))
 *   plan      the provider's plan (a refusal is PLAN_REFUSED, 400); planSha256 = sha256(JCS(plan)); every effect
 *             is checked against the manifest's sinks (denied with SINK_DENIED)
 *   authorize a delegated agent's capabilities (CAPABILITY_DENIED), the applied policy set (POLICY_TAMPERED when
 *             the files changed behind the gate's back), then the budgets (BUDGET_EXHAUSTED) for what policy allows
 *             or holds
 *
 * Nothing here writes: a decision is recorded (or not, for can-i) by the caller. Any failure of the provider or
 * the policy engine denies; nothing is allowed by default.
 */
import type { ActionManifest } from '../actions/manifest.ts';
import type { ActionRegistry } from '../actions/registry.ts';
import { canonicalize, type JsonObject, type JsonValue } from '../canonical.ts';
import { sha256Hex } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { holds, type Peer } from '../identity/peers.ts';
import type { PolicyStore } from '../policy/store.ts';
import { describeAjvError } from '../server/validate.ts';
import type { DenialReason, PolicyOutcome } from './answers.ts';
import type { Budgets } from './budgets.ts';
import type { Effect } from './effects.ts';
import type { ProviderResolver } from './provider.ts';
import { checkSinks } from './sinks.ts';

export interface Plan {
  readonly v: 1;
  readonly action: string;
  /** Digest of the manifest the plan was made under; an approved plan runs only under the same manifest. */
  readonly manifest: string;
  readonly effects: readonly Effect[];
}

export interface Proposal {
  readonly action: string;
  readonly params: unknown;
  readonly dataAccessed: readonly string[];
}

interface Planned {
  readonly manifest: ActionManifest;
  readonly params: JsonObject;
  readonly requestHash: string;
  readonly plan: Plan;
  readonly planSha256: string;
}

export type Decided = Planned &
  PolicyOutcome & { readonly policyVersion: string | null } & (
    | { readonly decision: 'allow' }
    | { readonly decision: 'hold' }
    | { readonly decision: 'deny'; readonly denialReason: DenialReason; readonly message: string }
  );

export interface DecideDeps {
  readonly registry: ActionRegistry;
  readonly providers: ProviderResolver;
  readonly policies: PolicyStore;
  readonly budgets: Budgets;
}

/** Deepest nesting of params accepted (canonicalization and Cedar both recurse). */
const MAX_PARAMS_DEPTH = 32;

export async function decide(deps: DecideDeps, peer: Peer, proposal: Proposal, now: number): Promise<Decided> {
  const planned = await planRequest(deps, proposal);
  const none: PolicyOutcome = { policies: [], reason: null, policyHash: null, conditions: [] };
  const sinks = checkSinks(planned.manifest, planned.plan.effects);
  if (!sinks.ok) return { ...planned, ...none, policyVersion: null, decision: 'deny', denialReason: 'SINK_DENIED', message: `effect ${sinks.effect}: ${sinks.message}` };

  if (!holds(peer.capabilities, planned.manifest.id)) {
    const message = `this delegated identity holds ${peer.capabilities?.join(', ') ?? ''}, not ${planned.manifest.id}`;
    return { ...planned, ...none, policyVersion: null, decision: 'deny', denialReason: 'CAPABILITY_DENIED', message };
  }
  const active = deps.policies.current();
  if (!active.ok) return { ...planned, ...none, policyVersion: null, decision: 'deny', denialReason: 'POLICY_TAMPERED', message: active.message };
  const context: Record<string, unknown> = { params: planned.params, plan: planned.plan, risk: planned.manifest.risk, dataAccessed: [...proposal.dataAccessed] };
  const d = active.engine.decide({ peerId: peer.id, workspace: peer.workspace, preset: peer.preset, parentId: peer.parentId, action: planned.manifest.id, context });
  const base = { ...planned, policyHash: active.hash, policyVersion: active.version, policies: d.policies, reason: d.decision === 'allow' ? null : d.reason };
  if (d.decision === 'deny') {
    return { ...base, conditions: d.conditions, decision: 'deny', denialReason: d.denialReason, message: d.reason ?? denialMessage(d.denialReason) };
  }
  const budget = deps.budgets.check({ peerId: peer.id, ancestors: peer.ancestors, workspace: peer.workspace, preset: peer.preset }, planned.manifest.cost, now);
  if (!budget.ok) return { ...base, conditions: [], decision: 'deny', denialReason: 'BUDGET_EXHAUSTED', message: budget.message };
  return { ...base, conditions: [], decision: d.decision };
}

/** Validate and plan: throws VALIDATION_FAILED or PLAN_REFUSED (the agent's fault) or PROVIDER_FAILED. */
async function planRequest(deps: DecideDeps, proposal: Proposal): Promise<Planned> {
  const manifest = deps.registry.get(proposal.action);
  const params = checkParamsShape(proposal.params);
  if (!manifest.validateParams(params)) {
    const problem = describeAjvError(manifest.validateParams.errors?.[0], 'params');
    throw new LatticeError('VALIDATION_FAILED', `${problem} (see \`lattice actions ${manifest.id}\` for the schema)`);
  }
  const json = params as JsonObject;
  const requestHash = sha256Hex(canonicalize(json));
  const provider = deps.providers(manifest);
  let planned;
  try {
    planned = await provider.plan(manifest, json);
  } catch (error) {
    throw new LatticeError('PROVIDER_FAILED', `the ${manifest.id} provider failed to plan: ${describeError(error)}`, { cause: error });
  }
  if (!planned.ok) throw new LatticeError('PLAN_REFUSED', `${manifest.id} cannot plan this request: ${planned.message}`);
  const plan: Plan = { v: 1, action: manifest.id, manifest: manifest.digest, effects: planned.value };
  let planText: string;
  try {
    planText = canonicalize(plan as unknown as JsonValue);
  } catch (error) {
    throw new LatticeError('PROVIDER_FAILED', `the ${manifest.id} provider returned a plan that is not JSON: ${describeError(error)}`, { cause: error });
  }
  return { manifest, params: json, requestHash, plan, planSha256: sha256Hex(planText) };
}

function denialMessage(reason: DenialReason): string {
  if (reason === 'NO_POLICY') return 'no policy permits this agent to run this action (default deny)';
  if (reason === 'CONDITIONS_DENIED') return 'a policy names this agent and action, but its conditions decided against this request';
  return `denied (${reason})`;
}

/**
 * Params are a JSON object nested at most MAX_PARAMS_DEPTH deep, checked without recursion before anything hashes,
 * validates or compares them: every path through execute (a first request or a repeated eventId) starts here.
 */
export function checkParamsShape(params: unknown): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new LatticeError('VALIDATION_FAILED', 'params must be a JSON object');
  if (depthOf(params) > MAX_PARAMS_DEPTH) throw new LatticeError('VALIDATION_FAILED', `params are nested deeper than ${MAX_PARAMS_DEPTH} levels`);
  return params as Record<string, unknown>;
}

/** Nesting depth of a JSON value, without recursion (an attacker chooses the depth). */
function depthOf(value: unknown): number {
  let max = 0;
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 0 }];
  while (stack.length > 0) {
    const { v, d } = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d + 1 > max) max = d + 1;
    if (max > MAX_PARAMS_DEPTH) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push({ v: child, d: d + 1 });
  }
  return max;
}

/**
 * Whether an agent could ever get an action through, from the scopes of the applied policies (not their
 * conditions, so it errs toward listing): what an MCP server offers as tools. `needsApproval` when every permit in
 * scope is an approval permit. Never a decision: execute still decides each request in full.
 */
export function usability(policies: PolicyStore, peer: Peer, manifest: ActionManifest): { usable: boolean; needsApproval: boolean } {
  const active = policies.current();
  if (!active.ok || !holds(peer.capabilities, manifest.id)) return { usable: false, needsApproval: false };
  const permits = active.engine.permitsInScope({ peerId: peer.id, workspace: peer.workspace, preset: peer.preset, parentId: peer.parentId, action: manifest.id });
  if (permits === null || permits.length === 0) return { usable: false, needsApproval: false };
  return { usable: true, needsApproval: permits.every((p) => p.approval) };
}
