/**
 * The real helper (dist/lattice-sandbox) with a real plan, as root and as a normal user: what the kernel does with the
 * agent's personality and modify_ldt calls, and whether PID 1 and the relays run under a seccomp filter of their
 * own. The agent's script reports from inside; every target is the sandbox's own (its PID 1, its relay).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computePlan, serializePlan } from '../../sandbox/plan.ts';
import { hostDirs } from '../../sandbox/host-dirs.ts';
import { loadProfile } from '../../sandbox/profile.ts';
import { mkdirOwned, ownedDir, runners } from './harness.ts';

const REPORT = `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return r if r != -1 else -ctypes.get_errno()
ldt = (ctypes.c_char * 16)()
helpers = {}
for pid in (p for p in os.listdir('/proc') if p.isdigit()):
    try:
        argv0 = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')[0].decode()
        status = dict(l.split(':', 1) for l in open(f'/proc/{pid}/status').read().splitlines() if ':' in l)
    except OSError:
        continue
    if argv0.endswith('lattice-sandbox'):
        helpers[pid] = status['Seccomp'].strip()
out = {
    'modify_ldt_read': call(154, 0, ctypes.addressof(ldt), 16),
    'personality_query': call(135, 0xffffffff),
    'personality_linux': call(135, 0),
    'personality_no_aslr': call(135, 0x0040000),
    'personality_read_implies_exec': call(135, 0x0400000),
    'personality_after': call(135, 0xffffffff),
    'helpers': helpers,
    'self': dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)['Seccomp'].strip(),
}
open(sys.argv[1], 'w').write(json.dumps(out))
`;

const EPERM = 1;

for (const runner of runners()) {
  describe(`the helper's confinement, as ${runner.label}`, () => {
    /** Runs REPORT inside a sandbox built from a real plan (network on: one relay) and returns what it saw. */
    function report(): Record<string, unknown> {
      const dir = ownedDir(runner);
      const workspace = mkdirOwned(runner, join(dir, 'ws'));
      const runtimeDir = mkdirOwned(runner, join(dir, 'run'));
      const home = mkdirOwned(runner, join(dir, 'home'));
      writeFileSync(join(runtimeDir, 'gate.sock'), '');
      writeFileSync(join(workspace, 'report.py'), REPORT);
      const out = join(workspace, 'report.json');
      const plan = computePlan({
        profile: loadProfile(dir, 'default'), workspace, home, homeInside: home, runtimeDir, gateSocket: join(runtimeDir, 'gate.sock'), hostDirs: hostDirs(join(dir, 'lattice-home'), {}),
        roMounts: [], rwMounts: [], passEnv: [], network: true, routes: [], allowDegraded: false,
        argv: ['/usr/bin/python3', join(workspace, 'report.py'), out], hostEnv: { PATH: '/usr/bin:/bin' }, uid: runner.uid, gid: runner.gid, repos: { gitdirs: [], gitfiles: [], checkouts: [] }, configured: [],
      });
      writeFileSync(join(dir, 'plan'), serializePlan(plan));
      writeFileSync(join(dir, 'go'), 'g');
      const r = spawnSync(join(runner.cliRoot, 'dist', 'lattice-sandbox'), [], {
        stdio: ['ignore', 'pipe', 'pipe', openSync(join(dir, 'plan'), 'r'), 'pipe', openSync(join(dir, 'go'), 'r')],
        uid: runner.uid, gid: runner.gid, encoding: 'utf8', timeout: 30_000,
      });
      assert.equal(r.status, 0, `the helper exited ${String(r.status)} (${String(r.signal)}): ${r.stderr}`);
      return JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    }
    const seen = report();

    it('modify-ldt: reading or writing the LDT fails with EPERM inside', () => {
      assert.equal(seen['modify_ldt_read'], -EPERM);
    });

    it('personality-change: ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC fail with EPERM; a query and PER_LINUX work; the persona stays 0', () => {
      assert.equal(seen['personality_no_aslr'], -EPERM);
      assert.equal(seen['personality_read_implies_exec'], -EPERM);
      assert.equal(seen['personality_query'], 0);
      assert.equal(seen['personality_linux'], 0);
      assert.equal(seen['personality_after'], 0);
    });

    it('helper-unconfined: PID 1 and the relay run under a seccomp filter of their own (Seccomp: 2), as the agent does', () => {
      const helpers = seen['helpers'] as Record<string, string>;
      assert.ok(helpers['1'] !== undefined, `PID 1 is the helper: ${JSON.stringify(helpers)}`);
      assert.ok(Object.keys(helpers).length >= 2, `PID 1 and the relay are visible: ${JSON.stringify(helpers)}`);
      for (const [pid, mode] of Object.entries(helpers)) assert.equal(mode, '2', `helper process ${pid} has Seccomp: ${mode}`);
      assert.equal(seen['self'], '2');
    });
  });
}
