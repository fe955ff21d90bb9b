/**
 * `lattice mcp`: the MCP server for an agent (stdio, or Streamable HTTP on loopback), and `lattice mcp install`,
 * which writes an MCP client's configuration to start it with the agent's credential.
 */
import type { Command } from 'commander';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { LatticeError } from '../../core/errors.ts';
import { LatticeTools } from '../../mcp/server.ts';
import { CREDENTIAL_HELP, agentClient } from '../agent.ts';
import { example } from '../common.ts';
import { printJson } from '../output.ts';
import { VERSION } from '../version.ts';
import { MCP_CLIENTS, type McpClient } from '../../mcp/client-config.ts';
import { installMcp } from '../../mcp/install.ts';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/;

export function registerMcp(program: Command): void {
  const mcp = program
    .command('mcp')
    .description('serve the actions this agent may use as MCP tools (stdio by default); every call goes through the gate')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--http <host:port>', 'serve Streamable HTTP on this loopback address instead of stdio')
    .action(async (opts: { credential?: string; http?: string }) => {
      const log = (line: string) => process.stderr.write(`lattice mcp: ${line}\n`);
      const listen = opts.http === undefined ? null : loopbackAddress(opts.http); // refused before anything connects
      const tools = new LatticeTools(agentClient(opts.credential, { retries: 3 }), { version: VERSION, log });
      try {
        await tools.start();
      } catch (error) {
        await tools.close();
        throw error;
      }
      if (listen === null) return serveStdio(tools);
      return serveHttp(tools, listen, log);
    });
  example(mcp, 'LATTICE_CREDENTIAL=cred.json lattice mcp', 'lattice mcp --credential cred.json --http 127.0.0.1:7801');

  const install = mcp
    .command('install')
    .description("write an MCP client's configuration so it starts `lattice mcp` with this credential")
    .requiredOption('--client <client>', `one of ${MCP_CLIENTS.join(', ')}`)
    .option('--scope <scope>', 'user (your home) or project (this directory)', 'project')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--dir <dir>', 'the project directory for --scope project (default: the current directory)')
    .option('--json', 'print what was written as JSON')
    .action((opts: { client: string; scope: string; credential?: string; dir?: string; json?: boolean }) => {
      if (!MCP_CLIENTS.includes(opts.client as McpClient)) throw new LatticeError('INVALID_ARGUMENT', `--client must be one of ${MCP_CLIENTS.join(', ')}`);
      if (opts.scope !== 'user' && opts.scope !== 'project') throw new LatticeError('INVALID_ARGUMENT', '--scope must be user or project');
      const credential = opts.credential ?? process.env['LATTICE_CREDENTIAL'];
      if (credential === undefined || credential === '') throw new LatticeError('INVALID_ARGUMENT', 'pass --credential FILE or set LATTICE_CREDENTIAL (made by `lattice enroll`)');
      agentClient(credential); // refuses a file that is not a credential before anything is written
      const written = installMcp({ client: opts.client as McpClient, scope: opts.scope, credential: resolve(credential), projectDir: resolve(opts.dir ?? '.'), home: process.env['HOME'] ?? '' });
      if (opts.json === true) return printJson(written);
      process.stdout.write(`wrote the lattice MCP server into ${written.file} (${opts.client}, ${opts.scope} scope)\n  command: ${written.command.join(' ')}\n`);
    });
  example(install, 'lattice mcp install --client claude-code --credential cred.json', 'lattice mcp install --client codex --scope user');
}

async function serveStdio(tools: LatticeTools): Promise<void> {
  const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
  const server = tools.server();
  const closed = new Promise<void>((done) => (server.onclose = done));
  await server.connect(new StdioServerTransport());
  process.stdin.once('end', () => void server.close());
  await closed;
  await tools.close();
}

/** Streamable HTTP, one MCP session per client; loopback only, with Host checks against DNS rebinding. */
function loopbackAddress(address: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(address);
  if (m === null || !LOOPBACK.test(m[1] ?? '') || Number(m[2]) > 65535) throw new LatticeError('INVALID_ARGUMENT', `--http ${JSON.stringify(address)} must be a loopback HOST:PORT, e.g. 127.0.0.1:7801`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

async function serveHttp(tools: LatticeTools, listen: { host: string; port: number }, log: (line: string) => void): Promise<void> {
  const { host } = listen;
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js');
  const { isInitializeRequest } = await import('@modelcontextprotocol/sdk/types.js');
  const sessions = new Map<string, InstanceType<typeof StreamableHTTPServerTransport>>();
  let port = listen.port;
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
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

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 4 * 1024 * 1024) req.destroy(new Error('the request body exceeds 4 MiB'));
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
