/**
 * Realtime events over Server-Sent Events:
 *
 *   GET /api/v1/events?events=action.executed,approval.decided&agent=<peerId>     (Last-Event-ID: <seq>)
 *
 * Every event sent is a committed ledger event, named as in types.ts; its SSE `id` is its ledger seq, so a
 * client that reconnects with `Last-Event-ID` resumes exactly after the last event it saw, from the ledger
 * itself (nothing is buffered in memory that a restart could lose). Without one, the stream starts at the head.
 *
 * Each subscriber reads the ledger from its own cursor when a commit wakes the hub (and once a second, for events
 * another process appended), and stops reading while its socket is not draining, so a slow client costs a cursor,
 * not memory. Reading is paged: one turn examines at most SCAN_ROWS ledger rows and sends at most PAGE events, and
 * the next turn waits for the event loop (setImmediate), so a stream replaying a long ledger never holds the gate
 * for more than one page. An agent may resume at most MAX_AGENT_REPLAY events behind the head (older events are
 * read page by page from GET /api/v1/audit); an operator may replay the whole ledger. What a caller may see: an
 * operator (admin socket, or a token with audit:read) every event, or one agent's with `agent=`; an agent the
 * events that concern itself or the agents it delegated (as principal, as the peer an event is about, or as the
 * requester of an approval), never another agent's, and the changes to policies and actions that concern everyone.
 */
import type { ServerResponse } from 'node:http';
import { LatticeError } from '../errors.ts';
import { authenticateCaller, type AuthDeps } from '../identity/auth.ts';
import { statement } from '../ledger/database.ts';
import type { LedgerEvent } from '../ledger/event.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Route } from '../server/http.ts';
import { GLOBAL_EVENTS, PUBLIC_EVENT_TYPES, ledgerTypesOf, publicEventType, type PublicEventType } from './types.ts';

const MAX_STREAMS = 256;
const MAX_STREAMS_PER_AGENT = 8;
/** Events sent per turn, at most. */
const PAGE = 256;
/** Ledger rows examined per turn, at most (whether or not they are sent: most may be other agents'). */
const SCAN_ROWS = 2048;
/** How far behind the head an agent's Last-Event-ID may be. */
export const MAX_AGENT_REPLAY = 10_000;
const KEEPALIVE_MS = 15_000;
const POLL_MS = 1_000;

interface Subscriber {
  /** Seq of the last event considered (sent or filtered out). */
  after: number;
  readonly types: ReadonlySet<string>;
  /** Whose events: null for all (operator without agent=). */
  readonly about: string | null;
  /** Peer id of an agent caller, whose stream ends when its identity does. */
  readonly agent: string | null;
  readonly out: ServerResponse;
  paused: boolean;
  /** A turn is waiting for the event loop. */
  scheduled: boolean;
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly timer: NodeJS.Timeout;
  private readonly keepalive: NodeJS.Timeout;
  private readonly stopObserving: () => void;

