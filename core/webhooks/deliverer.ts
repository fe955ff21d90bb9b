/**
 * Sends the outbox. Each webhook has one lane: its pending messages go out in seq order, one at a time, so a
 * receiver sees events in the order they happened and a failing message holds back the ones after it until it is
 * delivered or dead. A lane wakes when the gate commits an event of a type it announces (`Ledger.onCommit`), when
 * its next retry is due, and on a periodic sweep, which also finds events appended by another process.
 *
 * An attempt is one signed POST (Standard Webhooks headers, signature.ts) with a time limit; a 2xx answer delivers
 * the message, anything else (another status, no answer, a refused connection) counts as a failed attempt and the
 * next waits backoff × 2^(attempts − 1), up to max_backoff; the last allowed attempt's failure makes it dead. An
 * outcome is recorded with `Ledger.alongside`, riding the next group commit instead of an fsync of its own on the
 * event loop, so delivery never holds up requests.
 *
 * Delivery is at least once: an attempt interrupted by a stop, or a crash before its outcome committed, is sent
 * again later with the same webhook-id, which receivers use to drop repeats. `stop()` lets attempts in flight finish
 * for a moment, then aborts the rest and records nothing for them: no message is marked that was not answered.
 */
import { Agent, request } from 'undici';
import { describeError } from '../errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Webhook } from './keys.ts';
import { messageBody } from './message.ts';
import { nextMessage, recordAttempt, type AttemptOutcome, type OutboxMessage } from './outbox.ts';
import { signedHeaders } from './signature.ts';

export interface DelivererOptions {
  readonly ledger: Ledger;
  readonly webhooks: readonly Webhook[];
  readonly userAgent: string;
  /** The longest an attempt may take, connection to answer (default 10 s). */
  readonly timeoutMs?: number;
  /** How often every lane looks for work it was not told about (default 1 s). */
  readonly sweepMs?: number;
  /** How long `stop()` lets attempts in flight finish before aborting them (default 2 s). */
  readonly graceMs?: number;
  readonly onError?: (message: string) => void;
}

export class Deliverer {
  readonly timeoutMs: number;
  private readonly lanes: Map<string, Lane>;
  private readonly aborter = new AbortController();
  private readonly dispatcher: Agent;
  private sweep: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private halted = false;

  constructor(readonly options: DelivererOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.dispatcher = new Agent({ connect: { timeout: this.timeoutMs } });
    this.lanes = new Map(options.webhooks.map((w) => [w.config.name, new Lane(this, w)]));
  }

  get abortSignal(): AbortSignal {
    return this.aborter.signal;
  }

  /** True from the moment `stop()` is called: no lane starts another attempt. */
  get stopped(): boolean {
    return this.halted;
  }

  /** Starts every lane (a previous run may have left messages) and listens for commits. */
  start(): void {
    if (this.lanes.size === 0) return;
    this.unsubscribe = this.options.ledger.onCommit((events) => {
      for (const lane of this.lanes.values()) if (events.some((e) => lane.announces(e.type))) lane.kick();
    });
    this.sweep = setInterval(() => this.kickAll(), this.options.sweepMs ?? 1000);
    this.sweep.unref();
    this.kickAll();
  }

  /** Wakes the lane of `webhook`, e.g. after an operator sent its dead messages back. */
  kick(webhook: string): void {
    this.lanes.get(webhook)?.kick();
  }

  async stop(): Promise<void> {
    if (this.halted) return;
    this.halted = true;
    clearInterval(this.sweep);
    this.unsubscribe?.();
    const idle = Promise.all([...this.lanes.values()].map((lane) => lane.idle()));
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([idle, new Promise((resolve) => (grace = setTimeout(resolve, this.options.graceMs ?? 2000)))]);
    clearTimeout(grace);
    this.aborter.abort();
    await idle;
    await this.dispatcher.destroy();
  }

