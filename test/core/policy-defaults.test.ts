/** The preset policies a new home starts with: valid against the built-in actions, and deciding as documented. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ActionRegistry } from '../../core/actions/registry.ts';
import { homePaths } from '../../core/home.ts';
import { checkPolicies } from '../../core/policy/check.ts';
import { DEFAULT_POLICIES } from '../../core/policy/defaults.ts';
import { PolicyEngine } from '../../core/policy/engine.ts';
import { generateSchema } from '../../core/policy/schema.ts';
import { CLI, lattice, tempDir } from '../helpers.ts';

const decide = (preset: string, action: string) =>
  PolicyEngine.load(DEFAULT_POLICIES).decide({ peerId: 'peer_x', workspace: 'ws-a', preset, action, context: { params: {}, risk: 'low' } });

describe('default preset policies', () => {
  it('validate against the schema of the built-in actions', () => {
    const registry = ActionRegistry.load(homePaths(tempDir()), { fsRoot: '/srv/ws', httpHosts: [] });
    const schema = generateSchema(registry.list().map(({ manifest }) => ({ id: manifest.id, paramsJsonSchema: manifest.requestSchema })));
    assert.deepEqual(checkPolicies(DEFAULT_POLICIES, schema).filter((p) => p.severity === 'error'), []);
  });

  it('let a sandboxed agent echo and read, hold its writes for a human, and never let it merge', () => {
    assert.equal(decide('sandboxed', 'echo').decision, 'allow');
    assert.equal(decide('sandboxed', 'fs.read').decision, 'allow');
    assert.equal(decide('sandboxed', 'fs.write').decision, 'hold');
    assert.equal(decide('sandboxed', 'github.pr.create').decision, 'hold');
    const merge = decide('sandboxed', 'github.pr.merge');
    assert.equal(merge.decision, 'deny');
    assert.ok(merge.decision === 'deny' && merge.denialReason === 'CONDITIONS_DENIED' && merge.reason === 'sandboxed agents never merge pull requests');
  });

  it('let coordinators open issues, hold pull requests, and leave isolated agents echo only', () => {
    assert.equal(decide('coordinator', 'github.issue.create').decision, 'allow');
    assert.equal(decide('coordinator', 'github.pr.create').decision, 'hold');
    assert.equal(decide('coordinator', 'github.pr.merge').decision, 'deny');
    assert.equal(decide('isolated', 'echo').decision, 'allow');
    const read = decide('isolated', 'fs.read');
    assert.ok(read.decision === 'deny' && read.denialReason === 'NO_POLICY', 'anything not permitted is a default deny');
  });
});

describe('lattice policy check', () => {
  it('accepts a valid file and refuses one naming a missing action, with exit codes 0 and 1', () => {
    const dir = tempDir();
    const good = join(dir, 'good.cedar');
    const bad = join(dir, 'bad.cedar');
    writeFileSync(good, 'permit (principal in Preset::"sandboxed", action == Action::"echo", resource) when { context.params.message != "" };\n');
    writeFileSync(bad, 'permit (principal, action == Action::"github.repo.delete", resource);\n');
    const home = join(dir, 'home');
    const ok = lattice(['policy', 'check', good, '--home', home]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    const refused = lattice(['policy', 'check', bad, '--home', home]);
    assert.equal(refused.status, 1);
    assert.match(refused.stdout, /bad\.cedar:1:\d+: .*unrecognized action `Action::"github\.repo\.delete"`/);
  });

  it('shows the built-in defaults while the home has no policies', () => {
    const home = join(tempDir(), 'home');
    const show = lattice(['policy', 'show', '--home', home, '--json']);
    assert.equal(show.status, 0);
    assert.equal((JSON.parse(show.stdout) as { source: string }).source, 'defaults');
  });

  it('stops quietly, exit 0, when its reader goes away (EPIPE)', async () => {
    const child = spawn(process.execPath, [CLI, 'policy', 'show', '--home', join(tempDir(), 'home')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });
});
