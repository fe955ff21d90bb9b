/**
 * Where each MCP client reads its servers, and the lattice server's entry merged into what is there. No I/O here:
 * mcp/install.ts and the sandbox's private home (sandbox/agent-home.ts) read and write the files.
 *
 *   claude-code  project: .mcp.json            user: .claude.json                    {"mcpServers": {"lattice": {type, command, args}}}
 *   cursor       project: .cursor/mcp.json     user: .cursor/mcp.json                {"mcpServers": {"lattice": {type, command, args}}}
 *   codex        project: .codex/config.toml   user: .codex/config.toml              [mcp_servers.lattice] command, args
 *   opencode     project: opencode.json        user: .config/opencode/opencode.json  {"mcp": {"lattice": {type: "local", command: [...]}}}
 *
 * A started server gets the client's environment: Claude Code and opencode pass theirs on (Cursor, as an Electron
 * app, is expected to); Codex clears it but for a few variables, so an entry that reads one from there (the portable
 * form's LATTICE_CREDENTIAL, see mcp/install.ts) names it in `env_vars`.
 *
 * A client may instead connect to `lattice mcp --http`: a URL and the header `Authorization: Bearer <secret>`
 * (claude-code {type: "http", url, headers}, cursor {url, headers}, codex {url, http_headers}, opencode
 * {type: "remote", url, headers}). The file then holds that secret.
 *
 * A configuration may have been written by an agent, so it is parsed defensively: JSON or TOML only (both parsers
 * keep `__proto__` as a plain key), the top level and the servers' table must be objects, and the reader caps its
 * size (MAX_CONFIG_BYTES). Everything else in it is kept. One that cannot be parsed is refused, never overwritten.
 */
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { LatticeError, describeError } from '../core/errors.ts';

export const MCP_CLIENTS = ['claude-code', 'cursor', 'codex', 'opencode'] as const;
export type McpClient = (typeof MCP_CLIENTS)[number];

/** Claude Code keeps its projects' state in ~/.claude.json, which grows; far beyond this is not a configuration. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** The client's configuration file, relative to the project directory or to the home. */
export function configPath(client: McpClient, scope: 'user' | 'project'): string {
  switch (client) {
    case 'claude-code':
      return scope === 'project' ? '.mcp.json' : '.claude.json';
    case 'cursor':
      return '.cursor/mcp.json';
    case 'codex':
      return '.codex/config.toml';
    case 'opencode':
      return scope === 'project' ? 'opencode.json' : '.config/opencode/opencode.json';
  }
}

/**
 * How the client reaches lattice's server: it starts the command (which reads the variables `passEnv` names from
 * the client's environment), or it connects to `lattice mcp --http`.
 */
export type LatticeServer = { readonly command: readonly string[]; readonly passEnv?: readonly string[] } | { readonly url: string; readonly headers: Readonly<Record<string, string>> };

/**
 * `existing` (null: there is no file) with the lattice server's entry set to `server`. `file` names the
 * configuration in messages.
 */
export function withLatticeServer(client: McpClient, existing: string | null, server: LatticeServer, file: string): string {
  const entry = serverEntry(client, server);
  const refuse = (error: unknown) => new LatticeError('INVALID_ARGUMENT', `${file} is not valid ${client === 'codex' ? 'TOML' : 'JSON'} (${describeError(error)}); fix or move it, nothing was written`);
  if (client === 'codex') {
    let config: Record<string, unknown>;
    try {
      config = existing === null ? {} : parseToml(existing);
    } catch (error) {
      throw refuse(error);
    }
    tableAt(config, 'mcp_servers', file)['lattice'] = entry;
    return `${stringifyToml(config)}\n`;
  }
  let config: Record<string, unknown>;
  try {
    const parsed: unknown = existing === null || existing.trim() === '' ? {} : JSON.parse(existing);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level is not an object');
    config = parsed as Record<string, unknown>;
  } catch (error) {
    throw refuse(error);
  }
  if (client === 'opencode') config['$schema'] ??= 'https://opencode.ai/config.json';
  tableAt(config, client === 'opencode' ? 'mcp' : 'mcpServers', file)['lattice'] = entry;
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The lattice server's entry in the client's own words. */
function serverEntry(client: McpClient, server: LatticeServer): Record<string, unknown> {
  if ('url' in server) {
    const { url, headers } = server;
    switch (client) {
      case 'claude-code':
        return { type: 'http', url, headers };
      case 'cursor':
        return { url, headers };
      case 'codex':
        return { url, http_headers: headers };
      case 'opencode':
        return { type: 'remote', url, headers, enabled: true };
    }
  }
  const [program, ...args] = server.command;
  if (program === undefined) throw new Error('the MCP server has no command');
  switch (client) {
    case 'codex':
      return { command: program, args, ...(server.passEnv !== undefined && { env_vars: [...server.passEnv] }) };
    case 'opencode':
      return { type: 'local', command: [program, ...args], enabled: true };
    case 'claude-code':
    case 'cursor':
      return { type: 'stdio', command: program, args };
  }
}

function tableAt(config: Record<string, unknown>, key: string, file: string): Record<string, unknown> {
  const value = config[key] ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LatticeError('INVALID_ARGUMENT', `${file}: ${key} is not a table of servers; fix it, nothing was written`);
  config[key] = value;
  return value as Record<string, unknown>;
}
