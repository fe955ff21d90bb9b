/**
 * Operator routes on the admin socket only: status, shutdown and the sandbox's session routes. Health is also on
 * the agent socket (it says nothing but "alive"). The admin socket's file mode is the authentication: only the
 * gate's own user reaches it.
 */
import type { JsonObject } from '../canonical.ts';
import { LatticeError } from '../errors.ts';
import type { Route } from '../server/http.ts';
import { validator } from '../server/validate.ts';
import { webhookStatus, type WebhookStatus } from '../webhooks/routes.ts';
import { MAX_SANDBOX_EVENTS } from './limits.ts';
import type { RunningGate } from './gate.ts';

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

/** Opening a session: the identity to enroll (an enrollment body) and the payload of its `sandbox.started`. */
const sandboxOpen = validator<{ identity: Record<string, unknown>; started: Record<string, unknown> }>({
  type: 'object',
  additionalProperties: false,
  required: ['identity', 'started'],
  properties: { identity: { type: 'object', required: [] }, started: { type: 'object', required: [] } },
});

/** Closing a session: the sandbox identity to revoke and the last events (proxy decisions, `sandbox.exited`). */
const sandboxClose = validator<{ peerId: string; events: SandboxEvent[] }>({
  type: 'object',
  additionalProperties: false,
  required: ['peerId', 'events'],
  // No events is fine: a session that ends without one must still revoke its identity.
  properties: { peerId: { type: 'string', pattern: '^peer_[A-Za-z0-9_-]{1,64}$' }, events: { ...EVENTS_SCHEMA, minItems: 0 } },
});

export interface GateStatus {
  readonly pid: number;
  readonly version: string;
  readonly startedAt: string;
  readonly home: string;
  readonly sockets: { readonly gate: string; readonly admin: string };
  readonly listen: string | null;
  readonly ledger: { readonly head: { seq: number; hash: string }; readonly lastCheckpoint: { seq: number; ts: string } | null };
  readonly counts: { readonly peers: number; readonly leases: number; readonly pendingApprovals: number };
  readonly webhooks: readonly WebhookStatus[];
  readonly health: Readonly<Record<string, { ok: boolean; detail: string }>>;
}

export function adminRoutes(gate: RunningGate): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/health',
      on: ['gate', 'admin', 'tcp'],
      handle: () => Promise.resolve({ status: 200, body: { ok: true } }),
    },
    {
      method: 'GET',
      path: '/api/v1/admin/status',
      on: ['admin'],
      handle: () => Promise.resolve({ status: 200, body: status(gate) }),
    },
    {
      method: 'POST',
      path: '/api/v1/admin/shutdown',
      on: ['admin'],
      handle: () => {
        // Answer first, then stop: the final checkpoint is written by stop().
        setImmediate(() => void gate.stop('admin shutdown'));
        return Promise.resolve({ status: 202, body: { stopping: true, pid: gate.pid } });
      },
    },
    {
      method: 'POST',
      path: '/api/v1/admin/sandbox-events',
      on: ['admin'],
      async handle(ctx) {
        const { events } = sandboxEvents(ctx.body);
        return { status: 201, body: { seqs: await appendAll(gate, events) } };
      },
    },
    {
      // One round trip for the start of a session: the sandbox identity is enrolled, then its start recorded. The
      // agent's command runs only after this answers (see sandbox/session.ts), so every run has its evidence.
      method: 'POST',
      path: '/api/v1/admin/sandboxes',
      on: ['admin'],
      async handle(ctx) {
        const body = sandboxOpen(ctx.body);
        const enrolled = await gate.identity.enroll(body.identity, 'operator');
        const [seq] = await appendAll(gate, [{ type: 'sandbox.started', decision: 'allow', payload: { ...body.started, peerId: enrolled.peer.id } }]);
        return {
          status: 201,
          body: { peerId: enrolled.peer.id, leaseId: enrolled.leaseId, enrollmentToken: enrolled.token, expiresAt: new Date(enrolled.peer.expiresAt).toISOString(), seq },
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
        const { peerId, events } = sandboxClose(ctx.body);
        const [revoked, appended] = await Promise.allSettled([gate.identity.revoke(peerId), appendAll(gate, events)]);
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

export function status(gate: RunningGate): GateStatus {
  const db = gate.ledger.database;
  const count = (table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  const last = db.prepare('SELECT seq, ts FROM checkpoints ORDER BY seq DESC LIMIT 1').get() as { seq: number; ts: string } | undefined;
  const head = gate.ledger.head();
  const checkpointAgeMs = last === undefined ? null : Date.now() - Date.parse(last.ts);
  const webhooks = webhookStatus(db, gate.config.webhooks);
  const dead = webhooks.filter((w) => w.dead > 0);
  return {
    pid: gate.pid,
    version: gate.version,
    startedAt: gate.startedAt,
    home: gate.paths.root,
    sockets: { gate: gate.run.gateSocket, admin: gate.run.adminSocket },
    listen: gate.tcp === null ? null : `${gate.tcp.tls ? 'https' : 'http'}://${gate.tcp.host}:${gate.tcp.port}`,
    ledger: { head: { seq: head.seq, hash: head.hash }, lastCheckpoint: last ?? null },
    counts: { peers: count('peers'), leases: count('leases'), pendingApprovals: db.prepare(`SELECT count(*) FROM requests WHERE state = 'held'`).pluck().get() as number },
    webhooks,
    health: {
      ledger: { ok: true, detail: `head at seq ${head.seq}` },
      checkpoints: {
        ok: checkpointAgeMs === null || head.seq === last?.seq || checkpointAgeMs < 2 * gate.config.ledger.checkpointIntervalMs + 5000,
        detail: last === undefined ? 'none yet' : `last at seq ${last.seq}, ${Math.round((checkpointAgeMs ?? 0) / 1000)} s ago`,
      },
      signingKey: { ok: true, detail: gate.ledger.keys.active.keyId },
      sqlite: { ok: true, detail: `SQLite ${db.prepare('SELECT sqlite_version()').pluck().get() as string}` },
      ...(webhooks.length > 0 && {
        webhooks: {
          ok: dead.length === 0,
          detail: dead.length === 0 ? `${webhooks.length} configured, ${webhooks.reduce((n, w) => n + w.pending, 0)} pending` : `dead letters: ${dead.map((w) => `${w.name} ${w.dead}`).join(', ')} (lattice webhooks retry NAME)`,
        },
      }),
    },
  };
}
