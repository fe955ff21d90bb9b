/**
 * What a repository's configuration sends git on the host to in the workspace: the files it includes
 * (`include.path`, and `includeIf.<condition>.path` whatever the condition: lattice does not evaluate it), the files
 * those include in turn, and the hooks directory (`core.hooksPath`). Git reads and runs them as it reads and runs
 * `.git/config` and `.git/hooks`, so a writable one would be the agent's: a `core.fsmonitor` it appends to an
 * included file runs at your next `git status`. Each one in the workspace is bound read-only (sandbox/protect.ts).
 *
 * Every checkout's configuration is read (sandbox/repos.ts lists them, a linked worktree's among them, whose
 * configuration lies outside the workspace and may still name a file inside it), on the host, before the session:
 * the file's bytes, opened by descriptor without following a link when it lies in the workspace
 * (core/dir-handle.ts), parsed by git itself from its standard input (`git config --file - --get-regexp`), which
 * reads that one file, follows no include and runs nothing. Git is the parser because git is what reads these files
 * on the host: quoting, escapes, continuation lines and case are read exactly as it reads them. Paths are resolved
 * as git resolves them (`~/` from your HOME; an include relative to the file it is in; a hooks directory relative
 * to where hooks run, the checkout's top or a bare repository itself), one component at a time, as the kernel
 * would: no `..` is taken before the link it may follow is.
 *
 * Fails closed, naming the setting and the file: a target in the workspace that is a symbolic link, lies through
 * one, is absent (the agent could create it; UNSAFE_PATH) or is the workspace itself; a target the agent could
 * change through its private home or a --rw-mount; a configuration git cannot parse (IO_ERROR); a `~user/` path
 * other than your own; no git to parse a configuration that has an include or a hooks directory
 * (SANDBOX_UNAVAILABLE).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { DirHandle } from '../core/dir-handle.ts';
import { LatticeError, describeError } from '../core/errors.ts';
import { type Checkout, insideOf } from './repos.ts';

/** Git's own limit (config.c, MAX_INCLUDE_DEPTH): an include deeper than this stops git with an error, unread. */
export const MAX_INCLUDE_DEPTH = 10;
const MAX_CONFIG_BYTES = 1 << 20;
/** The settings read, as git names them (section and key lower-cased, the condition as written). */
const SETTINGS = '^(include|includeif\\..*)\\.path$|^core\\.hookspath$';

interface Context {
  /** The workspace's real path. */
  readonly workspace: string;
  /** What the agent may write besides the workspace (real paths). */
  readonly writable: readonly string[];
  /** Your HOME, for `~/`. */
  readonly home: string | undefined;
}

/** Where a path leads: its real path, relative to the workspace when it lies there, and what it is (null: absent). */
interface Target {
  readonly path: string;
  readonly inside: string | null;
  readonly kind: 'dir' | 'file' | 'other' | null;
}

/**
 * The workspace paths (relative to `workspace`, its real path) that the configuration of `checkouts` includes or
 * takes hooks from, to be protected; `writable` are the other trees the agent may write, `home` your HOME.
 */
