/**
 * The record of refused requests: every refusal is evidence, but a flood of them must not grow the ledger without
 * bound. Per source (the principal when one was identified, else the listener, or the TCP peer address) and reason
 * (the error code), the first FULL_PER_WINDOW refusals in a window are each written as `request.refused`, as they
 * happen and before the client is answered. Past that, refusals of that source and reason are counted, and when the
 * window ends (or the gate stops) one `request.refused.aggregate` event records how many there were, when, and the
 * first of them as a sample. The client is answered either way.
 *
 * The counts live in memory until their window ends: a gate that crashes loses at most one window's counts (never
 * the first refusals of a window, which are written one by one). The table of sources is bounded; past MAX_SOURCES
 * new sources share one entry per reason (`source: "*"`). Every loopback address on TCP is one source
 * (`tcp:loopback`): a local process can send from any of 127.0.0.0/8, which would otherwise give it 16 million
 * sources of five full records each.
 */
import { BlockList, isIPv4 } from 'node:net';
import type { JsonObject } from '../canonical.ts';
import { describeError } from '../errors.ts';
import type { Ledger } from '../ledger/ledger.ts';

export const FULL_PER_WINDOW = 5;
export const WINDOW_MS = 60_000;
const MAX_SOURCES = 1024;

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** The source a refusal is counted under: `tcp:<address>`, except that every loopback address is `tcp:loopback`. */
export function aggregationSource(source: string): string {
  if (!source.startsWith('tcp:')) return source;
  const address = source.slice('tcp:'.length);
  return LOOPBACK.check(address, isIPv4(address) ? 'ipv4' : 'ipv6') ? 'tcp:loopback' : source;
}

export interface Refusal {
  /** The principal once identified (then also the source), else null. */
  readonly principal: string | null;
  /** Who was refused when no principal is known: the listener, or `tcp:<address>`. */
  readonly source: string;
  readonly code: string;
  /** What is recorded for this refusal: code, listener, method, route, message. */
  readonly payload: JsonObject;
}

interface Window {
  readonly principal: string | null;
  readonly source: string;
  readonly code: string;
  readonly startedAt: number;
  written: number;
  counted: number;
  firstCountedAt: number;
  lastCountedAt: number;
  sample: JsonObject | null;
}

export class RefusalLog {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ledger: Ledger,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.flush(false), Math.min(WINDOW_MS, 10_000));
    this.timer.unref();
  }

  /**
   * Writes the refusal as `request.refused` (resolves once it is durable; rejects if it could not be written), or
   * counts it when its source and reason already filled their window (resolves at once).
   */
  async record(r: Refusal): Promise<'written' | 'counted'> {
    const now = this.now();
    const w = this.window(r, now);
    if (w.written < FULL_PER_WINDOW) {
      w.written++;
      await this.ledger.append({ type: 'request.refused', principal: r.principal, decision: 'deny', payload: r.payload });
      return 'written';
    }
    if (w.counted === 0) {
      w.firstCountedAt = now;
      w.sample = r.payload;
    }
    w.counted++;
    w.lastCountedAt = now;
    return 'counted';
  }

  /** Writes the aggregate of every window that has ended (all of them when `all`), and forgets those windows. */
  async flush(all: boolean): Promise<void> {
    const now = this.now();
    const ended = [...this.windows].filter(([, w]) => all || now - w.startedAt >= WINDOW_MS);
    for (const [key] of ended) this.windows.delete(key);
    await Promise.all(ended.filter(([, w]) => w.counted > 0).map(([, w]) => this.writeAggregate(w)));
  }

  /** Stops the timer and writes what was counted. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush(true);
  }

  private window(refusal: Refusal, now: number): Window {
    const r = { ...refusal, source: aggregationSource(refusal.source) };
    let key = `${r.principal ?? ''}\0${r.source}\0${r.code}`;
    let w = this.windows.get(key);
    if (w !== undefined && now - w.startedAt >= WINDOW_MS) {
      this.windows.delete(key);
      if (w.counted > 0) void this.writeAggregate(w);
      w = undefined;
    }
    if (w === undefined && this.windows.size >= MAX_SOURCES) {
      key = `\0*\0${r.code}`;
      w = this.windows.get(key);
      if (w !== undefined) return w;
      return this.open(key, { principal: null, source: '*', code: r.code }, now);
    }
    return w ?? this.open(key, r, now);
  }

  private open(key: string, r: Pick<Refusal, 'principal' | 'source' | 'code'>, now: number): Window {
    const w: Window = { principal: r.principal, source: r.source, code: r.code, startedAt: now, written: 0, counted: 0, firstCountedAt: now, lastCountedAt: now, sample: null };
    this.windows.set(key, w);
    return w;
  }

  private async writeAggregate(w: Window): Promise<void> {
    const payload: JsonObject = {
      code: w.code,
      source: w.source,
      count: w.counted,
      written: w.written,
      from: new Date(w.firstCountedAt).toISOString(),
      to: new Date(w.lastCountedAt).toISOString(),
      windowMs: WINDOW_MS,
      sample: w.sample,
    };
    try {
      await this.ledger.append({ type: 'request.refused.aggregate', principal: w.principal, decision: 'deny', payload });
    } catch (error) {
      process.stderr.write(`lattice gate: could not record ${w.counted} refusals (${w.code}): ${describeError(error)}\n`);
    }
  }
}
