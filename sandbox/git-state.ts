/**
 * What an agent leaves in a workspace repository's `.git` that git on the host would follow or run, checked on the
 * host before a session starts and after it ends. The helper keeps the rest of `.git` read-only (sandbox/protect.ts);
 * this covers what stays writable there.
 *
 * The writable names (GIT_WRITABLE) hold data git reads and writes, and the agent may put anything there. Two
 * kinds of entry make git act on the host for it:
 * - a symbolic link or another non-regular file: git writes through it, outside the repository (a reflog line is
 *   appended through `logs/HEAD`, `COMMIT_EDITMSG` and `FETCH_HEAD` are overwritten through theirs);
 * - the state of an interrupted cherry-pick, revert or rebase (GIT_SEQUENCER_STATE): its options name a merge
 *   strategy and its todo list `exec` lines, which `git cherry-pick --continue` or `git rebase --continue` runs.
 *   State there at the start is bound read-only (it is yours); state the session made is the agent's.
 * Git itself writes neither links nor special files in these names, so nothing legitimate is lost.
 *
 * Fail closed, loudly: before the start a link or special file refuses the run (UNSAFE_PATH, naming it, for you to
 * remove); after the end each is removed, the sequencer state the session made is renamed out of git's way, and
 * each is reported. Everything is opened by descriptor, one name at a time (core/dir-handle.ts): the
 * agent of another session may be changing these directories meanwhile.
 */
import { randomToken } from '../core/crypto/index.ts';
import { DirHandle } from '../core/dir-handle.ts';
import { LatticeError, describeError } from '../core/errors.ts';
import { GIT_WRITABLE } from './protect.ts';

/** What git runs `--continue` from. Read-only inside when present at the start; made by the session, set aside after. */
export const GIT_SEQUENCER_STATE = ['sequencer', 'rebase-merge', 'rebase-apply'] as const;

/** The repositories checked, and which of their sequencer state was there at the start (yours, not the agent's). */
export interface GitSnapshot {
  readonly repos: readonly { readonly gitdir: string; readonly state: readonly string[] }[];
}

/**
 * Before the start: refuses a link or special file in the writable parts of each repository (`gitdirs`, relative
 * to the workspace; those that are not directories are skipped), and notes the sequencer state that is there.
 */
export function checkBeforeSession(workspace: string, gitdirs: readonly string[]): GitSnapshot {
  const repos: { gitdir: string; state: string[] }[] = [];
  eachRepo(workspace, gitdirs, (git, gitdir) => {
    const found: string[] = [];
    walkUnsafe(git, gitdir, (_dir, _name, path, what) => found.push(`${path} is ${what}`));
    if (found.length > 0) {
      const list = found.slice(0, 5).join('; ') + (found.length > 5 ? `; and ${found.length - 5} more` : '');
      throw new LatticeError('UNSAFE_PATH', `${list}, in the repository at ${workspace}/${gitdir}, where git on the host would write through it; git never makes one there, so an agent did: remove it (and check the repository), then start the session again`);
    }
    repos.push({ gitdir, state: GIT_SEQUENCER_STATE.filter((name) => git.kind(name) !== null) });
  });
  return { repos };
}

/**
 * After the end: removes each link or special file in the writable parts of the repositories, and renames the
 * sequencer state the session made out of git's way. Returns one line per thing done, for the user.
 */
export function cleanAfterSession(workspace: string, snapshot: GitSnapshot): string[] {
  const report: string[] = [];
  eachRepo(workspace, snapshot.repos.map((r) => r.gitdir), (git, gitdir) => {
    walkUnsafe(git, gitdir, (dir, name, path, what) => {
      dir.unlink(name);
      report.push(`removed ${workspace}/${path}, ${what} the agent left where git on the host would have written through it`);
    });
    const before = snapshot.repos.find((r) => r.gitdir === gitdir)?.state ?? [];
    for (const name of GIT_SEQUENCER_STATE) {
      if (before.includes(name) || git.kind(name) === null) continue;
      const aside = `${name}.from-sandbox-${randomToken(6)}`;
      git.rename(name, aside);
      report.push(`moved ${workspace}/${gitdir}/${name} to ${aside}: the agent left a cherry-pick, revert or rebase in progress, whose options and todo list name commands \`--continue\` would run on the host; read them there, then \`git cherry-pick --abort\` or \`git rebase --abort\` (or check out a branch)`);
    }
  });
  return report;
}

/** Calls `each` with every gitdir (relative to the workspace) that is a directory, opened by descriptor. */
function eachRepo(workspace: string, gitdirs: readonly string[], each: (git: DirHandle, gitdir: string) => void): void {
  const ws = DirHandle.open(workspace, 'refuse');
  try {
    for (const gitdir of gitdirs) {
      const parts = gitdir.split('/');
      const last = parts.pop() ?? '';
      const parent = parts.length === 0 ? ws : ws.dir(parts.join('/'), { create: false });
      if (parent === null) continue;
      // Absent, or a .git file: no writable parts to check.
      const git = parent.kind(last) === 'dir' ? parent.dir(last, { create: false }) : null;
      if (parent !== ws) parent.close();
      if (git === null) continue;
      try {
        each(git, gitdir);
      } finally {
        git.close();
      }
    }
  } finally {
    ws.close();
  }
}

type Found = (dir: DirHandle, name: string, path: string, what: string) => void;

/** Each link and special file at the top of `.git` and anywhere below its writable names, to `found`. */
function walkUnsafe(git: DirHandle, gitdir: string, found: Found): void {
  const visit = (dir: DirHandle, path: string, recurse: (name: string) => boolean) => {
    for (const name of dir.names()) {
      const kind = dir.kind(name);
      if (kind === 'link') found(dir, name, `${path}/${name}`, `a symbolic link to ${dir.linkTarget(name)}`);
      else if (kind === 'other') found(dir, name, `${path}/${name}`, 'a special file (FIFO, socket or device)');
      else if (kind === 'dir' && recurse(name)) {
        const sub = dir.dir(name, { create: false });
        if (sub === null) continue; // removed meanwhile
        try {
          visit(sub, `${path}/${name}`, () => true);
        } finally {
          sub.close();
        }
      }
    }
  };
  try {
    visit(git, gitdir, (name) => (GIT_WRITABLE as readonly string[]).includes(name));
  } catch (error) {
    if (error instanceof LatticeError) throw error;
    throw new LatticeError('IO_ERROR', `cannot check the repository at ${git.path}: ${describeError(error)}`, { cause: error });
  }
}
