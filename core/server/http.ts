/**
 * HTTP/1.1 over the gate's unix sockets (and an optional loopback TCP listener), with node:http.
 *
 * Fails closed at the boundary: a body over the limit, a body that is not `application/json` or not JSON, an
 * unknown route or a wrong method, or a request that outlives the timeout is refused with its own code before
 * any handler runs. Every refusal and every internal failure is written to the ledger before the client is
 * answered; if that write fails, the client gets a 503 and nothing else happens. Handlers receive the URL built
 * from the configured base, never from the Host header.
 */
import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { JsonObject } from '../canonical.ts';
import { LatticeError, describeError, isLatticeError } from '../errors.ts';
import type { Ledger } from '../ledger/ledger.ts';
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
  /** Parsed JSON body (attacker-controlled), or undefined when there was none. */
  readonly body: unknown;
  /** Set by authentication, so refusals after it name who was refused. */
  principal: string | null;
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

interface CompiledRoute extends Route {
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

export class GateServer {
  private readonly routes: readonly CompiledRoute[];
  private readonly servers: Server[] = [];
  private readonly sockets: string[] = [];

  constructor(private readonly options: ServerOptions) {
    this.routes = options.routes.map(compile);
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

  async close(): Promise<void> {
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
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.serve(listener, req, res);
    const server = tls === undefined ? createServer(settings, handler) : createHttpsServer({ ...settings, ...tls, minVersion: 'TLSv1.2' }, handler);
    // Requests that never reach a handler (too slow, or not HTTP) are refused and recorded here too.
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => void this.clientError(listener, error, socket));
    this.servers.push(server);
    return server;
  }

  private async clientError(listener: Listener, error: NodeJS.ErrnoException, socket: Duplex): Promise<void> {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return; // the client went away: nothing was refused
    }
    const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const wire = toWireError(
      timedOut
        ? new LatticeError('REQUEST_TIMEOUT', `the request did not arrive within ${this.options.requestTimeoutMs} ms`)
        : new LatticeError('BAD_REQUEST', error.code === 'HPE_HEADER_OVERFLOW' ? 'the request headers are too large' : 'the request is not valid HTTP/1.1'),
    );
    try {
      await this.options.ledger.append({ type: 'request.refused', decision: 'deny', payload: { code: wire.body.error.code, listener, route: null } });
    } catch (recordError) {
      process.stderr.write(`lattice gate: could not record a refusal: ${describeError(recordError)}\n`);
    }
    const text = JSON.stringify(wire.body);
    const reason = timedOut ? 'Request Timeout' : 'Bad Request';
    socket.end(`HTTP/1.1 ${wire.status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }

  private async serve(listener: Listener, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let ctx: RequestContext | undefined;
    try {
      const url = new URL(req.url ?? '/', 'http://gate.invalid');
      const method = req.method ?? 'GET';
      const route = this.match(listener, method, url.pathname);
      const body = await readJsonBody(req, this.options.bodyLimitBytes);
      ctx = {
        listener,
        method: route.route.method,
        route: route.route.path,
        params: route.params,
        query: url.searchParams,
        headers: req.headers,
        url: `${this.options.baseUrl}${url.pathname}`,
        body,
        principal: null,
      };
      const reply = await route.route.handle(ctx);
      if ('stream' in reply) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
        res.flushHeaders();
        reply.stream(res);
      } else send(req, res, reply.status, reply.body);
    } catch (error) {
      await this.fail(res, listener, req, ctx, error);
    }
  }

  private match(listener: Listener, method: string, path: string): { route: CompiledRoute; params: Record<string, string> } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (m === null || !route.on.includes(listener)) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? '')));
      return { route, params };
    }
    if (pathMatched) throw new LatticeError('METHOD_NOT_ALLOWED', `${method} is not allowed here`);
    throw new LatticeError('NOT_FOUND', 'no such endpoint');
  }

  /** Records the refusal or failure, then answers; if the record cannot be written, the answer is 503. */
  private async fail(res: ServerResponse, listener: Listener, req: IncomingMessage, ctx: RequestContext | undefined, error: unknown): Promise<void> {
    const wire = toWireError(error);
    if (!wire.refusal) process.stderr.write(`lattice gate: internal error on ${ctx?.route ?? 'request'}: ${describeError(error)}\n`);
    const payload: JsonObject = {
      code: wire.body.error.code,
      method: (req.method ?? '').slice(0, 16),
      route: ctx?.route ?? (req.url ?? '').slice(0, 256),
      listener,
      ...(isLatticeError(error) && PUBLIC_FAILURES.has(error.code) && { message: error.message.slice(0, 512) }),
    };
    try {
      await this.options.ledger.append({
        type: wire.refusal ? 'request.refused' : 'request.failed',
        principal: ctx?.principal ?? null,
        decision: wire.refusal ? 'deny' : 'error',
        payload,
      });
    } catch (recordError) {
      process.stderr.write(`lattice gate: could not record a refusal: ${describeError(recordError)}\n`);
      send(req, res, 503, { error: { code: 'LEDGER_WRITE_FAILED', message: 'the gate could not record the request' } });
      return;
    }
    send(req, res, wire.status, wire.body);
  }
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/:([a-zA-Z]+)/g, (_, name: string) => {
    names.push(name);
    return '([^/]{1,256})';
  });
  return { ...route, handle: route.handle.bind(route), pattern: new RegExp(`^${source}$`), names };
}

/**
 * Reads the body under the limit; refuses non-JSON content types and unparseable JSON. No body → undefined.
 * Past the limit the rest is drained and discarded (not buffered), so the refusal can still be delivered.
 */
function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const tooLarge = () => new LatticeError('BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
  if (Number(req.headers['content-length'] ?? '0') > limit) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const refuse = (error: LatticeError) => {
      refused = true;
      chunks.length = 0;
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) refuse(tooLarge());
      else chunks.push(chunk);
    });
    req.on('error', () => {
      if (!refused) refuse(new LatticeError('BAD_REQUEST', 'the request body could not be read'));
    });
    req.on('end', () => {
      if (refused) return;
      if (size === 0) return resolve(undefined);
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/json') return reject(new LatticeError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json'));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        reject(new LatticeError('BAD_REQUEST', 'the body is not valid JSON')); // the parser's detail would echo input back
      }
    });
  });
}

function send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' };
  if (!req.complete) headers['connection'] = 'close'; // a refused body is not read to its end over this connection
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
