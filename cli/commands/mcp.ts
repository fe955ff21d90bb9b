/**
 * `lattice mcp`: the MCP server for an agent (stdio, or Streamable HTTP on loopback with a bearer secret), and
 * `lattice mcp install`, which writes an MCP client's configuration to start it with the agent's credential (or,
 * with --http, to connect to it with the secret).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { LatticeError } from '../../core/errors.ts';
import { serveHttp } from '../../mcp/http.ts';
import { LatticeTools } from '../../mcp/server.ts';
import { defaultTokenFile, loadOrCreateToken } from '../../mcp/token.ts';
import { CREDENTIAL_HELP, agentClient } from '../agent.ts';
import { example } from '../common.ts';
import { printJson } from '../output.ts';
import { VERSION } from '../version.ts';
import { MCP_CLIENTS, type McpClient } from '../../mcp/client-config.ts';
import { installMcp } from '../../mcp/install.ts';

const TOKEN_FILE_HELP = 'the bearer secret --http clients must send (default: beside the credential, cred.json → cred.mcp-token; made if missing)';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/;

export function registerMcp(program: Command): void {
  const mcp = program
    .command('mcp')
    .description('serve the actions this agent may use as MCP tools (stdio by default); every call goes through the gate')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--http <host:port>', 'serve Streamable HTTP on this loopback address instead of stdio; every request must carry the bearer secret')
    .option('--token-file <file>', TOKEN_FILE_HELP)
    .action(async (opts: { credential?: string; http?: string; tokenFile?: string }) => {
      const log = (line: string) => process.stderr.write(`lattice mcp: ${line}\n`);
      const listen = opts.http === undefined ? null : loopbackAddress(opts.http); // refused before anything connects
      const client = agentClient(opts.credential, { retries: 3 });
      const secret = listen === null ? null : bearerSecret(opts.tokenFile, opts.credential, log);
      const tools = new LatticeTools(client, { version: VERSION, log });
      try {
        await tools.start();
      } catch (error) {
        await tools.close();
        throw error;
      }
      if (listen === null || secret === null) return serveStdio(tools);
      return serveHttp(tools, { ...listen, token: secret, log });
    });
  example(mcp, 'LATTICE_CREDENTIAL=cred.json lattice mcp', 'lattice mcp --credential cred.json --http 127.0.0.1:7801');

  const install = mcp
    .command('install')
    .description("write an MCP client's configuration so it starts `lattice mcp` with this credential")
    .requiredOption('--client <client>', `one of ${MCP_CLIENTS.join(', ')}`)
    .option('--scope <scope>', 'user (your home) or project (this directory)', 'project')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--dir <dir>', 'the project directory for --scope project (default: the current directory)')
    .option('--http <host:port>', 'have the client connect to `lattice mcp --http` on this loopback address, with the bearer secret, instead of starting it')
    .option('--token-file <file>', TOKEN_FILE_HELP)
    .option('--json', 'print what was written as JSON')
    .action((opts: { client: string; scope: string; credential?: string; dir?: string; http?: string; tokenFile?: string; json?: boolean }) => {
      if (!MCP_CLIENTS.includes(opts.client as McpClient)) throw new LatticeError('INVALID_ARGUMENT', `--client must be one of ${MCP_CLIENTS.join(', ')}`);
      if (opts.scope !== 'user' && opts.scope !== 'project') throw new LatticeError('INVALID_ARGUMENT', '--scope must be user or project');
      const credential = opts.credential ?? process.env['LATTICE_CREDENTIAL'];
      if (credential === undefined || credential === '') throw new LatticeError('INVALID_ARGUMENT', 'pass --credential FILE or set LATTICE_CREDENTIAL (made by `lattice enroll`)');
      agentClient(credential); // refuses a file that is not a credential before anything is written
      const http = opts.http === undefined ? undefined : remoteServer(opts.http, opts.tokenFile, resolve(credential));
      const written = installMcp({ client: opts.client as McpClient, scope: opts.scope, credential: resolve(credential), projectDir: resolve(opts.dir ?? '.'), home: process.env['HOME'] ?? '', ...(http !== undefined && { http }) });
      if (opts.json === true) return printJson(written);
      process.stdout.write(`wrote the lattice MCP server into ${written.file} (${opts.client}, ${opts.scope} scope)\n  command: ${written.command.join(' ')}\n`);
      if (http !== undefined) {
        process.stdout.write(
          `  the client connects to http://${http.listen}/mcp with the bearer secret in ${http.tokenFile}; start the server with the command above\n` +
            (opts.scope === 'project' ? `  ${written.file} now holds that secret: keep it out of version control\n` : ''),
        );
      }
    });
  example(install, 'lattice mcp install --client claude-code --credential cred.json', 'lattice mcp install --client codex --scope user', 'lattice mcp install --client cursor --scope user --http 127.0.0.1:7801');
}

/** The secret `lattice mcp --http` requires, from --token-file or beside the credential; made if missing. */
function bearerSecret(tokenFile: string | undefined, credential: string | undefined, log: (line: string) => void): string {
  const file = resolve(tokenFile ?? defaultTokenFile(credential ?? process.env['LATTICE_CREDENTIAL'] ?? ''));
  const { token, created } = loadOrCreateToken(file);
  log(`${created ? 'made a new' : 'using the'} bearer secret in ${file}: clients must send \`Authorization: Bearer <it>\` (\`lattice mcp install --http\` writes it into their configuration)`);
  return token;
}

/** What `mcp install --http` writes: the address, and the secret (made if missing) the server will require. */
function remoteServer(address: string, tokenFile: string | undefined, credential: string): { listen: string; tokenFile: string; token: string } {
  const { host, port } = loopbackAddress(address);
  if (port === 0) throw new LatticeError('INVALID_ARGUMENT', `--http ${JSON.stringify(address)} needs a fixed port for the client to connect to, e.g. 127.0.0.1:7801`);
  const file = resolve(tokenFile ?? defaultTokenFile(credential));
  return { listen: `${host.includes(':') ? `[${host}]` : host}:${port}`, tokenFile: file, token: loadOrCreateToken(file).token };
}

/** Serves one client on stdin/stdout until it closes them or a signal comes; then held calls withdraw (server.ts). */
async function serveStdio(tools: LatticeTools): Promise<void> {
  const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
  const server = tools.server();
  const closed = new Promise<void>((done) => (server.onclose = done));
  await server.connect(new StdioServerTransport());
  process.stdin.once('end', () => void server.close()); // the client went away
  const stop = () => void tools.close(); // the server stops
  process.once('SIGINT', stop).once('SIGTERM', stop);
  await closed;
  await tools.close();
}

/** `--http`'s HOST:PORT, loopback only (the server also checks Host headers against DNS rebinding). */
function loopbackAddress(address: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(address);
  if (m === null || !LOOPBACK.test(m[1] ?? '') || Number(m[2]) > 65535) throw new LatticeError('INVALID_ARGUMENT', `--http ${JSON.stringify(address)} must be a loopback HOST:PORT, e.g. 127.0.0.1:7801`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