export function configuredPaths(workspace: string, checkouts: readonly Checkout[], writable: readonly string[], home: string | undefined): string[] {
  const ctx: Context = { workspace, writable, home };
  const found = new Set<string>();
  for (const checkout of checkouts) {
    const top = join(workspace, checkout.top); // where hooks run: a bare repository's top is the repository
    const gitdir = locate(ctx, '/', checkout.gitdir, `the repository of ${join(top, '.git')}`);
    if (gitdir === null || gitdir.kind !== 'dir') continue; // git finds no repository there: nothing is read
    // A linked worktree's gitdir names the repository whose configuration it shares (absent: its own).
    const commondirFile = locate(ctx, gitdir.path, 'commondir', `${gitdir.path}/commondir`);
    const commondir = commondirFile?.kind === 'file' ? readTarget(ctx, commondirFile).toString('utf8').replace(/[\r\n]+$/, '') : '.';
    const common = locate(ctx, gitdir.path, commondir, `${gitdir.path}/commondir`);
    const seen = new Map<string, number>();
    const visit = (file: Target, depth: number) => {
      if (file.kind !== 'file' || (seen.get(file.path) ?? Infinity) <= depth) return;
      seen.set(file.path, depth);
      for (const { key, value } of settingsOf(readTarget(ctx, file), file.path)) {
        const setting = `${key} = ${value} in ${file.path}`;
        const hooks = key === 'core.hookspath';
        if (!hooks && depth === MAX_INCLUDE_DEPTH) continue; // git stops with an error before it reads this one
        const target = locate(ctx, hooks ? top : dirname(file.path), value, setting);
        if (target === null) continue;
        if (target.inside !== null) found.add(protectable(ctx, target, setting, hooks));
        if (!hooks) visit(target, depth + 1);
      }
    };
    if (common !== null) visit(configAt(ctx, common, 'config'), 0);
    visit(configAt(ctx, gitdir, 'config.worktree'), 0);
  }
  return [...found].sort();
}

function configAt(ctx: Context, dir: Target, name: string): Target {
  return locate(ctx, dir.path, name, join(dir.path, name)) ?? { path: join(dir.path, name), inside: null, kind: null };
}

/** A target in the workspace, as the path to protect: refused when absent (the agent could create it) or the workspace. */
function protectable(ctx: Context, target: Target, setting: string, hooks: boolean): string {
  const what = hooks ? 'its hooks directory, whose hooks git runs' : 'a file it includes, whose settings git runs';
  if (target.inside === '') {
    throw new LatticeError('UNSAFE_PATH', `the repository's configuration (${setting}) names the workspace ${ctx.workspace} itself as ${what}; lattice cannot keep the whole workspace from the agent: point it into a directory of its own`);
  }
  if (target.kind === null) {
    throw new LatticeError('UNSAFE_PATH', `the repository's configuration (${setting}) names ${target.path} as ${what}, and it does not exist: the agent could create it, and the kernel can only protect a name that exists; create it (${hooks ? 'an empty directory' : 'an empty file'} will do) or remove the setting, then start the session again`);
  }
  return target.inside ?? '';
}

/**
 * Where `value` leads from the directory `base` (a real path), component by component as the kernel resolves it:
 * null when it leads nowhere outside the workspace (git finds nothing there, and the agent cannot make it). A link
 * in the workspace on the way, or any step into what the agent may write elsewhere, refuses the run: the agent
 * could point it anywhere later.
 */
function locate(ctx: Context, base: string, value: string, setting: string): Target | null {
  let path = base;
  let rest = value;
  if (value === '~' || value.startsWith('~/')) {
    if (ctx.home === undefined || !isAbsolute(ctx.home)) throw new LatticeError('UNSAFE_PATH', `${setting} starts with ~, and HOME is not set to an absolute path; set HOME, or write the path out`);
    path = '/';
    rest = join(ctx.home, value.slice(1));
  } else if (value.startsWith('~')) {
    const user = value.slice(1).split('/')[0] ?? '';
    if (user !== userInfo().username || ctx.home === undefined) throw new LatticeError('UNSAFE_PATH', `${setting} names the home of ${user}, which lattice does not look up; write the path out`);
    path = '/';
    rest = join(ctx.home, value.slice(user.length + 1));
  } else if (value.startsWith('%(prefix)/')) {
    return null; // git's own installation prefix (/usr): a system directory, read-only inside
  } else if (isAbsolute(value)) {
    path = '/';
  }
  const parts = rest.split('/');
  for (const [i, part] of parts.entries()) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      path = dirname(path); // `path` is real here, so its parent is where the kernel's `..` leads
      continue;
    }
    const next = join(path, part);
    refuseWritable(ctx, next, setting);
    const inside = insideOf(ctx.workspace, next);
    const st = lstatSync(next, { throwIfNoEntry: false });
    if (st === undefined) {
      // Absent outside the workspace: git finds nothing, and the agent cannot make it. Absent in the workspace: the
      // agent could make it, and whatever a `..` after it would pass through.
      return inside === null ? null : { path: join(next, ...parts.slice(i + 1)), inside, kind: null };
    }
    if (st.isSymbolicLink()) {
      if (inside !== null) throw new LatticeError('UNSAFE_PATH', `${setting} leads through ${next}, a symbolic link in the workspace: the agent could point it anywhere, and lattice follows no link there; replace it with what it points at, or change the setting`);
      if (!existsSync(next)) return null; // a dangling link outside the workspace: git finds nothing
      path = realpathSync(next);
      refuseWritable(ctx, path, setting);
      continue;
    }
    path = next;
  }
  const st = lstatSync(path, { throwIfNoEntry: false });
  const kind = st === undefined ? null : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  return { path, inside: insideOf(ctx.workspace, path), kind };
}