  post(url: string, headers: Record<string, string>, body: string) {
    const signal = AbortSignal.any([this.aborter.signal, AbortSignal.timeout(this.timeoutMs)]);
    return request(url, { method: 'POST', headers, body, signal, dispatcher: this.dispatcher, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  report(message: string): void {
    (this.options.onError ?? ((m) => process.stderr.write(`lattice gate: ${m}\n`)))(message);
  }

  private kickAll(): void {
    for (const lane of this.lanes.values()) lane.kick();
  }
}

class Lane {
  private readonly types: ReadonlySet<string>;
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deliverer: Deliverer,
    private readonly webhook: Webhook,
  ) {
    this.types = new Set(webhook.config.ledgerTypes);
  }

  announces(type: string): boolean {
    return this.types.has(type);
  }

  kick(): void {
    if (this.deliverer.stopped) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.again = false;
    this.running = this.drain()
      .catch((error: unknown) => this.deliverer.report(`webhook ${this.webhook.config.name}: ${describeError(error)}`))
      .finally(() => {
        this.running = null;
        if (this.again) this.kick();
      });
  }

  /** Resolves once the lane is not sending; it starts nothing new once the deliverer is stopped. */
  async idle(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
  }

  private async drain(): Promise<void> {
    const { ledger } = this.deliverer.options;
    const outcomes: Promise<void>[] = [];
    // Outcomes commit in the background; `after` skips the messages already answered until they have.
    let after = 0;
    try {
      for (;;) {
        const message = this.deliverer.stopped ? undefined : nextMessage(ledger.database, this.webhook.config.name, after);
        if (message === undefined) return;
        const wait = message.nextAttemptAt - Date.now();
        if (wait > 0) return this.retryIn(wait);
        const outcome = await this.attempt(message);
        if (outcome === null) return; // stopped mid-attempt: not answered, so not recorded
        outcomes.push(
          ledger.alongside((db) => recordAttempt(db, message, outcome, Date.now())).catch((error: unknown) =>
            this.deliverer.report(`webhook ${this.webhook.config.name}: the outcome of message ${message.messageId} was not recorded (it will be sent again): ${describeError(error)}`),
          ),
        );
        if (!outcome.delivered && outcome.retryAt !== null) return this.retryIn(outcome.retryAt - Date.now());
        after = message.event.seq;
      }
    } finally {
      await Promise.all(outcomes);
    }
  }

  private retryIn(ms: number): void {
    this.timer = setTimeout(() => this.kick(), Math.max(0, ms));
    this.timer.unref();
  }

  /** One signed POST; null when the deliverer was stopped before it was answered. */
  private async attempt(message: OutboxMessage): Promise<AttemptOutcome | null> {
    const { config, key } = this.webhook;
    const body = messageBody(config.format, message.event, this.deliverer.options.ledger.database);
    const headers = {
      'content-type': 'application/json',
      'user-agent': this.deliverer.options.userAgent,
      ...signedHeaders(key, message.messageId, Math.floor(Date.now() / 1000), body),
    };
    let error: string;
    try {
      const response = await this.deliverer.post(config.url, headers, body);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        await response.body.dump();
        return { delivered: true };
      }
      error = `HTTP ${response.statusCode}${await snippet(response.body)}`;
    } catch (thrown) {
      if (this.deliverer.abortSignal.aborted) return null;
      error = thrown instanceof Error && thrown.name === 'TimeoutError' ? `no answer within ${this.deliverer.timeoutMs / 1000} s` : describeError(thrown);
    }
    const attempts = message.attempts + 1;
    if (attempts >= config.maxAttempts) return { delivered: false, error, retryAt: null };
    return { delivered: false, error, retryAt: Date.now() + Math.min(config.backoffMs * 2 ** (attempts - 1), config.maxBackoffMs) };
  }
}

/** The start of a refusal's body, for the operator (`lattice status`): whitespace folded, at most 200 characters. */
async function snippet(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= 200) break;
  }
  body.destroy();
  const text = Buffer.concat(chunks).toString('utf8').slice(0, 200).replace(/\s+/g, ' ').trim();
  return text === '' ? '' : `: ${text}`;
}
