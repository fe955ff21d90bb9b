/**
 * The sandbox's session routes, on the admin socket only (its file mode is the authentication). `lattice sandbox`
 * opens a session with one request that enrolls its identity, records `sandbox.started` and answers with the
 * enrollment as a first event, then stays open while the agent runs; proxy decisions go in batches; the close route
 * revokes the identity, records `sandbox.exited` and ends the open request.
 *
 * The open request is how the identity's lifetime is the session's: if it ends before the session was closed
 * (`lattice sandbox` was killed, and the kernel closed its socket), the gate revokes the identity, records
 * `sandbox.abandoned` and removes the session's runtime directory (its credential file). A gate that is stopping
 * abandons nothing: its sessions' requests end because the gate does.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import type { JsonObject } from '../canonical.ts';
import { LatticeError, describeError } from '../errors.ts';
import type { Route } from '../server/http.ts';
import { validator } from '../server/validate.ts';
import { MAX_SANDBOX_EVENTS } from './limits.ts';
import type { RunningGate } from './gate.ts';

/** A runtime directory's name, as `lattice sandbox` makes it (mkdtemp of `run/sbx_`). */
const RUNTIME_NAME = '^sbx_[A-Za-z0-9]{6}$';

/** Events `lattice sandbox` records through the admin socket (it never opens the ledger beside a running gate). */
export const SANDBOX_EVENT_TYPES = ['sandbox.started', 'sandbox.exited', 'sandbox.proxy', 'sandbox.refused'] as const;

type SandboxEvent = { type: (typeof SANDBOX_EVENT_TYPES)[number]; decision?: 'allow' | 'deny'; payload: Record<string, unknown> };

const EVENTS_SCHEMA = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_SANDBOX_EVENTS,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'payload'],
    properties: {
      type: { type: 'string', enum: [...SANDBOX_EVENT_TYPES] },
      decision: { type: 'string', enum: ['allow', 'deny'], nullable: true },
      payload: { type: 'object', required: [] },
    },
  },
} as const;

const sandboxEvents = validator<{ events: SandboxEvent[] }>({ type: 'object', additionalProperties: false, required: ['events'], properties: { events: EVENTS_SCHEMA } });

/**
 * Opening a session: the identity to enroll (an enrollment body), the payload of its `sandbox.started`, and the name
 * of its runtime directory under the gate's `run/` (removed by the gate if the session is abandoned).
 */
const sandboxOpen = validator<{ identity: Record<string, unknown>; started: Record<string, unknown>; runtime?: string }>({
  type: 'object',
  additionalProperties: false,
  required: ['identity', 'started'],
  properties: { identity: { type: 'object', required: [] }, started: { type: 'object', required: [] }, runtime: { type: 'string', pattern: RUNTIME_NAME, nullable: true } },
});

/** Closing a session: the sandbox identity to revoke and the last events (proxy decisions, `sandbox.exited`). */
const sandboxClose = validator<{ peerId: string; events: SandboxEvent[] }>({
  type: 'object',
  additionalProperties: false,
  required: ['peerId', 'events'],
  // No events is fine: a session that ends without one must still revoke its identity.
  properties: { peerId: { type: 'string', pattern: '^peer_[A-Za-z0-9_-]{1,64}$' }, events: { ...EVENTS_SCHEMA, minItems: 0 } },
});

/** A session this gate opened and has not closed: its runtime directory and its open request. */
interface Session {
  readonly runtime: string | null;
  request: ServerResponse | null;
  closed: boolean;
}

