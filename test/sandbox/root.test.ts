/**
 * The root filesystem the helper builds (sandbox/helper/root.c), for real through `lattice sandbox`, as root and
 * as a normal user: the kernel's knobs under /proc are read-only and what shows the host's kernel is masked (read
 * from the agent's own mount table and by opening for write and closing, never by writing a setting); root may not
 * run without Landlock; and a mount point in the agent's private home is never made through a link it planted.
 * Every target is the test's own throwaway directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gateAs, latticeAs, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

/** /proc entries that must be read-only mounts inside, and those that must be masked (pinned here, as runc's lists). */
const PROC_READ_ONLY = ['bus', 'fs', 'irq', 'sys', 'sysrq-trigger'];
const PROC_MASKED = ['acpi', 'asound', 'interrupts', 'kcore', 'keys', 'latency_stats', 'sched_debug', 'scsi', 'timer_list', 'timer_stats'];

/** Reports, as JSON, how /proc looks to the agent: each entry's mount options and whether it opens for writing. */
const PROBE = `
import json, os
mounts = {}
with open("/proc/self/mountinfo") as f:
    for line in f:
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
def opens_for_write(path):
    try:
        os.close(os.open(path, os.O_WRONLY))  # opened and closed: nothing is written
        return True
    except OSError:
        return False
def content(path):
    try:
        with open(path, "rb") as f:
            return f.read(64).decode("latin-1")
    except OSError as e:
        return "unreadable: " + e.strerror
report = {"mounts": mounts, "exists": {p: os.path.exists("/proc/" + p) for p in os.listdir("/proc")}}
report["writable"] = {p: opens_for_write(p) for p in ["/proc/sysrq-trigger", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname"] if os.path.exists(p)}
report["masked"] = {p: content("/proc/" + p) if not os.path.isdir("/proc/" + p) else os.listdir("/proc/" + p) for p in ${JSON.stringify(PROC_MASKED)} if os.path.exists("/proc/" + p)}
print(json.dumps(report))
`;

interface ProcReport {
  mounts: Record<string, string[]>;
  exists: Record<string, boolean>;
  writable: Record<string, boolean>;
  masked: Record<string, string | string[]>;
}

for (const runner of runners()) {
  describe(`the sandbox's root filesystem, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('root-proc-sys: /proc/sys and the other kernel knobs are read-only mounts, nothing there opens for writing, and the host kernel\'s files are masked', () => {
      const ws = ownedDir(runner);
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/usr/bin/python3', '-c', PROBE]);
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout) as ProcReport;
      for (const p of PROC_READ_ONLY) {
        if (!existsSync(`/proc/${p}`)) continue; // e.g. sysrq-trigger without CONFIG_MAGIC_SYSRQ
        assert.ok(report.mounts[`/proc/${p}`]?.includes('ro'), `/proc/${p} is not a read-only mount: ${JSON.stringify(report.mounts[`/proc/${p}`])}`);
      }
      assert.ok(Object.keys(report.writable).length > 0);
      for (const [path, writable] of Object.entries(report.writable)) assert.equal(writable, false, `${path} opens for writing`);
      const masked = PROC_MASKED.filter((p) => existsSync(`/proc/${p}`));
      assert.ok(masked.length > 0, 'this kernel shows none of the masked files; the test would prove nothing');
      for (const p of masked) {
        const seen = report.masked[p];
        assert.ok(seen !== undefined, `/proc/${p} vanished instead of being masked`);
        assert.ok(Array.isArray(seen) ? seen.length === 0 : seen === '' || seen.startsWith('unreadable'), `/proc/${p} shows ${JSON.stringify(seen)}`);
        assert.ok(report.mounts[`/proc/${p}`]?.includes('ro'), `/proc/${p} is not masked by a read-only mount`);
      }
      // The rest of /proc is the sandbox's own and still there (the agent's tools read it).
      for (const p of ['self', 'cpuinfo', 'meminfo', 'stat', 'uptime']) assert.equal(report.exists[p], true, `/proc/${p} is missing`);
    });

    it(`--allow-degraded is ${runner.uid === 0 ? 'refused as root (the agent would be host uid 0 without Landlock)' : 'accepted as a normal user'}`, () => {
      const ws = ownedDir(runner);
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--allow-degraded', '--', '/bin/sh', '-c', `touch ${ws}/ran`]);
      if (runner.uid === 0) {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /--allow-degraded is refused as root/);
        assert.equal(existsSync(join(ws, 'ran')), false, 'the command ran');
      } else {
        assert.equal(r.status, 0, r.stderr);
        assert.equal(existsSync(join(ws, 'ran')), true);
      }
    });

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
