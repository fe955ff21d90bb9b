/**
 * Reading the evidence over the API:
 *
 *   GET /api/v1/audit?cursor&limit&actionType&type   newest first; an agent sees only its own events, an
 *                                                    operator (admin socket, or a token with audit:read) all of
 *                                                    them, optionally one agent's (`agent=`)
 *   GET /api/v1/audit/verify                         the chain's status (verifier.ts; for an agent, at most a minute old)
 *   GET /api/v1/posture                              the posture score (posture.ts)
 *
 * Query values are attacker-controlled: each is checked here, and the cursor is one the gate made (query.ts).
 */
import { LatticeError } from '../errors.ts';
import { authenticateCaller, type AuthDeps } from '../identity/auth.ts';
import type { LedgerEvent } from '../ledger/event.ts';
import { queryEvents } from '../ledger/query.ts';
import type { RequestContext, Route } from '../server/http.ts';
import { computePosture, type PostureDeps } from './posture.ts';

/** How old a verification an agent's request may be answered with (an operator's: a few seconds). */
export const AGENT_VERIFY_MAX_AGE_MS = 60_000;
/** Most events per page over the API (the CLI reads the file directly and may ask for more). */
export const API_PAGE_MAX = 500;
const NAME = /^[a-z][a-z0-9_.*-]{0,127}$/;
const PEER = /^[A-Za-z0-9_.:-]{1,128}$/;

/** An event for the API: the payload as JSON, not as its canonical text. */
export function eventView(e: LedgerEvent) {
  return { seq: e.seq, ts: e.ts, type: e.type, principal: e.principal, action: e.action, decision: e.decision, payload: JSON.parse(e.payload) as unknown, hash: e.hash };
}

function queryValue(ctx: RequestContext, name: string, pattern: RegExp): string | undefined {
  const values = ctx.query.getAll(name);
  if (values.length === 0) return undefined;
  const value = values[0]!;
  if (values.length > 1 || !pattern.test(value)) throw new LatticeError('VALIDATION_FAILED', `query parameter ${name} is not valid`);
  return value;
}

export function auditRoutes(auth: AuthDeps, posture: PostureDeps): Route[] {
  const { ledger, verifier } = posture;
  return [
    {
      method: 'GET',
      path: '/api/v1/audit',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const caller = await authenticateCaller(ctx, auth, 'audit:read');
        const limitText = queryValue(ctx, 'limit', /^[0-9]{1,4}$/) ?? '50';
        const limit = Number(limitText);
        if (limit < 1 || limit > API_PAGE_MAX) throw new LatticeError('VALIDATION_FAILED', `limit must be between 1 and ${API_PAGE_MAX}`);
        const agent = queryValue(ctx, 'agent', PEER);
        if (caller.kind === 'agent' && agent !== undefined && agent !== caller.agent.peer.id) {
          throw new LatticeError('FORBIDDEN', 'an agent reads only its own events; leave out agent= or name yourself');
        }
        const principal = caller.kind === 'agent' ? caller.agent.peer.id : agent;
        const action = queryValue(ctx, 'actionType', NAME);
        const type = queryValue(ctx, 'type', NAME);
        const cursor = queryValue(ctx, 'cursor', /^[A-Za-z0-9_-]{1,64}$/);
        const page = queryEvents(
          ledger.database,
          { ...(principal !== undefined && { principal }), ...(action !== undefined && { action }), ...(type !== undefined && { type }) },
          { limit, ...(cursor !== undefined && { cursor }) },
        );
        return { status: 200, body: { events: page.events.map(eventView), nextCursor: page.nextCursor } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/audit/verify',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const caller = await authenticateCaller(ctx, auth, 'audit:read');
        const { report, verifiedAt } = await verifier.verify(caller.kind === 'agent' ? AGENT_VERIFY_MAX_AGE_MS : undefined);
        return { status: 200, body: { ...report, verifiedAt } };
      },
    },
    {
      method: 'GET',
      path: '/api/v1/posture',
      on: ['admin', 'gate', 'tcp'],
      async handle(ctx) {
        const caller = await authenticateCaller(ctx, auth, 'audit:read');
        return { status: 200, body: await computePosture(posture, caller.kind === 'agent' ? AGENT_VERIFY_MAX_AGE_MS : undefined) };
      },
    },
  ];
}
