/**
 * `lattice doctor` on real homes: the kernel probe through the sandbox helper (these machines have user
 * namespaces, Landlock and seccomp, so those pass), warnings only on a home that does not exist yet (exit 2),
 * passes for a running gate's home, and failures with their fixes for a home open to others and a tampered ledger
 * (exit 1).
 */
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { attackerOpen, latticeJson, tempDir } from '../helpers.ts';
import { exited, startGate } from '../gate/harness.ts';

interface Doctor {
  ok: boolean;
  checks: { id: string; status: 'pass' | 'warn' | 'fail'; detail: string; fix: string | null }[];
}

const doctor = (home: string) => {
  const r = latticeJson<Doctor>(['doctor', '--home', home, '--json']);
  return { status: r.status, byId: Object.fromEntries(r.json.checks.map((c) => [c.id, c])), checks: r.json.checks };
};

describe('lattice doctor', () => {
  it('probes the kernel and warns about a home that is not set up yet (exit 2)', () => {
    const d = doctor(join(tempDir(), 'nothing-here'));
    assert.equal(d.status, 2);
    for (const id of ['kernel.userns', 'kernel.landlock', 'kernel.seccomp']) assert.equal(d.byId[id]?.status, 'pass', `${id}: ${d.byId[id]?.detail ?? 'missing'}`);
    assert.match(d.byId['kernel.landlock']?.detail ?? '', /^Landlock ABI \d+$/);
    for (const id of ['home', 'ledger', 'gate']) assert.equal(d.byId[id]?.status, 'warn', id);
    assert.ok(d.checks.every((c) => c.status === 'pass' || c.fix !== null), 'every check short of a pass says what to do');
  });

  it("passes a running gate's home, and fails one open to others or with a tampered ledger (exit 1)", async () => {
    const home = join(tempDir(), 'home');
    const g = await startGate(home);
    try {
      const healthy = doctor(home);
      for (const id of ['home', 'keys', 'master_key', 'policies', 'ledger', 'gate', 'sockets']) assert.equal(healthy.byId[id]?.status, 'pass', `${id}: ${healthy.byId[id]?.detail ?? 'missing'}`);
      assert.notEqual(healthy.status, 1);

      chmodSync(home, 0o755);
      const open = doctor(home);
      assert.equal(open.status, 1);
      assert.equal(open.byId['home']?.status, 'fail');
      assert.equal(open.byId['home']?.fix, `chmod 700 ${home}`);
      chmodSync(home, 0o700);
    } finally {
      g.child.kill('SIGTERM');
      await exited(g.child);
    }
    const db = attackerOpen(join(home, 'lattice.db'));
    db.prepare("UPDATE events SET payload = '{\"edited\":true}' WHERE seq = 2").run();
    db.close();
    const tampered = doctor(home);
    assert.equal(tampered.status, 1);
    assert.equal(tampered.byId['ledger']?.status, 'fail');
    assert.match(tampered.byId['ledger']?.detail ?? '', /TAMPERED at seq 2/);
  });
});
