/**
 * `lattice mcp --http`: the tools over Streamable HTTP at `/mcp`, one MCP session per client, on loopback only.
 *
 * Whoever reaches this server acts with the agent's credential, and every local process (and, through DNS
 * rebinding or a cross-origin request, every web page the user opens) can reach loopback. So each request passes,
 * in order, before anything is read from its body or kept for it:
 *
 *   1. Host and Origin (origin.ts): a foreign Host or a present, foreign Origin is answered 403;
 *   2. `Authorization: Bearer <secret>` (token.ts): anything else is answered 401 with `WWW-Authenticate: Bearer`;
 *   3. the path (`/mcp`, else 404) and the session: an `Mcp-Session-Id` this server does not hold (unknown, or
 *      terminated by DELETE) is answered 404, which tells the client to initialize again; a request without one
 *      must be an `initialize` POST (else 400).
 *
 * Refusals close the connection unread. Only an initialize that passes all of this gets a transport and an MCP
 * Server, and one the transport then refuses (a bad Accept header, say) is closed at once, so a refused request
 * leaves nothing behind.
 *
 * A response stream that closes before its answer was written cancels the requests it was to answer, as if the
 * client had sent `notifications/cancelled` (a held tool call then withdraws its approval). The specification
 * says a disconnection should not be taken for a cancellation because a client may resume the stream; this server
 * keeps no event store, so none can, and nobody is left to receive that answer.
 *
 * Why a bearer secret and not a unix socket: the MCP clients lattice configures (Claude Code, Cursor, Codex,
 * OpenCode) connect to Streamable HTTP by URL, with headers from their configuration, and none to a socket file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { foreignSource, loopbackAuthorities } from './origin.ts';
import type { LatticeTools } from './server.ts';
import { bearerMatches } from './token.ts';

/** Most a request body may be (JSON-RPC messages, not uploads). */
const BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** JSON-RPC error codes of refusals: the SDK's own for "Session not found", and a generic server error. */
const SESSION_NOT_FOUND = -32001;
const SERVER_ERROR = -32000;

export interface HttpServing {
  readonly host: string;
  readonly port: number;
  /** The bearer secret every request must carry. */
  readonly token: string;
  readonly log: (line: string) => void;
}

/** Serves until SIGINT or SIGTERM, then closes the tools. */
export async function serveHttp(tools: LatticeTools, options: HttpServing): Promise<void> {
  const { host, token, log } = options;
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { isInitializeRequest } = await import('@modelcontextprotocol/sdk/types.js');
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  let authorities: ReadonlySet<string> = new Set(); // set once the port is bound, before any request is accepted
  const refused = { source: 0, secret: 0 };
  const count = (kind: keyof typeof refused, what: string) => {
    const n = ++refused[kind];
    if (n === 1 || n % 100 === 0) log(`refused ${n} request(s) ${what}`);
  };

  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    const foreign = foreignSource(req.headers, authorities);
    if (foreign !== null) {
      count('source', 'from a foreign Host or Origin');
      return refuse(res, 403, SERVER_ERROR, `${foreign}; this MCP server answers only its own loopback address`);
    }
    if (!bearerMatches(req.headers.authorization, token)) {
      count('secret', 'without the bearer secret');
      return unauthorized(res, req.headers.authorization !== undefined);
    }
    if (new URL(req.url ?? '/', 'http://mcp.invalid').pathname !== '/mcp') return refuse(res, 404, SERVER_ERROR, 'the MCP endpoint is /mcp');
    const id = req.headers['mcp-session-id'];
    void (async () => {
      if (id !== undefined) {
        const transport = typeof id === 'string' ? sessions.get(id) : undefined;
        if (transport === undefined) return refuse(res, 404, SESSION_NOT_FOUND, 'Session not found: this server holds no such MCP session (unknown, or terminated); initialize a new one');
        const body = req.method === 'POST' ? await readJson(req) : undefined;
        cancelWhenDropped(res, transport, body);
        return transport.handleRequest(req, res, body);
      }
      if (req.method !== 'POST') return refuse(res, 400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required (initialize first)');
      const body = await readJson(req);
      if (!isInitializeRequest(body)) return reply(res, 400, SERVER_ERROR, 'Bad Request: a request without Mcp-Session-Id must be an initialize request');
      const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => globalThis.crypto.randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, created) });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await tools.server().connect(created);
      try {
        await created.handleRequest(req, res, body);
      } finally {
        // Refused by the transport, or failed: no session was made, so close it (and its Server); nothing is kept.
        if (created.sessionId === undefined) await created.close();
      }
    })().catch((error: unknown) => {
      log(`request failed: ${String(error)}`);
      if (!res.headersSent) reply(res, 500, SERVER_ERROR, 'internal error');
    });
  });
  await new Promise<void>((done, fail) => {
    http.once('error', fail);
    http.listen(options.port, host, () => done());
  });
  const bound = http.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : options.port;
  authorities = loopbackAuthorities(host, port);
  log(`serving MCP (Streamable HTTP) at http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`);
  await new Promise<void>((done) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => done());
  });
  http.close(); // no new connections
  await tools.close(); // every session closes, and its held calls withdraw
  http.closeAllConnections(); // then the connections still open (event streams, keep-alive) end
}

/** 401 without reading the body; the connection is closed so nothing more is read from it. */
function unauthorized(res: ServerResponse, presented: boolean): void {
  const challenge = presented ? 'Bearer realm="lattice mcp", error="invalid_token"' : 'Bearer realm="lattice mcp"';
  res.writeHead(401, { 'www-authenticate': challenge, connection: 'close', 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'this MCP server needs `Authorization: Bearer <secret>`: the secret in its token file, which `lattice mcp install --http` writes into the client configuration' }, id: null }));
}

/** A refusal before the body is read: the connection is closed so nothing more is read from it. */
function refuse(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { connection: 'close', 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** When `res` closes before it was written to its end, cancels the JSON-RPC requests in `body` it was to answer. */
function cancelWhenDropped(res: ServerResponse, transport: Transport, body: unknown): void {
  const ids = (Array.isArray(body) ? body : [body]).flatMap((message: unknown) => {
    const m = message as { method?: unknown; id?: unknown } | null;
    return typeof m === 'object' && m !== null && typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number') ? [m.id] : [];
  });
  if (ids.length === 0) return;
  res.once('close', () => {
    if (res.writableFinished) return;
    for (const requestId of ids) transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'the client closed the response stream' } });
  });
}

function reply(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) req.destroy(new Error('the request body exceeds 4 MiB'));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        done(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        done(undefined); // not JSON: the transport answers it with a parse error
      }
    });
    req.on('error', fail);
  });
}
