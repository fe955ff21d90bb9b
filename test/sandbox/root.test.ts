/**
 * The root filesystem the helper builds (sandbox/helper/root.c), for real through `lattice sandbox`, as root and
 * as a normal user: a mount point in the agent's private home is never made through a link it planted. Every
 * target is the test's own throwaway directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gateAs, latticeAs, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

for (const runner of runners()) {
  describe(`the sandbox's root filesystem, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('home-mount-point-symlink: a link the agent planted in its private home where a mount point goes refuses the run; nothing is made through it', () => {
      // The workspace lies inside $HOME, so its mount point is made inside the private home (bound at $HOME). A link
      // there to /oldroot/… would lead the helper, while it builds the root, to the host's directory.
      const base = ownedDir(runner);
      const hostHome = mkdirOwned(runner, join(base, 'home'));
      const ws = mkdirOwned(runner, join(hostHome, 'src', 'app'));
      const victim = mkdirOwned(runner, join(base, 'victim'));
      const privateHome = mkdirOwned(runner, join(mkdirOwned(runner, join(gate.home, 'homes')), 'default'));
      symlinkSync(`/oldroot${victim}`, join(privateHome, 'src'));
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/bin/sh', '-c', `touch ${ws}/ran`], { HOME: hostHome });
      assert.deepEqual(readdirSync(victim), [], 'something was made in the host directory the link points at');
      assert.notEqual(r.status, 0, 'the run went ahead');
      assert.match(r.stderr, /src is a symbolic link, and lattice follows no link there/);
      assert.equal(existsSync(join(ws, 'ran')), false);
      // Without the link the same session runs (the helper makes the mount point in the private home).
      unlinkSync(join(privateHome, 'src'));
      const fixed = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/bin/sh', '-c', `touch ${ws}/ran`], { HOME: hostHome });
      assert.equal(fixed.status, 0, fixed.stderr);
      assert.equal(existsSync(join(ws, 'ran')), true);
    });
  });
}
