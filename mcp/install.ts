/**
 * `lattice mcp install`: writes the lattice MCP server into an MCP client's configuration (mcp/client-config.ts says
 * where), merged with what is there, in one of three forms:
 *
 *   portable  `lattice mcp`, found on PATH, with the credential from $LATTICE_CREDENTIAL: nothing of this machine in
 *             it, so a project's file can be shared with the team (Claude Code's `.mcp.json` is meant to be checked
 *             in). The default for --scope project; written 0644 there, as it holds no secret.
 *   absolute  this machine's lattice and credential paths. The default for --scope user; written 0600.
 *   http      the URL of `lattice mcp --http` and its bearer secret; written 0600, as it holds the secret.
 *
 * Not `npx lattice`: lattice is installed from its clone, not from the npm registry, so in a project without it npx
 * would fetch and run whatever the registry's package called `lattice` is.
 *
 * The file is read and replaced through a DirHandle (core/dir-handle.ts): the existing file must be a regular file of
 * at most MAX_CONFIG_BYTES, and the new one goes to a temp file with an unpredictable name, created O_EXCL|O_NOFOLLOW,
 * renamed over the old. In a project directory, which an agent may have written, a symlink anywhere below the
 * directory is refused; in the user's own home, links are the user's (dotfile managers make them) and are followed.
 * A replaced file never gets group or other permissions it did not have: what else it holds may be private.
 */
import { dirname, join, posix } from 'node:path';
import { DirHandle, type Links } from '../core/dir-handle.ts';
import { LatticeError } from '../core/errors.ts';
import { selfCommand } from '../core/runtime.ts';
import { MAX_CONFIG_BYTES, configPath, withLatticeServer, type LatticeServer, type McpClient } from './client-config.ts';

/** The portable entry: the command on PATH, and the variable naming the credential (cli/agent.ts reads it). */
export const PORTABLE_COMMAND: readonly string[] = ['lattice', 'mcp'];
export const CREDENTIAL_VARIABLE = 'LATTICE_CREDENTIAL';

export type InstallForm = 'portable' | 'absolute' | 'http';

export interface InstallInput {
  readonly client: McpClient;
  readonly scope: 'user' | 'project';
  /** Absolute path of the agent's credential file; required unless the form is portable, which never names it. */
  readonly credential?: string;
  /** The portable form (default: for project scope, unless `http`). */
  readonly portable?: boolean;
  readonly projectDir: string;
  readonly home: string;
  /** How to start lattice in the absolute form (default: this process's own command). */
  readonly command?: readonly string[];
  /** Connect to `lattice mcp --http` on `listen` (loopback HOST:PORT) with the bearer secret in `tokenFile`. */
  readonly http?: { readonly listen: string; readonly tokenFile: string; readonly token: string };
}

export interface Installed {
  readonly file: string;
  readonly client: McpClient;
  readonly scope: string;
  readonly form: InstallForm;
  /** The file's permission bits as written (umask applied), e.g. '0644'. */
  readonly mode: string;
  /** The command that starts the server: what the client runs (portable, absolute), or what to run for it (http). */
  readonly command: string[];
}

export function installMcp(input: InstallInput): Installed {
  if (input.scope === 'user' && input.home === '') throw new LatticeError('INVALID_ARGUMENT', 'HOME is not set; use --scope project');
  const form: InstallForm = input.http !== undefined ? 'http' : (input.portable ?? input.scope === 'project') ? 'portable' : 'absolute';
  if (form === 'http' && input.portable === true) throw new LatticeError('INVALID_ARGUMENT', 'the --http form holds a bearer secret and is never portable; drop --portable, or drop --http for the portable stdio form');
  const { server, command } = entryFor(form, input);
  const base = input.scope === 'project' ? input.projectDir : input.home;
  const links: Links = input.scope === 'project' ? 'refuse' : 'follow';
  // Only the portable form in a project is meant for others to read; anything else names this machine or a secret.
  const fileMode = form === 'portable' && input.scope === 'project' ? 0o644 : 0o600;
  const relative = configPath(input.client, input.scope);
  const dir = DirHandle.open(base, links);
  let mode: number;
  try {
    mode = writeMcpConfig(dir, relative, input.client, server, input.scope === 'project' ? 0o755 : 0o700, fileMode);
  } finally {
    dir.close();
  }
  return { file: join(base, relative), client: input.client, scope: input.scope, form, mode: `0${mode.toString(8)}`, command };
}

/** What the client is given, and the command that starts the server. */
function entryFor(form: InstallForm, input: InstallInput): { server: LatticeServer; command: string[] } {
  if (form === 'portable') return { server: { command: PORTABLE_COMMAND, passEnv: [CREDENTIAL_VARIABLE] }, command: [...PORTABLE_COMMAND] };
  if (input.credential === undefined) throw new LatticeError('INVALID_ARGUMENT', `pass --credential FILE or set ${CREDENTIAL_VARIABLE} (made by \`lattice enroll\`)`);
  const serve = input.http === undefined ? [] : ['--http', input.http.listen, '--token-file', input.http.tokenFile];
  const command = [...(input.command ?? selfCommand()), 'mcp', '--credential', input.credential, ...serve];
  if (input.http === undefined) return { server: { command }, command };
  return { server: { url: `http://${input.http.listen}/mcp`, headers: { Authorization: `Bearer ${input.http.token}` } }, command };
}

/**
 * Merges the lattice server's entry into the configuration at `relative` beneath `base` and writes it back with
 * `fileMode`, less any group or other permission an existing file did not have; missing directories on the way are
 * made with `dirMode`. Answers the permission bits the file has now. Also used for the sandbox's private home.
 */
export function writeMcpConfig(base: DirHandle, relative: string, client: McpClient, server: LatticeServer, dirMode: number, fileMode = 0o600): number {
  const parent = dirname(relative);
  const name = posix.basename(relative);
  const dir = parent === '.' ? base : base.dir(parent, { create: true, mode: dirMode });
  try {
    const existing = dir.read(name, MAX_CONFIG_BYTES);
    const had = existing === null ? null : dir.permissions(name);
    const mode = had === null ? fileMode : fileMode & (had | 0o700);
    dir.replace(name, withLatticeServer(client, existing === null ? null : existing.toString('utf8'), server, join(base.path, relative)), mode);
    const now = dir.permissions(name);
    if (now === null) throw new LatticeError('IO_ERROR', `${join(base.path, relative)} is gone right after it was written; run the install again`);
    return now;
  } finally {
    if (dir !== base) dir.close();
  }
}
