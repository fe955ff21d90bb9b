/**
 * A lattice request in Cedar's terms: principal `Agent::"<peerId>"` with parents `Workspace::"<workspace>"` and
 * `Preset::"<preset>"` and attributes `delegated` (a Bool) and, for a delegated agent, `parent` (the `Agent` that
 * delegated it), action `Action::"<actionId>"`, the fixed resource `Gate::"lattice"`, and the context.
 *
 * The resource is fixed because the action id already names what is touched (`github.pr.merge`) and its target
 * lives in `context.params`; a per-request resource entity would be built from attacker-controlled params.
 *
 * Refuses identifiers Cedar's JSON boundary cannot carry (strings with lone surrogates); the context is converted
 * by context.ts, which refuses what it cannot represent faithfully.
 */
import type { Context, Entities, EntityUid } from '@cedar-policy/cedar-wasm/nodejs';

export const ENTITY = { agent: 'Agent', workspace: 'Workspace', preset: 'Preset', gate: 'Gate', action: 'Action' } as const;
export const RESOURCE: EntityUid = { type: ENTITY.gate, id: 'lattice' };

export interface PolicyRequest {
  readonly peerId: string;
  readonly workspace: string;
  readonly preset: string;
  /** The delegating peer, for a delegated agent. */
  readonly parentId?: string | null;
  /** The action id, e.g. `github.pr.merge`. */
  readonly action: string;
  /** `{ params, plan, risk, ... }`; params and plan are attacker-controlled. */
  readonly context: Record<string, unknown>;
}

export interface CedarRequest {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly entities: Entities;
  readonly context: Context;
}

/** The request's principal, action, resource and entities, or the name of an unusable identifier. */
export function cedarRequest(req: PolicyRequest, context: Context): { ok: true; value: CedarRequest } | { ok: false; message: string } {
  for (const field of ['peerId', 'workspace', 'preset', 'action'] as const) {
    const value: unknown = req[field];
    if (typeof value !== 'string' || !value.isWellFormed()) return { ok: false, message: `${field} is not a valid string` };
  }
  const parent = req.parentId ?? null;
  if (parent !== null && !parent.isWellFormed()) return { ok: false, message: 'parentId is not a valid string' };
  const principal: EntityUid = { type: ENTITY.agent, id: req.peerId };
  const entities: Entities = [
    {
      uid: principal,
      attrs: parent === null ? { delegated: false } : { delegated: true, parent: { __entity: { type: ENTITY.agent, id: parent } } },
      parents: [
        { type: ENTITY.workspace, id: req.workspace },
        { type: ENTITY.preset, id: req.preset },
      ],
    },
  ];
  return { ok: true, value: { principal, action: { type: ENTITY.action, id: req.action }, resource: RESOURCE, entities, context } };
}
