/**
 * `lattice mcp --http`: the tools over Streamable HTTP at `/mcp`, one MCP session per client, on loopback only.
 *
 * Whoever reaches this server acts with the agent's credential, and every local process can reach loopback, so
 * a request is served only with `Authorization: Bearer <secret>` (token.ts). That is checked first, before the
 * path, the session or the body: anything else is answered 401 with `WWW-Authenticate: Bearer` and the connection
 * is closed unread. A request that passes also has its `Host` checked against the loopback names (DNS rebinding).
 *
 * Why a bearer secret and not a unix socket: the MCP clients lattice configures (Claude Code, Cursor, Codex,
 * OpenCode) connect to Streamable HTTP by URL, with headers from their configuration, and none to a socket file.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { LatticeTools } from './server.ts';
import { bearerMatches } from './token.ts';

/** Most a request body may be (JSON-RPC messages, not uploads). */
const BODY_LIMIT_BYTES = 4 * 1024 * 1024;

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
  let port = options.port;
  let refused = 0;
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!bearerMatches(req.headers.authorization, token)) {
      refused++;
      if (refused === 1 || refused % 100 === 0) log(`refused ${refused} request(s) without the bearer secret`);
      return unauthorized(res, req.headers.authorization !== undefined);
    }
    void (async () => {
      if (new URL(req.url ?? '/', 'http://mcp.invalid').pathname !== '/mcp') return reply(res, 404, 'the MCP endpoint is /mcp');
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (transport === undefined) {
        if (req.method !== 'POST' || !isInitializeRequest(body)) return reply(res, 400, 'no such MCP session; initialize first');
        const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => globalThis.crypto.randomUUID(), enableDnsRebindingProtection: true, allowedHosts, onsessioninitialized: (sid) => void sessions.set(sid, created) });
        created.onclose = () => {
          if (created.sessionId !== undefined) sessions.delete(created.sessionId);
        };
        await tools.server().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res, body);
    })().catch((error: unknown) => {
      log(`request failed: ${String(error)}`);
      if (!res.headersSent) reply(res, 500, 'internal error');
    });
  });
  await new Promise<void>((done, fail) => {
    http.once('error', fail);
    http.listen(port, host, () => done());
  });
  const bound = http.address();
  if (typeof bound === 'object' && bound !== null) port = bound.port;
  log(`serving MCP (Streamable HTTP) at http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`);
  await new Promise<void>((done) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => done());
  });
  http.close();
  await tools.close();
}

/** 401 without reading the body; the connection is closed so nothing more is read from it. */
function unauthorized(res: ServerResponse, presented: boolean): void {
  const challenge = presented ? 'Bearer realm="lattice mcp", error="invalid_token"' : 'Bearer realm="lattice mcp"';
  res.writeHead(401, { 'www-authenticate': challenge, connection: 'close', 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'this MCP server needs `Authorization: Bearer <secret>`: the secret in its token file, which `lattice mcp install --http` writes into the client configuration' }, id: null }));
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
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
