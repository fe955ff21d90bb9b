/**
 * What raises `anomaly.detected` and `enforcement.triggered`, watching each commit of the gate:
 *
 * - `enforcement.triggered {trigger: "budget"}`: a budget (a call or cost limit per window, which is also how a
 *   rate limit is set) stopped an action: an `action.denied` with `BUDGET_EXHAUSTED`. One event per stopped action,
 *   naming it (`auditEventId`).
 * - `anomaly.detected {kind: "denial_burst"}`: one agent was denied `[anomaly] denials` times (default 10) within
 *   `[anomaly] window` (default 60 s), whatever the reasons: an agent probing its limits, or one that a prompt
 *   injection turned. A denial of a delegated agent counts for it and for every identity above it, so spreading
 *   the probing over children does not hide it; `agents` names the identities whose denials made the burst.
 *   Raised once per burst: the count starts again after it.
 * - With `[anomaly] on_burst = "revoke"`, the gate then revokes that agent (and what it delegated) and records
 *   `enforcement.triggered {trigger: "anomaly", enforcement: "revoked"}` naming the anomaly event. An agent already
 *   gone (revoked with an ancestor whose burst came first) has nothing left to revoke.
 *
 * The events are written after the denial they follow is durable, so the evidence is in order; if writing one
 * fails, the failure is reported on stderr and the denial stands (it is already recorded).
 */
import { LatticeError, describeError } from '../errors.ts';
import type { LedgerEvent } from '../ledger/event.ts';
import type { Ledger } from '../ledger/ledger.ts';

export interface WatchOptions {
  readonly denials: number;
  readonly windowMs: number;
  readonly onBurst: 'record' | 'revoke';
  /** Revokes a peer and what it delegated (Identity.revoke). */
  readonly revoke: (peerId: string) => Promise<unknown>;
  /** The identities above a peer, nearest first, by the recorded delegations (Peers.lineage). */
  readonly lineage: (peerId: string) => readonly string[];
}

export function watchDenials(ledger: Ledger, options: WatchOptions): () => void {
  const recent = new Map<string, { at: number; seq: number; by: string }[]>();
  const record = (work: Promise<unknown>) =>
    void work.catch((error: unknown) => process.stderr.write(`lattice gate: could not record an anomaly or enforcement: ${describeError(error)}\n`));

  const onDenied = (e: LedgerEvent, peerId: string, now: number) => {
    const payload = JSON.parse(e.payload) as { denialReason?: unknown };
    if (payload.denialReason === 'BUDGET_EXHAUSTED') {
      record(ledger.append({ type: 'enforcement.triggered', principal: 'gate', action: e.action, decision: 'deny', payload: { peerId, trigger: 'budget', enforcement: 'denied', auditEventId: e.seq } }));
    }
    for (const subject of [peerId, ...options.lineage(peerId)]) count(subject, { at: now, seq: e.seq, by: peerId }, now);
  };

  const count = (subject: string, denial: { at: number; seq: number; by: string }, now: number) => {
    const window = (recent.get(subject) ?? []).filter((d) => d.at > now - options.windowMs);
    window.push(denial);
    if (window.length < options.denials) {
      recent.set(subject, window);
      return;
    }
    recent.delete(subject); // once per burst
    const agents = [...new Set(window.map((d) => d.by))];
    record(
      (async () => {
        const { event } = await ledger.append({
          type: 'anomaly.detected',
          principal: 'gate',
          decision: 'deny',
          payload: { peerId: subject, kind: 'denial_burst', denials: window.length, windowMs: options.windowMs, firstSeq: window[0]!.seq, lastSeq: denial.seq, agents },
        });
        if (options.onBurst !== 'revoke') return;
        try {
          await options.revoke(subject);
        } catch (error) {
          if (error instanceof LatticeError && error.code === 'PEER_NOT_FOUND') return; // already gone with an ancestor
          throw error;
        }
        await ledger.append({ type: 'enforcement.triggered', principal: 'gate', decision: 'deny', payload: { peerId: subject, trigger: 'anomaly', enforcement: 'revoked', anomalyEventId: event.seq } });
      })(),
    );
  };

  const stop = ledger.onCommit((events) => {
    const now = Date.now();
    for (const e of events) if (e.type === 'action.denied' && e.principal !== null) onDenied(e, e.principal, now);
  });
  // Forget agents whose last denial is older than the window, so the map does not grow with every agent ever denied.
  const sweep = setInterval(() => {
    const cutoff = Date.now() - options.windowMs;
    for (const [peer, denials] of recent) if (denials.every((d) => d.at <= cutoff)) recent.delete(peer);
  }, Math.max(1_000, options.windowMs));
  sweep.unref();
  return () => {
    stop();
    clearInterval(sweep);
  };
}