function refuseWritable(ctx: Context, path: string, setting: string): void {
  const reachable = ctx.writable.find((w) => path === w || path.startsWith(`${w}/`));
  if (reachable === undefined) return;
  throw new LatticeError('UNSAFE_PATH', `${setting} leads to ${path}, which the agent could change through ${reachable}, and git on the host reads and runs what it finds there; do not mount ${reachable} writable, or change the setting`);
}

/** A regular file's bytes: in the workspace opened by descriptor, no link followed; elsewhere by its real path. */
function readTarget(ctx: Context, target: Target): Buffer {
  const inside = target.inside;
  const parent = inside === null ? DirHandle.open(dirname(target.path), 'follow') : openInside(ctx.workspace, dirname(inside));
  try {
    const data = parent.read(basename(target.path), MAX_CONFIG_BYTES);
    if (data === null) throw new LatticeError('IO_ERROR', `${target.path} disappeared while lattice read the repository's configuration; start the session again`);
    return data;
  } finally {
    parent.close();
  }
}

function openInside(workspace: string, rel: string): DirHandle {
  const ws = DirHandle.open(workspace, 'refuse');
  if (rel === '.' || rel === '') return ws;
  try {
    const dir = ws.dir(rel, { create: false });
    if (dir === null) throw new LatticeError('IO_ERROR', `${join(workspace, rel)} disappeared while lattice read the repository's configuration; start the session again`);
    return dir;
  } finally {
    ws.close();
  }
}

/**
 * The include and hooks settings of one configuration file, parsed by git. A file that cannot hold one (section and
 * key names are letters, digits and `-`, never escaped) is not handed to git at all.
 */
export function settingsOf(data: Buffer, file: string): { readonly key: string; readonly value: string }[] {
  if (!/include|hookspath/i.test(data.toString('latin1'))) return [];
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', HOME: '/nonexistent', LC_ALL: 'C' };
  const r = spawnSync('git', ['config', '--file', '-', '--no-includes', '-z', '--get-regexp', SETTINGS], { input: data, cwd: '/', env, encoding: 'utf8', timeout: 30_000, maxBuffer: 4 * MAX_CONFIG_BYTES });
  if (r.error !== undefined) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new LatticeError('SANDBOX_UNAVAILABLE', missing
      ? `${file} has include or hooks settings, and lattice reads them with git, which is not on PATH; install git (or put it on PATH)`
      : `cannot run git to read ${file}: ${describeError(r.error)}`);
  }
  if (r.status === 1) return []; // none of the settings
  if (r.status !== 0) throw new LatticeError('IO_ERROR', `git cannot read ${file} (${r.stderr.trim()}), and neither can git on the host; fix it, then start the session again`);
  return r.stdout.split('\0').flatMap((record) => {
    const at = record.indexOf('\n');
    // A key without a value (`path` alone) includes nothing: git stops on it with an error.
    return at < 0 ? [] : [{ key: record.slice(0, at), value: record.slice(at + 1) }];
  });
}
