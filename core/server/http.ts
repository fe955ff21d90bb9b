/**
 * HTTP/1.1 over the gate's unix sockets (and an optional loopback TCP listener), with node:http.
 *
 * Fails closed at the boundary, in this order: a connection past the listener's cap is answered 429 and closed
 * (connections.ts); a request target that is not a path, an unknown route, a wrong method (CONNECT included) or a
 * malformed %-encoding in a route parameter is refused (routing.ts); the handler then authenticates the caller
 * from the headers, and only an authenticated caller's body is read at all (on the admin socket, the socket is the
 * authentication and the body is read first): over the limit, not `application/json`, not UTF-8, too deep or not
 * JSON, it is refused with its own code (body.ts). A request that outlives the timeout is refused too.
 *
 * Refusals are recorded through the RefusalLog (refusals.ts): the first few per source and reason in a window each
 * as `request.refused`, before the client is answered (if that write fails, the client gets a 503 and nothing else
 * happens), the rest counted into one aggregate event. Internal failures are each recorded as `request.failed`
 * before the answer. A connection that is refused before it carries a request (not HTTP, too slow, CONNECT, past the
 * cap) is answered and closed at once, and recorded once. Handlers receive the URL built from the configured base,
 * never from the Host header.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { JsonObject } from '../canonical.ts';
import { LatticeError, describeError, isLatticeError } from '../errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { BodyBudget, readJsonBody } from './body.ts';
import { Connections, REFUSAL_WINDOW_MS, UNAUTHENTICATED_REFUSALS, answerAndClose, lingerClose } from './connections.ts';
import { RefusalLog, type Refusal } from './refusals.ts';
import { compile, match, parseTarget, type CompiledRoute } from './routing.ts';
import { PUBLIC_FAILURES, toWireError } from './wire.ts';

export type Listener = 'gate' | 'admin' | 'tcp';
export type Method = 'GET' | 'POST' | 'DELETE';

export interface RequestContext {
  readonly listener: Listener;
  readonly method: Method;
  /** The route pattern that matched, e.g. `/api/v1/peers/:id` (safe to log; the raw path is not). */
  readonly route: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Configured base + path: what DPoP proofs must name. */
  readonly url: string;
  /** Set by authentication as soon as the caller is identified, so refusals after it name who was refused. */
  principal: string | null;
  /**
   * Called by authentication (core/identity/auth.ts) once every check of the caller has passed: from then on the
   * body may be read, and the connection counts against the caller's connection cap (RATE_LIMITED past it).
   */
  authenticated(principal: string): void;
  /**
   * The parsed JSON body (attacker-controlled), or undefined when there was none; read on the first call. Only an
   * authenticated caller's body is read: asking for it before `authenticated` is a bug, and fails the request. On
   * the admin socket the socket is the authentication, and the body is read before the handler runs.
   */
  readBody(): Promise<unknown>;
}

export type Reply =
  | { readonly status: number; readonly body: unknown }
  /** A long-lived text/event-stream response: `open` writes to it until the client goes or the gate stops. */
  | { readonly status: 200; readonly stream: (out: ServerResponse) => void };

export interface Route {
  readonly method: Method;
  readonly path: string;
  /** Which listeners serve the route: operator routes are on the admin socket only. */
  readonly on: readonly Listener[];
  handle(ctx: RequestContext): Promise<Reply>;
}

export interface ServerOptions {
  readonly routes: readonly Route[];
  readonly ledger: Ledger;
  readonly baseUrl: string;
  readonly bodyLimitBytes: number;
  readonly requestTimeoutMs: number;
}

/** Request bodies buffered at once across the server, at least (more when one body may be larger). */
const BODY_BUDGET_BYTES = 32 * 1024 * 1024;

export class GateServer {
  private readonly routes: readonly CompiledRoute[];
  private readonly servers: Server[] = [];
  private readonly sockets: string[] = [];
  private readonly refusals: RefusalLog;
  private readonly bodies: BodyBudget;

  constructor(private readonly options: ServerOptions) {
    this.routes = options.routes.map(compile);
    this.refusals = new RefusalLog(options.ledger);
    this.bodies = new BodyBudget(Math.max(BODY_BUDGET_BYTES, options.bodyLimitBytes));
  }

