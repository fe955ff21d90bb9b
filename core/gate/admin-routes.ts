/**
 * Operator routes on the admin socket only: status, shutdown, key rotation (key-routes.ts) and the sandbox's session
 * routes (sandbox-routes.ts).
 * Health is also on the agent socket (it says nothing but "alive"). The admin socket's file mode is the authentication: only the
 * gate's own user reaches it.
 */
import type { Route } from '../server/http.ts';
import { webhookStatus, type WebhookStatus } from '../webhooks/routes.ts';
import type { RunningGate } from './gate.ts';
import { keyRoutes } from './key-routes.ts';
import { sandboxRoutes } from './sandbox-routes.ts';

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
    ...keyRoutes(gate),
    ...sandboxRoutes(gate),
  ];
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
