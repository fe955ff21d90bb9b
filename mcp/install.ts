/**
 * Writes the lattice MCP server into an MCP client's configuration, merged with what is there (other servers and
 * settings are kept; a file that cannot be parsed is refused, never overwritten). Where each client reads:
 *
 *   claude-code  project: .mcp.json                user: ~/.claude.json              {"mcpServers": {"lattice": {command, args}}}
 *   cursor       project: .cursor/mcp.json         user: ~/.cursor/mcp.json          {"mcpServers": {"lattice": {command, args}}}
 *   codex        project: .codex/config.toml       user: ~/.codex/config.toml        [mcp_servers.lattice] command, args
 *   opencode     project: opencode.json            user: ~/.config/opencode/opencode.json  {"mcp": {"lattice": {type: "local", command: [...]}}}
 *
 * With `http`, the client connects to `lattice mcp --http` instead of starting it: a URL and the header
 * `Authorization: Bearer <secret>` (claude-code {type: "http", url, headers}, cursor {url, headers}, codex
 * {url, http_headers}, opencode {type: "remote", url, headers}). The file then holds that secret.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { LatticeError, describeError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs-atomic.ts';
import { selfCommand } from '../core/runtime.ts';

export const MCP_CLIENTS = ['claude-code', 'cursor', 'codex', 'opencode'] as const;
export type McpClient = (typeof MCP_CLIENTS)[number];

export interface InstallInput {
  readonly client: McpClient;
  readonly scope: 'user' | 'project';
  /** Absolute path of the agent's credential file. */
  readonly credential: string;
  readonly projectDir: string;
  readonly home: string;
  /** How to start lattice (default: this process's own command). */
  readonly command?: readonly string[];
  /** Connect to `lattice mcp --http` on `listen` (loopback HOST:PORT) with the bearer secret in `tokenFile`. */
  readonly http?: { readonly listen: string; readonly tokenFile: string; readonly token: string };
}


export function configFile(client: McpClient, scope: 'user' | 'project', projectDir: string, home: string): string {
  const base = scope === 'project' ? projectDir : home;
  if (scope === 'user' && home === '') throw new LatticeError('INVALID_ARGUMENT', 'HOME is not set; use --scope project');
  switch (client) {
    case 'claude-code':
      return join(base, scope === 'project' ? '.mcp.json' : '.claude.json');
    case 'cursor':
      return join(base, '.cursor', 'mcp.json');
    case 'codex':
      return join(base, '.codex', 'config.toml');
    case 'opencode':
      return join(base, ...(scope === 'project' ? ['opencode.json'] : ['.config', 'opencode', 'opencode.json']));
  }
}

export function installMcp(input: InstallInput): { file: string; client: McpClient; scope: string; command: string[] } {
  const file = configFile(input.client, input.scope, input.projectDir, input.home);
  const serve = input.http === undefined ? [] : ['--http', input.http.listen, '--token-file', input.http.tokenFile];
  const [command, ...args] = [...(input.command ?? selfCommand()), 'mcp', '--credential', input.credential, ...serve];
  if (command === undefined) throw new Error('no command');
  const remote = input.http === undefined ? null : { url: `http://${input.http.listen}/mcp`, headers: { Authorization: `Bearer ${input.http.token}` } };
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : null;
  const refuse = (error: unknown) => new LatticeError('INVALID_ARGUMENT', `${file} is not valid ${input.client === 'codex' ? 'TOML' : 'JSON'} (${describeError(error)}); fix or move it, nothing was written`);
  let text: string;
  if (input.client === 'codex') {
    let config: Record<string, unknown>;
    try {
      config = existing === null ? {} : parseToml(existing);
    } catch (error) {
      throw refuse(error);
    }
    const servers = objectAt(config, 'mcp_servers', file);
    servers['lattice'] = remote === null ? { command, args } : { url: remote.url, http_headers: remote.headers };
    text = stringifyToml(config) + '\n';
  } else {
    let config: Record<string, unknown>;
    try {
      const parsed: unknown = existing === null || existing.trim() === '' ? {} : JSON.parse(existing);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level is not an object');
      config = parsed as Record<string, unknown>;
    } catch (error) {
      throw refuse(error);
    }
    if (input.client === 'opencode') {
      config['$schema'] ??= 'https://opencode.ai/config.json';
      objectAt(config, 'mcp', file)['lattice'] = remote === null ? { type: 'local', command: [command, ...args], enabled: true } : { type: 'remote', ...remote, enabled: true };
    } else if (remote === null) {
      objectAt(config, 'mcpServers', file)['lattice'] = { type: 'stdio', command, args };
    } else {
      objectAt(config, 'mcpServers', file)['lattice'] = input.client === 'claude-code' ? { type: 'http', ...remote } : { ...remote };
    }
    text = `${JSON.stringify(config, null, 2)}\n`;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, text, 0o600);
  return { file, client: input.client, scope: input.scope, command: [command, ...args] };
}

function objectAt(config: Record<string, unknown>, key: string, file: string): Record<string, unknown> {
  const value = config[key] ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LatticeError('INVALID_ARGUMENT', `${file}: ${key} is not a table of servers; fix it, nothing was written`);
  config[key] = value;
  return value as Record<string, unknown>;
}
