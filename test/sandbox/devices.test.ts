/**
 * The device nodes inside (/dev/null, zero, full, random, urandom, tty) are the host's inodes, bound in. For real
 * through `lattice sandbox`, as root and as a normal user: they are read-only mounts, so the agent cannot change a
 * node's mode or times (EROFS) even where it owns the node, and the devices still read and write as devices.
 * Run as root, the sandbox is started in a private mount namespace where /dev/null is a throwaway node this test
 * made (owned by the runner, as the host's is owned by root), so the real /dev/null is never at stake; as a normal
 * user the real one is used, which that user cannot change anyway (the test then asserts EROFS, not EPERM).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseEnv, gateAs, isRoot, ownedDir, runners, type Runner, type SandboxHome } from './harness.ts';

const SCRIPT = `
import errno, json, os
def attempt(f):
    try:
        f()
        return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def mounts():
    out = {}
    for line in open('/proc/self/mountinfo'):
        fields = line.split()
        out[fields[4]] = fields[5].split(',')
    return out
out = {
    'chmod': attempt(lambda: os.chmod('/dev/null', 0o600)),
    'utime': attempt(lambda: os.utime('/dev/null', (978307200, 978307200))),
    'chown': attempt(lambda: os.chown('/dev/null', os.getuid(), os.getgid())),
    'write-null': attempt(lambda: open('/dev/null', 'w').write('x' * 4096)),
    'read-zero': open('/dev/zero', 'rb').read(8).hex(),
    'read-urandom': len(open('/dev/urandom', 'rb').read(32)),
    'write-full': attempt(lambda: open('/dev/full', 'w', buffering=1).write('x\\n')),
    'mounts': {d: mounts().get('/dev/' + d, []) for d in ['null', 'zero', 'full', 'random', 'urandom', 'tty']},
}
print(json.dumps(out))
`;

/** `lattice sandbox` as the runner; as root inside a private mount namespace where NODE is bound over /dev/null. */
function sandboxWithNull(runner: Runner, home: string, ws: string, node: string | null): { status: number | null; stdout: string; stderr: string } {
  const args = [runner.cli, 'sandbox', '--home', home, '--workspace', ws, '--', '/usr/bin/python3', '-c', SCRIPT];
  const r =
    node === null
      ? spawnSync(process.execPath, args, { env: baseEnv({}), uid: runner.uid, gid: runner.gid, cwd: ws, encoding: 'utf8', timeout: 120_000 })
      : spawnSync(
          'unshare',
          ['-m', '--propagation', 'private', '--', '/bin/sh', '-c', 'n="$1" u="$2" g="$3"; shift 3; mount --bind "$n" /dev/null && exec setpriv --reuid="$u" --regid="$g" --clear-groups -- "$@"', 'sh', node, String(runner.uid), String(runner.gid), process.execPath, ...args],
          { env: baseEnv({}), cwd: ws, encoding: 'utf8', timeout: 120_000 },
        );
  if (r.error !== undefined) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

for (const runner of runners()) {
  describe(`device nodes inside the sandbox, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('device-node-mode: /dev/null cannot be chmod-ed, chown-ed or touched (EROFS, read-only binds); the devices still work', () => {
      const ws = ownedDir(runner);
      let node: string | null = null;
      if (isRoot) {
        node = join(ownedDir(runner), 'null');
        const made = spawnSync('mknod', ['-m', '666', node, 'c', '1', '3'], { encoding: 'utf8' });
        assert.equal(made.status, 0, made.stderr);
        chownSync(node, runner.uid, runner.gid);
      }
      const before = statSync(node ?? '/dev/null');
      const r = sandboxWithNull(runner, gate.home, ws, node);
      assert.equal(r.status, 0, r.stderr);
      const seen = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(seen['chmod'], 'EROFS');
      assert.equal(seen['utime'], 'EROFS');
      assert.equal(seen['chown'], 'EROFS');
      const afterwards = statSync(node ?? '/dev/null');
      assert.equal(afterwards.mode, before.mode, 'the node\'s mode changed on the host');
      assert.equal(afterwards.mtimeMs, before.mtimeMs, 'the node\'s times changed on the host');
      assert.equal(afterwards.uid, before.uid);
      // The devices themselves work: writes to null, reads of zero and urandom, ENOSPC from full.
      assert.equal(seen['write-null'], 'ok');
      assert.equal(seen['read-zero'], '0000000000000000');
      assert.equal(seen['read-urandom'], 32);
      assert.equal(seen['write-full'], 'ENOSPC');
      for (const [d, options] of Object.entries(seen['mounts'] as Record<string, string[]>)) {
        if (options.length === 0) continue; // a node this host lacks (e.g. /dev/tty in a container) is not bound
        assert.ok(options.includes('ro') && options.includes('nosuid'), `/dev/${d} is mounted ${options.join(',')}`);
      }
      assert.ok((seen['mounts'] as Record<string, string[]>)['null']?.includes('ro'));
    });
  });
}
