/**
 * Table-driven policy tests (`lattice policy test DIR`): each `*.toml` file in DIR holds `[[case]]` entries, a
 * request and the decision expected for it:
 *
 *   [[case]]
 *   name = "sandboxed agents never merge"
 *   action = "github.pr.merge"
 *   params = { owner = "acme", repo = "web", number = 7 }
 *   preset = "sandboxed"            # and optionally workspace, peer, dataAccessed = ["secrets"]
 *   expect = "deny"                 # allow | hold | deny
 *   denialReason = "CONDITIONS_DENIED"   # optional, checked when given
 *   policy = "sandboxed-never-merges"    # optional: the deciding policy id
 *
 * Each case is decided as the gate would: params validated against the action's schema, planned by its provider,
 * the plan checked against the sinks, then the policy set (the `.cedar` files in DIR when there are any, else the
 * home's active set). A case fails when the outcome differs from what it expects; a malformed file stops the run.
 */
import { parse as parseToml } from 'smol-toml';
import type { ActionRegistry } from '../actions/registry.ts';
import { canonicalize, type JsonObject, type JsonValue } from '../canonical.ts';
import { LatticeError, describeError } from '../errors.ts';
import type { ProviderResolver } from '../pipeline/provider.ts';
import { compiledOnUse, describeAjvError } from '../server/validate.ts';
import { checkSinks } from '../pipeline/sinks.ts';
import type { PolicyEngine } from './engine.ts';

export interface PolicyCase {
  readonly file: string;
  readonly name: string;
  readonly action: string;
  readonly params: JsonObject;
  readonly peer: string;
  readonly workspace: string;
  readonly preset: string;
  readonly dataAccessed: string[];
  readonly expect: 'allow' | 'hold' | 'deny';
  readonly denialReason?: string;
  readonly policy?: string;
}

export interface CaseResult {
  readonly case: PolicyCase;
  readonly passed: boolean;
  readonly decision: string;
  readonly denialReason: string | null;
  readonly policies: string[];
  readonly message: string | null;
}

const CASE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['case'],
  properties: {
    case: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'action', 'expect'],
        properties: {
          name: { type: 'string', maxLength: 256 },
          action: { type: 'string', maxLength: 128 },
          params: { type: 'object' },
          peer: { type: 'string', maxLength: 128 },
          workspace: { type: 'string', maxLength: 128 },
          preset: { type: 'string', maxLength: 64 },
          dataAccessed: { type: 'array', items: { type: 'string', maxLength: 128 } },
          expect: { enum: ['allow', 'hold', 'deny'] },
          denialReason: { type: 'string', maxLength: 64 },
          policy: { type: 'string', maxLength: 256 },
        },
      },
    },
  },
} as const;

const validate = compiledOnUse<{ case: Partial<PolicyCase>[] }>(CASE_SCHEMA);

export function parseCases(text: string, file: string): PolicyCase[] {
  let raw: unknown;
  try {
    raw = JSON.parse(JSON.stringify(parseToml(text)));
  } catch (error) {
    throw new LatticeError('INVALID_ARGUMENT', `${file} is not valid TOML: ${describeError(error)}`);
  }
  if (!validate(raw)) {
    const e = validate.errors?.[0];
    throw new LatticeError('INVALID_ARGUMENT', `${file}: ${e?.instancePath === '' || e === undefined ? 'the file' : e.instancePath.slice(1).replaceAll('/', '.')} ${e?.message ?? 'is invalid'}`);
  }
  return raw.case.map((c) => ({
    file,
    name: c.name ?? '',
    action: c.action ?? '',
    params: c.params ?? {},
    peer: c.peer ?? 'peer_test',
    workspace: c.workspace ?? 'ws-test',
    preset: c.preset ?? 'sandboxed',
    dataAccessed: c.dataAccessed ?? [],
    expect: c.expect ?? 'deny',
    ...(c.denialReason !== undefined && { denialReason: c.denialReason }),
    ...(c.policy !== undefined && { policy: c.policy }),
  }));
}

export async function runCase(c: PolicyCase, engine: PolicyEngine, registry: ActionRegistry, providers: ProviderResolver): Promise<CaseResult> {
  const outcome = await decideCase(c, engine, registry, providers);
  const passed =
    outcome.decision === c.expect &&
    (c.denialReason === undefined || outcome.denialReason === c.denialReason) &&
    (c.policy === undefined || outcome.policies.includes(c.policy));
  return { case: c, passed, ...outcome };
}

async function decideCase(c: PolicyCase, engine: PolicyEngine, registry: ActionRegistry, providers: ProviderResolver): Promise<Omit<CaseResult, 'case' | 'passed'>> {
  const refused = (denialReason: string, message: string) => ({ decision: 'deny', denialReason, policies: [], message });
  const manifest = registry.get(c.action);
  if (!manifest.validateParams(c.params)) return refused('VALIDATION_FAILED', describeAjvError(manifest.validateParams.errors?.[0], 'params'));
  const planned = await providers(manifest).plan(manifest, c.params);
  if (!planned.ok) return refused('PLAN_REFUSED', planned.message);
  const sinks = checkSinks(manifest, planned.value);
  if (!sinks.ok) return refused('SINK_DENIED', sinks.message);
  const plan = JSON.parse(canonicalize({ v: 1, action: manifest.id, manifest: manifest.digest, effects: planned.value } as unknown as JsonValue)) as JsonObject;
  const d = engine.decide({ peerId: c.peer, workspace: c.workspace, preset: c.preset, action: manifest.id, context: { params: c.params, plan, risk: manifest.risk, dataAccessed: c.dataAccessed } });
  if (d.decision === 'deny') return { decision: 'deny', denialReason: d.denialReason, policies: d.policies, message: d.reason };
  return { decision: d.decision, denialReason: null, policies: d.policies, message: d.decision === 'hold' ? d.reason : null };
}
