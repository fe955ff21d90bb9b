/**
 * Which host directories the agent may be given to write (the workspace, `--rw-mount` paths), and which directories
 * are covered inside the sandbox wherever a bind would show them.
 *
 * The rule (SECURITY.md, "What the agent may write"): a writable tree may not be `/`, a system directory (including
 * `/var/lib`, `/var/spool`, `/var/mail`), lie inside one or hold one; may not be a directory that holds everyone's
 * files (`/tmp`, `/var/tmp`, `/home`…); may not be your home directory or hold it (a project inside it, ~/src/app,
 * is fine); as root, may not lie in another user's home; and may not be, hold or lie inside
 *  - what runs on your host after the session: the lattice install (the checkout, the npm package and the
 *    node_modules it loads from, the binary's directory) and the Node install running lattice;
 *  - lattice's own directories: `$LATTICE_HOME` (the ledger, the keys, `run/` with the admin socket), the asset cache;
 *  - your private directories: `~/.ssh`, `~/.gnupg`, `~/.docker`, `$XDG_RUNTIME_DIR`, `/run/user/<uid>` (keys,
 *    agent and daemon sockets).
 * A read-only mount may not lie inside lattice's or your private directories; one that is or holds them gets them
 * covered by an empty read-only directory, because a read-only bind does not stop connect() on a socket in it.
 *
 * Fail closed: a path that breaks the rule is refused with the rule it breaks, before anything starts.
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { cacheRoot, inBinary, selfRoot } from '../core/runtime.ts';

export interface HostDirs {
  /** Your home directory (real path). */
  readonly home: string;
  /** lattice's directories (real paths): `$LATTICE_HOME`, the asset cache. */
  readonly lattice: readonly string[];
  /** What runs lattice on the host (real paths): its install, the node_modules it loads from, the Node install. */
  readonly installs: readonly string[];
  /** Your directories of keys and sockets (real paths): ~/.ssh, ~/.gnupg, ~/.docker, the runtime directories. */
  readonly private: readonly string[];
  /** `$XDG_RUNTIME_DIR` (real path), when set. */
  readonly runtime: string | null;
  /** lattice runs as root: what the agent writes is root's, so other users' homes are refused too. */
  readonly root: boolean;
}

/** System directories: never writable, nor anything inside them or holding them. */
const SYSTEM = [
  '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/boot', '/dev', '/proc', '/sys', '/run',
  '/var/lib', '/var/spool', '/var/mail', '/var/cache', '/var/log', '/var/backups',
] as const;
/** Directories that hold everyone's files: never writable themselves (a project inside them is fine). */
const SHARED = ['/', '/tmp', '/var', '/var/tmp', '/opt', '/home', '/srv', '/mnt', '/media'] as const;
/** Where users' homes are: as root, a writable tree in one that is not yours is refused. */
const HOMES = ['/home', '/root'] as const;

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path); // not there (yet): the rule applies to where it would be
  }
}

export function hostDirs(latticeHome: string, env: NodeJS.ProcessEnv, uid = process.getuid?.() ?? -1): HostDirs {
  const runtime = env['XDG_RUNTIME_DIR'];
  const home = real(env['HOME'] ?? homedir());
  const runtimeDir = runtime === undefined || runtime === '' ? null : real(runtime);
  return {
    home,
    lattice: [real(latticeHome), real(cacheRoot())],
    installs: installs(home),
    private: [...['.ssh', '.gnupg', '.docker'].map((d) => real(join(home, d))), ...(runtimeDir === null ? [] : [runtimeDir]), real(`/run/user/${uid}`)],
    runtime: runtimeDir,
    root: uid === 0,
  };
}

/**
 * The lattice install and the Node install: the agent must not change what the host runs next. A directory that
 * holds more than the install (lattice's binary in ~ or /tmp, node in ~/bin) is narrowed to the executable itself.
 */
function installs(home: string): string[] {
  const exe = real(process.execPath);
  const self = real(selfRoot());
  const out = inBinary() ? [narrow(self, exe, home)] : [self, narrow(dirname(dirname(exe)), exe, home)];
  if (!inBinary()) {
    // lattice loads its dependencies from its own node_modules (in a checkout, often a link elsewhere) and, as an npm
    // package, from the node_modules holding it (where npm hoists them).
    out.push(real(join(self, 'node_modules')));
    if (basename(dirname(self)) === 'node_modules') out.push(dirname(self));
  }
  return [...new Set(out)];
}

function narrow(dir: string, exe: string, home: string): string {
  return (SHARED as readonly string[]).includes(dir) || within(home, dir) ? exe : dir;
}

/** `path` is `dir` or lies inside it. */
export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** `is`, `lies inside` or `holds`, when `path` and `dir` overlap; null when they do not. */
function overlap(path: string, dir: string): string | null {
  if (path === dir) return `it is ${dir}`;
  if (within(path, dir)) return `it lies inside ${dir}`;
  return within(dir, path) ? `it holds ${dir}` : null;
}

/** Why the agent may not be given `path` (a real path) to write, or null when it may. */
export function writableRefusal(path: string, dirs: HostDirs): string | null {
  const named: [readonly string[], string][] = [
    [dirs.lattice, "lattice's own directory (the ledger, the keys, the admin socket)"],
    [dirs.runtime === null ? [] : [dirs.runtime], "your runtime directory (your sessions' sockets)"],
    [dirs.installs, 'the lattice or Node install that runs on your host (the agent could rewrite lattice itself)'],
    [dirs.private, 'your private directory (keys, agent and daemon sockets)'],
  ];
  for (const [list, what] of named) {
    for (const dir of list) {
      const how = overlap(path, dir);
      if (how !== null) return `${how}, ${what}`;
    }
  }
  if (path === dirs.home) return 'it is your home directory (the agent could change your shell\'s startup files and your tools\' settings)';
  if (within(dirs.home, path)) return `it holds your home directory ${dirs.home}`;
  for (const dir of SYSTEM) {
    if (within(path, dir)) return `it lies inside ${dir}, a system directory`;
    if (within(dir, path)) return `it holds ${dir}, a system directory`;
  }
  if ((SHARED as readonly string[]).includes(path)) return `${path} holds everyone's files`;
  const other = dirs.root ? HOMES.find((h) => within(path, h) && !within(path, dirs.home)) : undefined;
  if (other !== undefined) return `it lies in another user's home under ${other} (as root, what the agent writes there would be root's)`;
  return null;
}

/** Why `path` (a real path) may not be mounted read-only, or null when it may. */
export function readableRefusal(path: string, dirs: HostDirs): string | null {
  const lattice = dirs.lattice.find((d) => within(path, d) && path !== d);
  if (lattice !== undefined) return `it lies inside ${lattice}, lattice's own directory`;
  const own = dirs.private.find((d) => within(path, d) && path !== d);
  return own === undefined ? null : `it lies inside ${own}, your private directory (keys, agent and daemon sockets)`;
}

/** Where lattice's and your private directories appear inside a bind of `src` at `dst` (each is masked there). */
export function hiddenDirsInside(src: string, dst: string, dirs: HostDirs): string[] {
  return [...dirs.lattice, ...dirs.private].filter((d) => within(d, src)).map((d) => join(dst, d.slice(src.length)));
}
