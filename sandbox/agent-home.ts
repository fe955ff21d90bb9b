/**
 * The agent's private home, from the host: `$LATTICE_HOME/homes/<profile>`, bound read-write at $HOME inside and
 * kept across the profile's sessions, which may run at the same time. Everything in it was written by an agent, so
 * lattice treats it as hostile input. It is opened by descriptor from lattice's own `homes/` directory and never
 * entered by a path name afterwards (core/dir-handle.ts says why that is race-free against an agent working in it
 * meanwhile); a symlink anywhere lattice would create, read or write is refused with UNSAFE_PATH naming it.
 *
 * What lattice puts in it:
 *   - the profile's `home_dirs`, made one component at a time;
 *   - for the MCP clients that read their user servers from the home only, Claude Code (~/.claude.json, which it
 *     rewrites as it runs) and Cursor (~/.cursor/mcp.json): the lattice server's entry, merged into the agent's copy
 *     read through the descriptor (a regular file with one link, size-capped, parsed defensively) and written back
 *     by an O_EXCL temp file and a rename, so the agent's own edits persist.
 * What it does not: Codex and opencode get the entry from a file generated at each start into the sandbox's own
 * root (a fresh tmpfs, read-only), Codex's system layer /etc/codex/config.toml and /etc/lattice/opencode.json named
 * by OPENCODE_CONFIG; both merge it with the agent's configuration in its home, which lattice neither reads nor writes.
 */
import { join } from 'node:path';
import { DirHandle } from '../core/dir-handle.ts';
import { configPath, withLatticeServer, type McpClient } from '../mcp/client-config.ts';
import { writeMcpConfig } from '../mcp/install.ts';

export interface PrivateHome {
  /** Its host path, for the plan's bind (its parents are lattice's own directories, which no agent sees). */
  readonly path: string;
  readonly dir: DirHandle;
}

/** Opens (making them 0700 as needed) `<root>/homes` and `<root>/homes/<profile>`, then the profile's home_dirs. */
export function openPrivateHome(root: string, profile: string, homeDirs: readonly string[]): PrivateHome {
  const state = DirHandle.open(root, 'refuse');
  let homes: DirHandle | undefined;
  let home: DirHandle | undefined;
  try {
    homes = state.dir('homes', { create: true, mode: 0o700 });
    homes.makePrivate();
    home = homes.dir(profile, { create: true, mode: 0o700 });
    home.makePrivate();
    for (const d of homeDirs) home.dir(d, { create: true, mode: 0o700 }).close();
    return { path: join(root, 'homes', profile), dir: home };
  } catch (error) {
    home?.close();
    throw error;
  } finally {
    homes?.close();
    state.close();
  }
}

/** How the lattice MCP server reaches an agent's client: files in the sandbox's root and variables, or its home. */
export interface McpWiring {
  /** Files generated into the sandbox's root (absolute paths inside). */
  readonly files: readonly { readonly path: string; readonly content: string }[];
  readonly env: Readonly<Record<string, string>>;
  /** The configuration in the private home to merge the entry into (relative), or null. */
  readonly homeConfig: string | null;
}

export function mcpWiring(client: McpClient, command: readonly string[]): McpWiring {
  switch (client) {
    case 'codex':
      return { files: [{ path: '/etc/codex/config.toml', content: withLatticeServer(client, null, { command }, '/etc/codex/config.toml') }], env: {}, homeConfig: null };
    case 'opencode': {
      const path = '/etc/lattice/opencode.json';
      return { files: [{ path, content: withLatticeServer(client, null, { command }, path) }], env: { OPENCODE_CONFIG: path }, homeConfig: null };
    }
    case 'claude-code':
    case 'cursor':
      return { files: [], env: {}, homeConfig: configPath(client, 'user') };
  }
}

/** Merges the entry into the home's configuration, for the clients that read it there. */
export function writeHomeMcpConfig(home: PrivateHome, client: McpClient, wiring: McpWiring, command: readonly string[]): void {
  if (wiring.homeConfig !== null) writeMcpConfig(home.dir, wiring.homeConfig, client, { command }, 0o700);
}
