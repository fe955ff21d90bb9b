/**
 * `lattice mcp install`: writes the lattice MCP server into an MCP client's configuration (mcp/client-config.ts says
 * where), merged with what is there.
 *
 * The file is read and replaced through a DirHandle (core/dir-handle.ts): the existing file must be a regular file of
 * at most MAX_CONFIG_BYTES, and the new one goes to a temp file with an unpredictable name, created O_EXCL|O_NOFOLLOW,
 * renamed over the old. In a project directory, which an agent may have written, a symlink anywhere below the
 * directory is refused; in the user's own home, links are the user's (dotfile managers make them) and are followed.
 */
import { dirname, join, posix } from 'node:path';
import { DirHandle, type Links } from '../core/dir-handle.ts';
import { LatticeError } from '../core/errors.ts';
import { selfCommand } from '../core/runtime.ts';
import { MAX_CONFIG_BYTES, configPath, withLatticeServer, type LatticeServer, type McpClient } from './client-config.ts';

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

export function installMcp(input: InstallInput): { file: string; client: McpClient; scope: string; command: string[] } {
  if (input.scope === 'user' && input.home === '') throw new LatticeError('INVALID_ARGUMENT', 'HOME is not set; use --scope project');
  const base = input.scope === 'project' ? input.projectDir : input.home;
  const links: Links = input.scope === 'project' ? 'refuse' : 'follow';
  const serve = input.http === undefined ? [] : ['--http', input.http.listen, '--token-file', input.http.tokenFile];
  const command = [...(input.command ?? selfCommand()), 'mcp', '--credential', input.credential, ...serve];
  const server: LatticeServer = input.http === undefined ? { command } : { url: `http://${input.http.listen}/mcp`, headers: { Authorization: `Bearer ${input.http.token}` } };
  const relative = configPath(input.client, input.scope);
  const dir = DirHandle.open(base, links);
  try {
    writeMcpConfig(dir, relative, input.client, server, input.scope === 'project' ? 0o755 : 0o700);
  } finally {
    dir.close();
  }
  return { file: join(base, relative), client: input.client, scope: input.scope, command };
}

/**
 * Merges the lattice server's entry into the configuration at `relative` beneath `base` and writes it back; missing
 * directories on the way are made with `dirMode`. Also used for the sandbox's private home.
 */
export function writeMcpConfig(base: DirHandle, relative: string, client: McpClient, server: LatticeServer, dirMode: number): void {
  const parent = dirname(relative);
  const name = posix.basename(relative);
  const dir = parent === '.' ? base : base.dir(parent, { create: true, mode: dirMode });
  try {
    const existing = dir.read(name, MAX_CONFIG_BYTES);
    dir.replace(name, withLatticeServer(client, existing === null ? null : existing.toString('utf8'), server, join(base.path, relative)), 0o600);
  } finally {
    if (dir !== base) dir.close();
  }
}
