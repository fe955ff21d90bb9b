/**
 * The repositories in a workspace, for the helper to protect (sandbox/protect.ts): the workspace's `.git` and those
 * nested in it up to NESTED_DEPTH directories down (vendored clones, old-style submodules, a bare repository), and
 * the directory a `.git` file names when it lies in the workspace (the bare-repository-plus-worktrees layout,
 * `gitdir: ./.bare`). Git on the host runs each one's configuration and hooks when you run it there.
 *
 * The workspace is the agent's: it is walked by descriptor (core/dir-handle.ts), no link is followed, and what is
 * found is only a list of names; the helper opens each again one component at a time, refusing a link. A
 * repository deeper than NESTED_DEPTH, or made after this walk, is not protected (SECURITY.md says so).
 *
 * Fails closed: a `.git` file naming a directory outside the workspace that the agent can write through another
 * mount (its private home, a --rw-mount) cannot be protected, and refuses the run.
 *
 * Each checkout (where git runs: a `.git` directory's or file's directory, a bare repository) is listed with its
 * gitdir, wherever that lies, for sandbox/git-config.ts to read what the configuration sends git to.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { DirHandle } from '../core/dir-handle.ts';
import { LatticeError } from '../core/errors.ts';
import { GIT_WRITABLE } from './protect.ts';

/** How many directories below the workspace a nested repository is looked for (`a/b/c/.git` at most). */
export const NESTED_DEPTH = 3;

export interface Repositories {
  /** Gitdirs relative to the workspace, outermost first: `.git`, `app/.git`, `.bare`. */
  readonly gitdirs: readonly string[];
  /** `.git` files relative to the workspace (bound read-only). */
  readonly gitfiles: readonly string[];
  /** Where git runs (hooks run there), relative to the workspace ('' for its top), and its gitdir's absolute path. */
  readonly checkouts: readonly Checkout[];
}

export interface Checkout {
  readonly top: string;
  readonly gitdir: string;
}

/** Finds the repositories in `workspace` (its real path); `writable` are the other trees the agent may write. */
export function findRepositories(workspace: string, writable: readonly string[]): Repositories {
  const gitdirs = new Set<string>();
  const gitfiles: string[] = [];
  const checkouts: Checkout[] = [];
  const bare: Checkout[] = [];
  const ws = DirHandle.open(workspace, 'refuse');
  const visit = (dir: DirHandle, rel: string, depth: number) => {
    const names = dir.names();
    const kind = dir.kind('.git');
    // A link (or anything else) is listed too: the helper refuses the run over it, naming it.
    if (kind === 'dir' || kind === 'link' || kind === 'other') {
      gitdirs.add(join(rel, '.git'));
      if (kind === 'dir') checkouts.push({ top: rel, gitdir: resolve(workspace, rel, '.git') });
    } else if (kind === 'file') {
      gitfiles.push(join(rel, '.git'));
      const target = gitdirOf(dir, workspace, rel, writable);
      if (target !== null) checkouts.push({ top: rel, gitdir: target });
      const inside = target === null ? null : insideOf(workspace, target);
      if (inside !== null) gitdirs.add(inside);
    } else if (rel !== '' && names.includes('HEAD') && dir.kind('objects') === 'dir' && dir.kind('refs') === 'dir') {
      gitdirs.add(rel); // a bare repository: git run inside it uses it
      bare.push({ top: rel, gitdir: resolve(workspace, rel) });
      return;
    }
    if (depth === NESTED_DEPTH) return;
    for (const name of names) {
      if (name === '.git' || dir.kind(name) !== 'dir') continue;
      const sub = dir.dir(name, { create: false });
      if (sub === null) continue; // removed meanwhile
      try {
        visit(sub, join(rel, name), depth + 1);
      } finally {
        sub.close();
      }
    }
  };
  try {
    visit(ws, '', 0);
  } finally {
    ws.close();
  }
  // A bare repository a .git file names (`.bare`) is that checkout's: git runs in the worktree, not in it.
  const named = bare.filter((b) => !checkouts.some((c) => c.gitdir === b.gitdir));
  return { gitdirs: outermostFirst([...gitdirs]), gitfiles, checkouts: [...checkouts, ...named].sort((a, b) => a.top.localeCompare(b.top)) };
}

/** `path` relative to the workspace ('' for the workspace itself), or null when it lies outside. */
export function insideOf(workspace: string, path: string): string | null {
  const rel = relative(workspace, path);
  return rel === '..' || rel.startsWith('../') || isAbsolute(rel) ? null : rel;
}

function join(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

/**
 * The gitdir a `.git` file in `dir` names (an absolute path, inside the workspace or not); null when the file is not
 * a gitfile (git refuses it too) or names the workspace itself.
 */
function gitdirOf(dir: DirHandle, workspace: string, rel: string, writable: readonly string[]): string | null {
  const text = dir.read('.git', 4096)?.toString('utf8') ?? '';
  const match = /^gitdir: (.+?)\r?\n?$/.exec(text.split('\n')[0] ?? '');
  if (match?.[1] === undefined) return null;
  const target = resolve(workspace, rel, match[1]);
  const inside = insideOf(workspace, target);
  if (inside === '') return null;
  if (inside !== null) return target;
  const reachable = writable.find((w) => target === w || target.startsWith(`${w}/`));
  if (reachable !== undefined) {
    throw new LatticeError('UNSAFE_PATH', `${workspace}/${join(rel, '.git')} names the repository ${target}, which the agent could change through ${reachable} (its configuration and hooks run when you use git there); lattice cannot protect it there: do not mount ${reachable} writable, or use a workspace whose repository lies inside it`);
  }
  return target;
}

/**
 * Each gitdir after those it lies in (a repository's own mounts are made before one inside it), leaving out one
 * inside another's read-only part (a submodule's `.git/modules/x`, a worktree's `.bare/worktrees/x`): read-only
 * already, whole.
 */
function outermostFirst(gitdirs: string[]): string[] {
  const sorted = gitdirs.sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
  return sorted.filter((g) => !sorted.some((outer) => {
    if (!g.startsWith(`${outer}/`)) return false;
    const below = g.slice(outer.length + 1).split('/')[0] ?? '';
    return !(GIT_WRITABLE as readonly string[]).includes(below);
  }));
}
