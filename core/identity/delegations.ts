/**
 * Delegation routes: an agent creates scoped sub-agents, lists them, and revokes them with everything below.
 *
 *   POST   /api/v1/delegations          {name, capabilities, ttl, publicJwk} → 201 the child's credential parts
 *                                        (ttl: seconds as a number, or a duration string like "10m")
 *   GET    /api/v1/delegations?role=parent|child&activeOnly=true|false
 *   DELETE /api/v1/delegations/:id      the child and its subtree (an ancestor, or the operator)
 *
 * The child's key pair is made by the caller (the SDK), so the gate never holds a private key; the child proves
 * possession with DPoP like any agent. Capabilities and TTL are checked by Peers.delegate.
 */
import { LatticeError } from '../errors.ts';
import type { RequestContext, Route } from '../server/http.ts';
import { bodyDuration, durationMember, validator } from '../server/validate.ts';
import { authenticateAgent, authenticateCaller, type AuthDeps } from './auth.ts';
import type { Delegation } from './lineage.ts';
import type { Peers } from './peers.ts';

/** An action id or a trailing-wildcard pattern: `fs.read`, `github.*`, `*`. */
export const CAPABILITY = '^(\\*|[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)*(\\.\\*)?)$';

interface DelegateBody {
  name: string;
  capabilities: string[];
  ttl: string | number;
  publicJwk: Record<string, unknown>;
}

const delegateBody = validator<DelegateBody>({
  type: 'object',
  additionalProperties: false,
  required: ['name', 'capabilities', 'ttl', 'publicJwk'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
    capabilities: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', maxLength: 128, pattern: CAPABILITY } },
    ttl: durationMember(),
    publicJwk: { type: 'object', required: [], maxProperties: 16 },
  },
});

export function describeDelegation(d: Delegation, now = Date.now()) {
  const state = d.endedAt !== null ? 'ended' : d.expiresAt <= now ? 'expired' : 'active';
  return {
    id: d.id, parentId: d.parentId, name: d.name, capabilities: d.capabilities, state,
    createdAt: new Date(d.createdAt).toISOString(), expiresAt: new Date(d.expiresAt).toISOString(),
    endedAt: d.endedAt === null ? null : new Date(d.endedAt).toISOString(), endReason: d.endReason,
  };
}

export function delegationRoutes(peers: Peers, auth: AuthDeps, removed: () => Promise<unknown>): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/delegations',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const body = delegateBody(await ctx.readBody());
        const child = await peers.delegate(peer, { name: body.name, capabilities: body.capabilities, ttlMs: bodyDuration(body.ttl, 'ttl'), publicJwk: body.publicJwk });
        return {
          status: 201,
          body: {
            id: child.peer.id, peerId: child.peer.id, parentId: peer.id, name: child.peer.name, capabilities: child.peer.capabilities,
            leaseId: child.leaseId, enrollmentToken: child.token, expiresAt: new Date(child.peer.expiresAt).toISOString(),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/delegations',
      on: ['gate', 'tcp'],
      async handle(ctx) {
        const { peer } = await authenticateAgent(ctx, auth);
        const role = ctx.query.get('role') ?? 'parent';
        const activeOnly = flag(ctx, 'activeOnly');
        if (role !== 'parent' && role !== 'child') throw new LatticeError('VALIDATION_FAILED', 'role must be parent (the delegations you made) or child (the one that made you)');
        const now = Date.now();
        const list = role === 'parent' ? peers.delegationsOf(peer.id, activeOnly, now) : [peers.delegation(peer.id)].filter((d): d is Delegation => d !== undefined);
        return { status: 200, body: { role, delegations: list.map((d) => describeDelegation(d, now)) } };
      },
    },
    {
      method: 'DELETE',
      path: '/api/v1/delegations/:id',
      on: ['gate', 'admin', 'tcp'],
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        const caller = await authenticateCaller(ctx, auth, 'peers:write', () => ({ workspace: peers.find(id)?.workspace ?? missing(id) }));
        const by = caller.kind === 'agent' ? caller.agent.peer.id : 'operator';
        if (peers.delegation(id) === undefined) throw new LatticeError('NOT_FOUND', `${id} is not a delegation`);
        // By recorded lineage, so an ancestor asking again after the delegation ended hears PEER_NOT_FOUND, not FORBIDDEN.
        if (caller.kind === 'agent' && !peers.delegatedBy(caller.agent.peer.id, id)) {
          throw new LatticeError('FORBIDDEN', 'only an identity above a delegation (its parent, or theirs) may revoke it');
        }
        const revoked = await peers.remove(id, 'peer.revoked', by);
        await removed();
        return { status: 200, body: { revoked } };
      },
    },
  ];
}

function flag(ctx: RequestContext, name: string): boolean {
  const value = ctx.query.get(name);
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw new LatticeError('VALIDATION_FAILED', `${name} must be true or false`);
}

function missing(id: string): never {
  throw new LatticeError('PEER_NOT_FOUND', `no live peer ${id}`);
}
