/**
 * Connections of one server, bounded: at most MAX_CONNECTIONS open per listener (a connection past it is answered
 * 429 and closed before a byte of it is read), at most MAX_PER_PRINCIPAL of them carrying requests of one
 * authenticated caller (a request on another one is refused RATE_LIMITED), and per connection at most
 * UNAUTHENTICATED_REFUSALS refusals of requests that named no one within REFUSAL_WINDOW_MS (past that, the
 * connection is answered 429 and closed). A connection Node's parser refuses is answered and recorded once: by the
 * request in flight on it when there is one (its body read ends with BAD_REQUEST), else directly; either way it is
 * then closed, without reading what the client still sends.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { LatticeError } from '../errors.ts';

export const MAX_CONNECTIONS = 1024;
export const MAX_PER_PRINCIPAL = 128;
export const UNAUTHENTICATED_REFUSALS = 16;
export const REFUSAL_WINDOW_MS = 10_000;

export interface Connection {
  /** The caller whose requests this connection carried last (authenticated), or null. */
  principal: string | null;
  /** Times of recent refusals that named no one, oldest first. */
  readonly refusals: number[];
  /** Requests being served on it, each with the signal that ends its body read. */
  readonly requests: Set<AbortController>;
  /** Node's parser refused it while a request was in flight: it is closed once that request has answered. */
  closeAfterRequests: boolean;
}

export class Connections {
  private count = 0;
  private readonly states = new WeakMap<Duplex, Connection>();
  private readonly byPrincipal = new Map<string, Set<Duplex>>();
  /** Connections refused outright and being closed: nothing more on them is served, answered or recorded. */
  private readonly closing = new WeakSet<Duplex>();

  constructor(private readonly max: number = MAX_CONNECTIONS) {}

  get size(): number {
    return this.count;
  }

  /** Counts a new connection; false when the listener is full (the caller answers and closes it). */
  accept(socket: Socket): boolean {
    if (this.count >= this.max) {
      this.closing.add(socket);
      return false;
    }
    this.count++;
    socket.once('close', () => this.count--);
    return true;
  }

  /**
   * Marks a connection as closing (refused outright, or its last answer sent): nothing more on it is served, answered
   * or recorded. False when it already was, so a connection is answered and recorded once.
   */
  close(socket: Duplex): boolean {
    if (this.closing.has(socket)) return false;
    this.closing.add(socket);
    return true;
  }

  isClosing(socket: Duplex): boolean {
    return this.closing.has(socket);
  }

  /** A request starts on the connection; its signal is aborted if the connection turns out malformed meanwhile. */
  begin(socket: Duplex): AbortController {
    const controller = new AbortController();
    this.of(socket).requests.add(controller);
    return controller;
  }

  /**
   * The request's answer is done. When it was the connection's last (Node closes it after), the connection is marked
   * closing, so what the client sends after is not answered or recorded again; one Node's parser refused while the
   * request was in flight is closed now.
   */
  end(socket: Duplex, controller: AbortController, last: boolean): void {
    const state = this.of(socket);
    state.requests.delete(controller);
    if (last) this.closing.add(socket);
    if (state.requests.size === 0 && state.closeAfterRequests) lingerClose(socket);
  }

  /**
   * Ends the body reads of the requests in flight on a connection Node's parser has refused (the rest of their
   * bodies will not come), and closes it once they have answered; true when there were any. Those requests answer
   * and record the refusal themselves, so the connection has one answer and one refusal event.
   */
  abortRequests(socket: Duplex, reason: Error): boolean {
    const state = this.of(socket);
    for (const controller of state.requests) controller.abort(reason);
    state.closeAfterRequests = state.requests.size > 0;
    return state.closeAfterRequests;
  }

  /** Binds the connection to an authenticated caller; RATE_LIMITED if that caller already holds too many. */
  bind(socket: Duplex, principal: string): void {
    const c = this.of(socket);
    if (c.principal === principal) return;
    const held = this.byPrincipal.get(principal) ?? new Set<Duplex>();
    if (held.size >= MAX_PER_PRINCIPAL) {
      throw new LatticeError('RATE_LIMITED', `${principal} already holds ${MAX_PER_PRINCIPAL} connections to the gate; reuse one (keep-alive) or close some`);
    }
    this.unbind(socket, c);
    held.add(socket);
    this.byPrincipal.set(principal, held);
    c.principal = principal;
  }

  /** Counts a refusal that named no one; true when the connection is past its allowance (answer 429 and close). */
  refusedUnauthenticated(socket: Duplex, now: number): boolean {
    const { refusals } = this.of(socket);
    while (refusals.length > 0 && (refusals[0] ?? 0) <= now - REFUSAL_WINDOW_MS) refusals.shift();
    refusals.push(now);
    return refusals.length > UNAUTHENTICATED_REFUSALS;
  }

  /** The state of a connection (a TLS connection's own socket gets its state on its first request). */
  private of(socket: Duplex): Connection {
    let c = this.states.get(socket);
    if (c === undefined) {
      const state: Connection = { principal: null, refusals: [], requests: new Set(), closeAfterRequests: false };
      this.states.set(socket, state);
      socket.once('close', () => this.unbind(socket, state));
      c = state;
    }
    return c;
  }

  private unbind(socket: Duplex, c: Connection): void {
    if (c.principal === null) return;
    const held = this.byPrincipal.get(c.principal);
    held?.delete(socket);
    if (held?.size === 0) this.byPrincipal.delete(c.principal);
    c.principal = null;
  }
}

/** How long a connection being closed waits for its client to go before the gate drops it. */
export const LINGER_MS = 1000;

/**
 * Closes a connection whose client may still be sending (a body the gate refused unread, bytes after a malformed
 * request) without losing its last answer: stops reading, ends the gate's side once the answer is written, and
 * destroys the socket LINGER_MS later (or when it closes first). Destroying it at once, as Node does once the answer
 * is flushed, makes the kernel reset a connection with unread bytes, and the client may lose the answer: what nginx
 * calls a lingering close, which Node has no option for.
 */
export function lingerClose(socket: Duplex): void {
  socket.pause();
  if (socket.writable) socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * A complete HTTP/1.1 answer written straight to a socket that has no response object. A connection Node's parser
 * refused is then closed lingering (the client may still be sending); one refused on arrival (past the cap), of
 * which nothing was read, is destroyed as soon as the answer is written, so a flood of them holds no descriptors.
 */
export function answerAndClose(socket: Duplex, status: number, reason: string, body: unknown, how: 'linger' | 'at-once'): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers = Object.entries({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', connection: 'close' })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const answer = `HTTP/1.1 ${status} ${reason}\r\n${headers}\r\n${text}`;
  if (how === 'linger') {
    socket.write(answer);
    lingerClose(socket);
  } else {
    socket.pause();
    socket.end(answer, () => socket.destroy());
  }
}
