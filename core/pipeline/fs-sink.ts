/**
 * The `[sinks.fs]` rule for one path, applied by the planner's sink check (sinks.ts) and again by the host when it
 * performs the effect (providers/effects/fs.ts). Paths come from attacker-controlled params, so anything not
 * positively allowed is refused:
 *
 * - the path must be relative, normalized (no empty, `.` or `..` segment), without NUL or backslashes;
 * - it must match an allow glob, case-sensitively (an allow must never reach a different file);
 * - it must match no deny glob. Deny globs are matched case-insensitively (`.ENV` is refused wherever `.env` is: a
 *   case-insensitive filesystem or directory opens the same file), against every leading part of the path (a
 *   denied directory denies all beneath it), and a glob without a `/` names a file or directory at any depth, as
 *   in `.gitignore` (`.env*` denies `a/b/.env.local`).
 *
 * Globs match dotfiles. Symlinks and hard links are the host's to refuse: only it sees the files on the path.
 */
import picomatch from 'picomatch';
import type { ActionManifest } from '../actions/manifest.ts';

const MAX_PATH = 4096;

/** Why `path` is refused by the manifest's fs sink, or null when it is allowed. */
export function checkFsPath(manifest: ActionManifest, path: string): string | null {
  const fs = manifest.sinks.fs;
  if (fs === null) return `${manifest.id} has no filesystem sink`;
  if (path.length === 0 || path.length > MAX_PATH) return 'the path is empty or too long';
  if (path.includes('\0') || path.includes('\\')) return 'the path contains NUL or a backslash';
  if (path.startsWith('/')) return 'absolute paths are refused; paths are relative to the root';
  const segments = path.split('/');
  if (segments.some((s) => s === '..')) return 'paths with .. are refused';
  if (segments.some((s) => s === '' || s === '.')) return 'the path is not normalized';
  if (!fs.allow.some((glob) => allowMatcher(glob)(path))) return `${path} matches none of ${manifest.id}'s allowed paths`;
  const denied = fs.deny.find((glob) => deniedBy(glob, segments));
  if (denied !== undefined) return `${path} is denied by ${JSON.stringify(denied)}`;
  return null;
}

/**
 * Whether a deny glob matches any leading part of the path. By hand because picomatch's `basename` option applies
 * to every glob, not only to those without a slash, so `a/**` would be matched against names alone.
 */
function deniedBy(glob: string, segments: readonly string[]): boolean {
  const match = denyMatcher(glob);
  if (!glob.includes('/')) return segments.some((name) => match(name));
  return segments.some((_, i) => match(segments.slice(0, i + 1).join('/')));
}

const allowMatchers = new Map<string, (path: string) => boolean>();
const denyMatchers = new Map<string, (path: string) => boolean>();

function allowMatcher(glob: string): (path: string) => boolean {
  return cached(allowMatchers, glob, false);
}

function denyMatcher(glob: string): (path: string) => boolean {
  return cached(denyMatchers, glob, true);
}

function cached(matchers: Map<string, (path: string) => boolean>, glob: string, nocase: boolean): (path: string) => boolean {
  let matcher = matchers.get(glob);
  if (matcher === undefined) {
    matcher = picomatch(glob, { dot: true, nobrace: false, noextglob: true, nocase });
    matchers.set(glob, matcher);
  }
  return matcher;
}

/**
 * Normalizes a relative path the way planners should: drops `.` and empty segments. Keeps what the check refuses
 * (`..`, a leading `/`) so that normalizing can never turn a refused path into an allowed one.
 */
export function normalizeRelative(path: string): string {
  if (path.startsWith('/')) return path;
  return path
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}
