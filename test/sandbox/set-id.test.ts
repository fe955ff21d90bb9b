/**
 * Set-id bits, for real through `lattice sandbox`, as root and as a normal user: every call that takes a mode fails
 * with EPERM when the mode carries S_ISUID or S_ISGID (run as root, such a file left in the workspace would be a
 * root program for any user of the host), openat2 fails with ENOSYS, and the same calls with an ordinary mode work.
 * The agent's script makes its calls by number (so each syscall is the one named) on files in the test's workspace.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gateAs, latticeAs, ownedDir, runners, type SandboxHome } from './harness.ts';

/** Each call made twice, with a set-id mode and with an ordinary one: {name: [result with set-id, result plain]}. */
const SCRIPT = String.raw`
import ctypes, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    conv = [ctypes.c_char_p(a.encode()) if isinstance(a, str) else ctypes.c_long(a) for a in args]
    r = libc.syscall(nr, *conv)
    return -ctypes.get_errno() if r == -1 else 0
AT = -100
O_WRONLY, O_CREAT, O_TMPFILE, S_IFREG = 0o1, 0o100, 0o20200000, 0o100000
def fchmod(mode):
    fd = os.open('fchmod', os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return call(91, fd, mode)
    finally:
        os.close(fd)
calls = {
    'chmod': lambda tag, mode: (open('chmod', 'w').close(), call(90, 'chmod', mode))[1],
    'fchmod': lambda tag, mode: fchmod(mode),
    'fchmodat': lambda tag, mode: (open('fchmodat', 'w').close(), call(268, AT, 'fchmodat', mode))[1],
    'creat': lambda tag, mode: call(85, 'creat-' + tag, mode),
    'mkdir': lambda tag, mode: call(83, 'mkdir-' + tag, mode),
    'mkdirat': lambda tag, mode: call(258, AT, 'mkdirat-' + tag, mode),
    'mknod': lambda tag, mode: call(133, 'mknod-' + tag, S_IFREG | mode, 0),
    'mknodat': lambda tag, mode: call(259, AT, 'mknodat-' + tag, S_IFREG | mode, 0),
    'open': lambda tag, mode: call(2, 'open-' + tag, O_WRONLY | O_CREAT, mode),
    'openat': lambda tag, mode: call(257, AT, 'openat-' + tag, O_WRONLY | O_CREAT, mode),
    'openat-tmpfile': lambda tag, mode: call(257, AT, '.', O_WRONLY | O_TMPFILE, mode),
    'fchmodat2': lambda tag, mode: (open('fchmodat2', 'w').close(), call(452, AT, 'fchmodat2', mode, 0))[1],
}
out = {}
for name, f in calls.items():
    out[name + ' 4755'] = [f('setuid', 0o4755), f('plain', 0o755)]
    out[name + ' 2755'] = [f('setgid', 0o2755), 0]
out['open-without-create'] = [call(2, 'chmod', os.O_RDONLY, 0o4755), 0]
out['openat2'] = [call(437, AT, 'chmod', 0, 24), 0]
cp = subprocess.run(['/bin/sh', '-c', 'cp /bin/true rootshell && chmod 6755 rootshell'], capture_output=True, text=True)
out['shell'] = [cp.returncode, cp.stderr.strip()]
print(json.dumps(out))
`;

const EPERM = 1;
const ENOSYS = 38;

/** Files below DIR (not following links) whose mode has S_ISUID or S_ISGID. */
function setIdFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => (lstatSync(join(dir, p)).mode & 0o6000) !== 0);
}

for (const runner of runners()) {
  describe(`set-id bits inside the sandbox, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('setuid-bit: no call gives a file S_ISUID or S_ISGID (EPERM), openat2 is ENOSYS, and ordinary modes still work', () => {
      const ws = ownedDir(runner);
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/usr/bin/python3', '-c', SCRIPT], {}, ws);
      assert.equal(r.status, 0, r.stderr);
      const seen = JSON.parse(r.stdout) as Record<string, [number, number | string]>;
      const { shell, 'open-without-create': openRead, openat2, ...modes } = seen;
      assert.equal(Object.keys(modes).length, 24, `calls that ran: ${Object.keys(modes).join(', ')}`);
      for (const [name, [setId, plain]] of Object.entries(modes)) {
        assert.equal(setId, -EPERM, `${name} returned ${setId}`);
        // fchmodat2 is Linux 6.6+: before, the ordinary call is ENOSYS (the set-id one is EPERM all the same).
        const unknown = name.startsWith('fchmodat2') && plain === -ENOSYS;
        assert.ok(plain === 0 || unknown, `${name} with mode 0755 instead returned ${plain}`);
      }
      // open without O_CREAT ignores its mode, so whatever is in that register does not matter.
      assert.equal(openRead?.[0], 0, 'open(O_RDONLY) with a set-id mode argument was refused');
      assert.equal(openat2?.[0], -ENOSYS);
      assert.notEqual(shell?.[0], 0, 'chmod 6755 worked');
      assert.match(String(shell?.[1]), /Operation not permitted/);
      assert.deepEqual(setIdFiles(ws), [], 'a set-id file is in the workspace on the host');
    });
  });
}
