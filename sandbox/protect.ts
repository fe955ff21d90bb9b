/**
 * What in the workspace the agent may not change, as plan operations for the helper (sandbox/helper/root.c).
 *
 * Tools on the host run or load some workspace files: git its repository's configuration and hooks and the files
 * that send it elsewhere for them; shells their rc files; editors and agent CLIs their project settings and MCP
 * servers. An agent that changes them gets the host to run its commands after the session. The profile's
 * `protect` list names them (profiles/default.toml); each is bound read-only where it is. `.git` has its own rule
 * (GIT_WRITABLE, GIT_MASKED).
 *
 * Nothing here looks at the workspace (it is the agent's, and may change at any moment): the helper opens each
 * path from the workspace's mount one component at a time, refusing any link, so what it protects is inside the
 * workspace whatever an agent of this, an earlier or a concurrent session made of it. A link on the way refuses
 * the run, naming it. A protected path that is absent at the start stays absent and unprotected, but for the
 * GIT_MASKED names in an existing `.git` (see SECURITY.md, "Protected paths").
 */
import { posix } from 'node:path';
import type { FsOp } from './plan.ts';
import type { Repositories } from './repos.ts';

/**
 * What stays writable in a repository's `.git`: what git writes while it commits, fetches, merges and bisects
 * (objects, refs, the index, logs and state files), and git-lfs's object store. Everything else that is there at the
 * start is bound read-only, the state of a cherry-pick, revert or rebase in progress included (its options and todo
 * list name commands `--continue` runs); what the agent writes here is checked when the session ends
 * (sandbox/git-state.ts).
 */
export const GIT_WRITABLE = [
  'objects', 'refs', 'logs', 'index', 'HEAD', 'ORIG_HEAD', 'FETCH_HEAD', 'packed-refs', 'shallow', 'COMMIT_EDITMSG',
  'TAG_EDITMSG', 'SQUASH_MSG', 'NOTES_EDITMSG', 'MERGE_HEAD', 'MERGE_MSG', 'MERGE_MODE', 'MERGE_RR', 'MERGE_AUTOSTASH',
  'AUTO_MERGE', 'CHERRY_PICK_HEAD', 'REVERT_HEAD', 'REBASE_HEAD', 'rr-cache',
  'BISECT_LOG', 'BISECT_START', 'BISECT_TERMS', 'BISECT_NAMES', 'BISECT_EXPECTED_REV', 'BISECT_ANCESTORS_OK', 'BISECT_RUN',
  'BISECT_FIRST_PARENT', 'BISECT_HEAD', 'gc.pid', 'gc.log', 'lfs',
] as const;

/**
 * Names in `.git` through which git runs commands or reads its configuration from elsewhere. When `.git` is a
 * directory they are made if absent, so that they exist to be bound read-only and the agent cannot create them:
 * the kernel can only protect a name that exists. Each placeholder is what git treats as absent or empty.
 */
export const GIT_MASKED: readonly { readonly name: string; readonly type: 'dir' | 'file'; readonly content: string }[] = [
  { name: 'config', type: 'file', content: '' },
  { name: 'config.worktree', type: 'file', content: '' },
  // The repository's common directory (config, hooks, objects, refs): "." is .git itself, which is what git uses
  // when the file is absent (an empty file would stop git with "failed to read .git/commondir").
  { name: 'commondir', type: 'file', content: '.\n' },
  { name: 'hooks', type: 'dir', content: '' },
  { name: 'info', type: 'dir', content: '' },
  { name: 'modules', type: 'dir', content: '' },
  { name: 'worktrees', type: 'dir', content: '' },
];

/**
 * The ops that protect `paths` (the profile's list, relative to the workspace) inside `workspace` (its real path).
 * When `.git` is listed, every repository found in the workspace (sandbox/repos.ts) is protected the same way, and
 * so is what their configuration includes or takes hooks from there (`configured`, sandbox/git-config.ts); the
 * repositories' ops come first (a protected directory bound later covers a repository inside it, whole).
 */
export function protectOps(workspace: string, paths: readonly string[], repos: Repositories, configured: readonly string[]): FsOp[] {
  const unique = [...new Set(paths.map((p) => posix.normalize(p).replace(/\/+$/, '')))];
  const git = unique.includes('.git')
    ? [
        ...repos.gitfiles.map((path): FsOp => ({ op: 'protect', workspace, path })),
        ...repos.gitdirs.map((path): FsOp => ({ op: 'repo', workspace, path, writable: GIT_WRITABLE, masked: GIT_MASKED })),
        ...configured.map((path): FsOp => ({ op: 'protect', workspace, path })),
      ]
    : [];
  return [...git, ...unique.filter((p) => p !== '.git').map((path): FsOp => ({ op: 'protect', workspace, path }))];
}