  /** Listens on a unix socket with mode 0600 (its directory is 0700). A stale socket file is replaced. */
  async listenUnix(listener: 'gate' | 'admin', path: string): Promise<void> {
    if (existsSync(path)) {
      if (await isLive(path)) throw new LatticeError('GATE_ALREADY_RUNNING', `a gate is already listening on ${path}; stop it with \`lattice down\``);
      rmSync(path, { force: true });
    }
    const server = this.create(listener);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600);
    this.sockets.push(path);
  }

  /** Listens on TCP (the caller has refused non-loopback hosts unless `tls` is given). */
  async listenTcp(host: string, port: number, tls?: { cert: Buffer; key: Buffer }): Promise<{ port: number }> {
    const server = this.create('tcp', tls);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return { port: typeof address === 'object' && address !== null ? address.port : port };
  }

  /** Writes the refusals counted so far (the gate calls this before it records its stop). */
  flushRefusals(): Promise<void> {
    return this.refusals.close();
  }

  async close(): Promise<void> {
    await this.refusals.close();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    for (const path of this.sockets) rmSync(path, { force: true });
  }

  private create(listener: Listener, tls?: { cert: Buffer; key: Buffer }): Server {
    const settings = {
      requestTimeout: this.options.requestTimeoutMs,
      headersTimeout: Math.min(this.options.requestTimeoutMs, 10_000),
      // Check for overdue requests at the timeout's own pace (Node's default is every 30 s).
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(this.options.requestTimeoutMs / 4))),
      keepAliveTimeout: 5_000,
      maxHeaderSize: 16 * 1024,
    };
    const connections = new Connections();
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.serve(listener, connections, req, res);
    const server = tls === undefined ? createServer(settings, handler) : createHttpsServer({ ...settings, ...tls, minVersion: 'TLSv1.2' }, handler);
    server.on('connection', (socket: Socket) => {
      if (connections.accept(socket)) return;
      const error = new LatticeError('RATE_LIMITED', `the gate already holds ${connections.size} connections on this socket; close one and retry`);
      this.refuseConnection(listener, socket, error, { listener, route: null }, 'at-once');
    });
    // Requests that never reach a handler (too slow, or not HTTP) are refused and recorded here too.
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!connections.close(socket)) return; // a later error of a connection already answered: it is being closed
      if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy(); // the client went away
      const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const refusal = timedOut
        ? new LatticeError('REQUEST_TIMEOUT', `the request did not arrive within ${this.options.requestTimeoutMs} ms`)
        : new LatticeError('BAD_REQUEST', error.code === 'HPE_HEADER_OVERFLOW' ? 'the request headers are too large' : 'the request is not valid HTTP/1.1');
      // A request already handed to a handler (its head was valid, its body is not) answers and records for itself.
      if (connections.abortRequests(socket, refusal)) return void socket.pause();
      this.refuseConnection(listener, socket, refusal, { listener, route: null }, 'linger');
    });
    // An Expect other than 100-continue: Node would answer 417 itself, unrecorded; it is refused like any bad request.
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      void this.fail(res, listener, connections, req, undefined, new LatticeError('BAD_REQUEST', 'Expect is supported only as 100-continue'));
    });
    // Node hands CONNECT (a proxy's method) to this event, and closes the connection unanswered when nothing listens.
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      if (!connections.close(socket)) return;
      this.refuseConnection(listener, socket, new LatticeError('METHOD_NOT_ALLOWED', 'CONNECT is not allowed here: the gate is not a proxy'), {
        listener,
        method: 'CONNECT',
        route: (req.url ?? '').slice(0, 256),
      }, 'linger');
    });
    this.servers.push(server);
    return server;
  }

  /** Answers a connection refused before it carried a request, closes it (see answerAndClose), then records it. */
  private refuseConnection(listener: Listener, socket: Duplex, error: LatticeError, payload: JsonObject, how: 'linger' | 'at-once'): void {
    const wire = toWireError(error);
    answerAndClose(socket, wire.status, REASONS[wire.status] ?? 'Error', wire.body, how);
    const refusal: Refusal = { principal: null, source: sourceOf(listener, socket), code: wire.body.error.code, payload: { code: wire.body.error.code, ...payload } };
    this.refusals.record(refusal).catch((recordError: unknown) => process.stderr.write(`lattice gate: could not record a refusal: ${describeError(recordError)}\n`));
  }

  private async serve(listener: Listener, connections: Connections, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A request pipelined behind a connection's last answer is not served: the closing that answer began ends it.
    if (connections.isClosing(req.socket)) return;
    const inFlight = connections.begin(req.socket);
    res.once('close', () => connections.end(req.socket, inFlight, !res.shouldKeepAlive));
    let ctx: RequestContext | undefined;
    try {
      const target = parseTarget(req.url);
      const { route, params } = match(this.routes, listener, req.method ?? 'GET', target.pathname);
      ctx = this.context(listener, connections, req, route, params, target.query, target.pathname, inFlight.signal);
      if (listener === 'admin') await ctx.readBody();
      const reply = await route.handle(ctx);
      if ('stream' in reply) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
        res.flushHeaders();
        reply.stream(res);
      } else send(connections, req, res, reply.status, reply.body);
    } catch (error) {
      await this.fail(res, listener, connections, req, ctx, error);
    }
  }

  private context(listener: Listener, connections: Connections, req: IncomingMessage, route: CompiledRoute, params: Record<string, string>, query: URLSearchParams, path: string, signal: AbortSignal): RequestContext {
    let authenticated = listener === 'admin';
    let body: Promise<unknown> | undefined;
    const ctx: RequestContext = {
      listener,
      method: route.method,
      route: route.path,
      params,
      query,
      headers: req.headers,
      url: `${this.options.baseUrl}${path}`,
      principal: null,
      authenticated: (principal) => {
        ctx.principal = principal;
        if (listener !== 'admin') connections.bind(req.socket, principal);
        authenticated = true;
      },
      readBody: () => {
        if (!authenticated) return Promise.reject(new Error(`${route.method} ${route.path} asked for the body before authenticating the caller`));
        body ??= readJsonBody(req, this.options.bodyLimitBytes, this.bodies, signal);
        return body;
      },
    };
    return ctx;
  }

  /**
   * Records the refusal or failure, then answers; if the record cannot be written, the answer is 503. A connection
   * past its allowance of refusals that named no one is answered 429 instead, and closed.
   */
  private async fail(res: ServerResponse, listener: Listener, connections: Connections, req: IncomingMessage, ctx: RequestContext | undefined, error: unknown): Promise<void> {
    let wire = toWireError(error);
    const principal = ctx?.principal ?? null;
    const closing = wire.refusal && principal === null && connections.refusedUnauthenticated(req.socket, Date.now());
    if (closing) {
      wire = toWireError(new LatticeError('RATE_LIMITED', `this connection was refused more than ${UNAUTHENTICATED_REFUSALS} times in ${REFUSAL_WINDOW_MS / 1000} s without a credential; it is closed`));
    }
    if (!wire.refusal) process.stderr.write(`lattice gate: internal error on ${ctx?.route ?? 'request'}: ${describeError(error)}\n`);
    const payload: JsonObject = {
      code: wire.body.error.code,
      method: (req.method ?? '').slice(0, 16),
      route: ctx?.route ?? (req.url ?? '').slice(0, 256),
      listener,
      ...(isLatticeError(error) && PUBLIC_FAILURES.has(error.code) && { message: error.message.slice(0, 512) }),
    };
    try {
      if (wire.refusal) await this.refusals.record({ principal, source: principal ?? sourceOf(listener, req.socket), code: wire.body.error.code, payload });
      else await this.options.ledger.append({ type: 'request.failed', principal, decision: 'error', payload });
    } catch (recordError) {
      process.stderr.write(`lattice gate: could not record a refusal: ${describeError(recordError)}\n`);
      send(connections, req, res, 503, { error: { code: 'LEDGER_WRITE_FAILED', message: 'the gate could not record the request' } }, true);
      return;
    }
    send(connections, req, res, wire.status, wire.body, closing);
  }
}

/** Who a refusal is counted against when no principal is known: the listener, or the TCP peer's address. */
function sourceOf(listener: Listener, socket: Duplex): string {
  const address = listener === 'tcp' ? (socket as Socket).remoteAddress : undefined;
  return address === undefined ? listener : `tcp:${address}`;
}

const REASONS: Readonly<Record<number, string>> = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 429: 'Too Many Requests' };

/** Answers with JSON; `close` (or a body left unread) makes it the connection's last answer. */
function send(connections: Connections, req: IncomingMessage, res: ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' };
  if (close || !req.complete) {
    headers['connection'] = 'close';
    connections.close(req.socket); // what the client sends after this answer is neither served nor recorded
    // A body left unread is not read to its end: Node would destroy the socket once this answer is flushed, while the
    // client may still be sending, and the reset could lose the answer. The connection lingers instead.
    const socket = req.socket;
    if (!req.complete) socket.destroySoon = () => lingerClose(socket);
  }
  res.writeHead(status, headers);
  res.end(text);
}

/** Whether something accepts connections on a unix socket (a stale file does not). */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