  constructor(
    private readonly ledger: Ledger,
    private readonly auth: AuthDeps,
  ) {
    this.stopObserving = ledger.onCommit(() => this.pump());
    this.timer = setInterval(() => this.pump(), POLL_MS);
    this.timer.unref();
    this.keepalive = setInterval(() => {
      for (const s of this.subscribers) if (!s.paused) s.out.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.keepalive.unref();
  }

  get size(): number {
    return this.subscribers.size;
  }

  close(): void {
    this.stopObserving();
    clearInterval(this.timer);
    clearInterval(this.keepalive);
    for (const s of this.subscribers) s.out.end();
    this.subscribers.clear();
  }

  route(): Route {
    return {
      method: 'GET',
      path: '/api/v1/events',
      on: ['admin', 'gate', 'tcp'],
      handle: async (ctx) => {
        const caller = await authenticateCaller(ctx, this.auth, 'audit:read');
        const names = ctx.query.getAll('events').flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
        let types: Set<string>;
        try {
          types = new Set(ledgerTypesOf(names.length === 0 ? PUBLIC_EVENT_TYPES : names));
        } catch (error) {
          throw new LatticeError('VALIDATION_FAILED', (error as Error).message.slice(0, 512));
        }
        const agentParam = ctx.query.get('agent');
        if (agentParam !== null && !/^[A-Za-z0-9_.:-]{1,128}$/.test(agentParam)) throw new LatticeError('VALIDATION_FAILED', 'agent is not a peer id');
        const self = caller.kind === 'agent' ? caller.agent.peer.id : null;
        if (self !== null && agentParam !== null && agentParam !== self && !this.auth.peers.isAncestor(self, agentParam)) {
          throw new LatticeError('FORBIDDEN', 'an agent may follow only itself and the agents it delegated');
        }
        const last = lastEventId(ctx.headers['last-event-id']);
        const head = this.headSeq();
        if (self !== null && last !== null && head - last > MAX_AGENT_REPLAY) {
          throw new LatticeError(
            'VALIDATION_FAILED',
            `Last-Event-ID ${last} is ${head - last} events behind the head; an agent may resume at most ${MAX_AGENT_REPLAY} events back: read older events from GET /api/v1/audit, then follow from the head (no Last-Event-ID)`,
          );
        }
        if (this.subscribers.size >= MAX_STREAMS) throw new LatticeError('RATE_LIMITED', `the gate already serves ${MAX_STREAMS} event streams; close one and retry`);
        if (self !== null && [...this.subscribers].filter((s) => s.agent === self).length >= MAX_STREAMS_PER_AGENT) {
          throw new LatticeError('RATE_LIMITED', `an agent may hold at most ${MAX_STREAMS_PER_AGENT} event streams`);
        }
        return {
          status: 200,
          stream: (out) => {
            const s: Subscriber = { after: Math.min(last ?? head, head), types, about: agentParam ?? self, agent: self, out, paused: false, scheduled: false };
            this.subscribers.add(s);
            out.on('close', () => this.subscribers.delete(s));
            out.on('drain', () => {
              s.paused = false;
              this.wake(s);
            });
            out.write(`retry: 2000\n: streaming ${[...new Set([...types].map((t) => publicEventType(t)))].join(',')} after seq ${s.after}\n\n`);
            this.wake(s);
          },
        };
      },
    };
  }

  private pump(): void {
    for (const s of this.subscribers) this.wake(s);
  }

  /** Schedules one turn of reading for the subscriber, unless one is already waiting. */
  private wake(s: Subscriber): void {
    if (s.scheduled || s.paused || s.out.destroyed) return;
    s.scheduled = true;
    setImmediate(() => {
      s.scheduled = false;
      this.turn(s);
    });
  }

  /**
   * One page: the subscriber's events among the next SCAN_ROWS ledger rows, at most PAGE of them sent. Another turn
   * follows (after the event loop has run) until it has caught up or its socket stops draining.
   */
  private turn(s: Subscriber): void {
    if (s.paused || s.out.destroyed || !this.subscribers.has(s)) return;
    if (s.agent !== null && this.auth.peers.find(s.agent) === undefined) {
      s.out.end(': your identity was removed\n\n'); // a revoked or expired agent stops hearing at once
      this.subscribers.delete(s);
      return;
    }
    const head = this.headSeq();
    const until = Math.min(s.after + SCAN_ROWS, head);
    if (until <= s.after) return;
    const placeholders = [...s.types].map(() => '?').join(',');
    const query = statement(this.ledger.database, `SELECT seq, ts, type, principal, action, decision, payload, prev_hash AS prevHash, hash FROM events WHERE seq > ? AND seq <= ? AND type IN (${placeholders}) ORDER BY seq LIMIT ${PAGE}`);
    const rows = query.all(s.after, until, ...s.types) as LedgerEvent[];
    const family = s.about === null ? null : new Set([s.about, ...this.auth.peers.descendants(s.about)]);
    for (const e of rows) {
      s.after = e.seq;
      const name = publicEventType(e.type);
      const payload = JSON.parse(e.payload) as Record<string, unknown>;
      if (family !== null && !this.concerns(e, name, payload, family)) continue;
      const data = JSON.stringify({ type: name, seq: e.seq, ts: e.ts, ledgerType: e.type, principal: e.principal, action: e.action, decision: e.decision, payload });
      if (!s.out.write(`id: ${e.seq}\nevent: ${name}\ndata: ${data}\n\n`)) {
        s.paused = true; // 'drain' wakes it again
        return;
      }
    }
    if (rows.length < PAGE) s.after = until; // every row up to `until` was examined
    if (s.after < head) this.wake(s);
  }

  /** The last committed seq, from the database (another process may have appended). */
  private headSeq(): number {
    return statement(this.ledger.database, 'SELECT coalesce(max(seq), 0) FROM events', 'pluck').get() as number;
  }

  /** Whether an event is about one of these peers: its principal, the peer or parent it names, or the requester of an approval. */
  private concerns(e: LedgerEvent, name: PublicEventType | null, payload: Record<string, unknown>, family: ReadonlySet<string>): boolean {
    if (name !== null && GLOBAL_EVENTS.has(name)) return true;
    if (e.principal !== null && family.has(e.principal)) return true;
    if (typeof payload.peerId === 'string' && family.has(payload.peerId)) return true;
    if (typeof payload.parentId === 'string' && family.has(payload.parentId)) return true;
    if (e.type.startsWith('approval.') && typeof payload.requestId === 'string') {
      const requester = statement(this.ledger.database, 'SELECT peer_id FROM requests WHERE id = ?', 'pluck').get(payload.requestId) as string | undefined;
      return requester !== undefined && family.has(requester);
    }
    return false;
  }
}

function lastEventId(value: string | string[] | undefined): number | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !/^[0-9]{1,15}$/.test(value)) throw new LatticeError('VALIDATION_FAILED', 'Last-Event-ID must be the id of an event this stream sent');
  return Number(value);
}
