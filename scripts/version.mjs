// The version both builds print for `lattice --version`: package.json's version and the commit it was built from.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const PACKAGE_VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

/** `0.1.0 (<12-hex commit>)`, or `0.1.0 (unknown)` outside a git checkout (e.g. an unpacked source tarball). */
export function latticeVersion() {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    // not a git checkout: the version says "unknown" instead of failing the build
  }
  return `${PACKAGE_VERSION} (${commit})`;
}
