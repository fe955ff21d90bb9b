/**
 * `lattice mcp`: the MCP server for an agent (stdio, or Streamable HTTP on loopback with a bearer secret), and
 * `lattice mcp install`, which writes an MCP client's configuration to start it with the agent's credential (or,
 * with --http, to connect to it with the secret).
 */
import type { Command } from 'commander';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { LatticeError } from '../../core/errors.ts';
import { serveHttp } from '../../mcp/http.ts';
import { LatticeTools } from '../../mcp/server.ts';
import { defaultTokenFile, loadOrCreateToken } from '../../mcp/token.ts';
import { CREDENTIAL_HELP, agentClient } from '../agent.ts';
import { example } from '../common.ts';
import { printJson } from '../output.ts';
import { VERSION } from '../version.ts';
import { MCP_CLIENTS, type McpClient } from '../../mcp/client-config.ts';
import { CREDENTIAL_VARIABLE, PORTABLE_COMMAND, installMcp } from '../../mcp/install.ts';

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
    .description("write an MCP client's configuration so it starts `lattice mcp` with the agent's credential")
    .requiredOption('--client <client>', `one of ${MCP_CLIENTS.join(', ')}`)
    .option('--scope <scope>', 'user (your home) or project (this directory)', 'project')
    .option('--credential <file>', `${CREDENTIAL_HELP}; the portable form does not write it, and checks it when given`)
    .option('--portable', `write \`${PORTABLE_COMMAND.join(' ')}\` (found on PATH) with the credential from $${CREDENTIAL_VARIABLE}, no path of this machine: a file to share with the team, mode 0644 in a project (the default for --scope project)`)
    .option('--absolute', "write this machine's lattice and credential paths, mode 0600 (the default for --scope user)")
    .option('--dir <dir>', 'the project directory for --scope project (default: the current directory)')
    .option('--http <host:port>', 'have the client connect to `lattice mcp --http` on this loopback address, with the bearer secret (the file holds it: mode 0600), instead of starting it')
    .option('--token-file <file>', TOKEN_FILE_HELP)
    .option('--json', 'print what was written as JSON')
    .action((opts: { client: string; scope: string; credential?: string; portable?: boolean; absolute?: boolean; dir?: string; http?: string; tokenFile?: string; json?: boolean }) => {
      if (!MCP_CLIENTS.includes(opts.client as McpClient)) throw new LatticeError('INVALID_ARGUMENT', `--client must be one of ${MCP_CLIENTS.join(', ')}`);
      if (opts.scope !== 'user' && opts.scope !== 'project') throw new LatticeError('INVALID_ARGUMENT', '--scope must be user or project');
      if (opts.portable === true && opts.absolute === true) throw new LatticeError('INVALID_ARGUMENT', '--portable and --absolute are two forms of the same entry; pass one');
      if (opts.http !== undefined && (opts.portable === true || opts.absolute === true)) throw new LatticeError('INVALID_ARGUMENT', `--${opts.portable === true ? 'portable' : 'absolute'} chooses how the client starts lattice, and with --http it connects instead; drop one`);
      const portable = opts.http === undefined && (opts.portable ?? (opts.absolute !== true && opts.scope === 'project'));
      const given = opts.credential ?? process.env[CREDENTIAL_VARIABLE];
      const credential = given === undefined || given === '' ? undefined : resolve(given);
      if (credential === undefined && !portable) throw new LatticeError('INVALID_ARGUMENT', `pass --credential FILE or set ${CREDENTIAL_VARIABLE} (made by \`lattice enroll\`)`);
      if (credential !== undefined) agentClient(credential); // refuses a file that is not a credential before anything is written
      const http = opts.http === undefined || credential === undefined ? undefined : remoteServer(opts.http, opts.tokenFile, credential);
      const written = installMcp({ client: opts.client as McpClient, scope: opts.scope, portable, ...(credential !== undefined && { credential }), projectDir: resolve(opts.dir ?? '.'), home: process.env['HOME'] ?? '', ...(http !== undefined && { http }) });
      if (opts.json === true) return printJson(written);
      process.stdout.write(`wrote the lattice MCP server into ${written.file} (${opts.client}, ${opts.scope} scope, ${written.form} form, mode ${written.mode})\n  command: ${written.command.join(' ')}\n`);
      if (written.form === 'portable') {
        process.stdout.write(
          `  it holds no path of this machine: whoever uses it needs \`lattice\` on PATH (\`npm link\` in the clone, or the binary) and ${CREDENTIAL_VARIABLE} set to their own credential` +
            (credential === undefined ? '\n' : `; yours: export ${CREDENTIAL_VARIABLE}=${credential}\n`),
        );
        if (!onPath(PORTABLE_COMMAND[0] ?? '')) process.stderr.write(`lattice mcp install: warning: \`lattice\` is not on your PATH, so the client cannot start it yet: run \`npm link\` in the lattice clone or install the binary (docs/install.md), or pass --absolute for this machine's paths\n`);
      }
      if (http !== undefined) {
        process.stdout.write(
          `  the client connects to http://${http.listen}/mcp with the bearer secret in ${http.tokenFile}; start the server with the command above\n` +
            (opts.scope === 'project' ? `  ${written.file} now holds that secret: keep it out of version control\n` : ''),
        );
      }
    });
  example(
    install,
    'lattice mcp install --client claude-code                                      # .mcp.json to share',
    'lattice mcp install --client claude-code --absolute --credential cred.json    # for this machine only',
    'lattice mcp install --client codex --scope user --credential cred.json',
    'lattice mcp install --client cursor --scope user --credential cred.json --http 127.0.0.1:7801',
  );
}

/**
 * Whether `name` is an executable file in a directory of $PATH, as the client's spawn will look it up. By hand: a
 * loop over PATH, and no library among lattice's dependencies does it.
 */
function onPath(name: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
    if (!isAbsolute(dir)) return false; // a relative entry would be looked up from the client's directory, not this one
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch (error) {
      if (['ENOENT', 'ENOTDIR', 'EACCES', 'ELOOP'].includes((error as NodeJS.ErrnoException).code ?? '')) return false; // not here: the next directory
      throw error;
    }
  });
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