export function sandboxRoutes(gate: RunningGate): Route[] {
  const sessions = new Map<string, Session>();

  /** The open request ended first: revoke the identity, record why, remove the runtime directory. */
  const abandon = async (peerId: string, session: Session): Promise<void> => {
    const [revoked] = await Promise.allSettled([
      gate.identity.revoke(peerId),
      gate.ledger.append({ type: 'sandbox.abandoned', principal: 'gate', payload: { peerId, reason: 'lattice sandbox ended without closing its session (killed, or lost its connection to the gate)' } }),
      session.runtime === null ? undefined : rm(join(gate.run.dir, session.runtime), { recursive: true, force: true }),
    ]);
    if (revoked.status === 'rejected' && !(revoked.reason instanceof LatticeError && revoked.reason.code === 'PEER_NOT_FOUND')) throw revoked.reason;
  };

  return [
    {
      method: 'POST',
      path: '/api/v1/admin/sandbox-events',
      on: ['admin'],
      async handle(ctx) {
        const { events } = sandboxEvents(await ctx.readBody());
        return { status: 201, body: { seqs: await appendAll(gate, events) } };
      },
    },
    {
      // The start of a session and its lifetime: the sandbox identity is enrolled, its start recorded, and the answer
      // (the enrollment, as an `opened` event) sent on a response that stays open until the session closes. The
      // agent's command runs only after this answers (see sandbox/session.ts), so every run has its evidence.
      method: 'POST',
      path: '/api/v1/admin/sandboxes',
      on: ['admin'],
      async handle(ctx) {
        const body = sandboxOpen(await ctx.readBody());
        const enrolled = await gate.identity.enroll(body.identity, 'operator');
        const peerId = enrolled.peer.id;
        const [seq] = await appendAll(gate, [{ type: 'sandbox.started', decision: 'allow', payload: { ...body.started, peerId } }]);
        const session: Session = { runtime: body.runtime ?? null, request: null, closed: false };
        sessions.set(peerId, session);
        const opened = { peerId, leaseId: enrolled.leaseId, enrollmentToken: enrolled.token, expiresAt: new Date(enrolled.peer.expiresAt).toISOString(), seq };
        const ended = () => {
          if (session.closed || gate.stopping) return;
          sessions.delete(peerId);
          abandon(peerId, session).catch((error: unknown) => process.stderr.write(`lattice gate: could not end the abandoned sandbox session ${peerId}: ${describeError(error)}\n`));
        };
        return {
          status: 200,
          stream: (out) => {
            session.request = out;
            // A client gone while the start was being recorded has already closed the socket: no 'close' is to come.
            if (out.socket === null || out.socket.destroyed) return ended();
            out.on('close', ended);
            out.write(`event: opened\ndata: ${JSON.stringify(opened)}\n\n`);
          },
        };
      },
    },
    {
      // One round trip for the end: the identity's revocation and the last events share one group commit. An
      // identity already gone (its TTL ran out and the reaper removed it) is not an error.
      method: 'POST',
      path: '/api/v1/admin/sandboxes/close',
      on: ['admin'],
      async handle(ctx) {
        const { peerId, events } = sandboxClose(await ctx.readBody());
        const session = sessions.get(peerId);
        if (session !== undefined) session.closed = true; // from here on its open request's end is no abandonment
        const [revoked, appended] = await Promise.allSettled([gate.identity.revoke(peerId), appendAll(gate, events)]);
        sessions.delete(peerId);
        session?.request?.end();
        if (appended.status === 'rejected') throw appended.reason;
        if (revoked.status === 'rejected' && !(revoked.reason instanceof LatticeError && revoked.reason.code === 'PEER_NOT_FOUND')) throw revoked.reason;
        return { status: 201, body: { seqs: appended.value, revoked: revoked.status === 'fulfilled' } };
      },
    },
  ];
}

/** Appends sandbox events in one tick, so they share one group commit; resolves with their sequence numbers. */
async function appendAll(gate: RunningGate, events: readonly SandboxEvent[]): Promise<number[]> {
  const appended = await Promise.all(
    events.map((e) => gate.ledger.append({ type: e.type, principal: 'operator', decision: e.decision ?? null, payload: e.payload as JsonObject })),
  );
  return appended.map((a) => a.event.seq);
}

