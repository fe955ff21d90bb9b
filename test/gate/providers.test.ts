/**
 * Provider components under attack, through the real gate: a provider that loops forever, one that allocates
 * without bound, one that returns a 100 MB string, one that imports WASI filesystem, and one whose bytes do not
 * match the manifest's pin. Each is contained or refused with a clear error and a ledger event, and the gate
 * keeps serving other agents while the loop runs. A component may plan only the effect kinds its manifest
 * declares.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../core/crypto/index.ts';
import { latticeJson, tempDir } from '../helpers.ts';
import { component, returnsOk, wasiComponent } from '../providers/components.ts';
import { asAgent, asOperator, exited, startGate, type Agent, type Reply } from './harness.ts';
import { newAgent } from './harness.ts';

const EMPTY_PLAN = returnsOk('{"effects":[]}');

function manifest(id: string, file: string, sha256: string, extra = ''): string {
  return `id = "${id}"\nversion = "1.0.0"\ndescription = "hostile"\nrisk = "low"\ntimeout = "2s"\n[provider]\ncomponent = "${file}"\nsha256 = "${sha256}"\n${extra}\n[request.schema]\ntype = "object"\n`;
}

interface Fixture {
  readonly file: string;
  readonly bytes: Buffer;
  readonly id: string;
  readonly extra?: string;
  readonly pin?: string;
}

async function gateWith(fixtures: readonly Fixture[], providersConfig = '') {
  const home = join(tempDir(), 'home');
  mkdirSync(join(home, 'providers'), { recursive: true, mode: 0o700 });
  mkdirSync(join(home, 'actions'), { recursive: true, mode: 0o700 });
  for (const f of fixtures) {
    writeFileSync(join(home, 'providers', f.file), f.bytes);
    writeFileSync(join(home, 'actions', `${f.id}.toml`), manifest(f.id, f.file, f.pin ?? sha256Hex(f.bytes), f.extra));
  }
  const config = join(tempDir(), 'lattice.toml');
  writeFileSync(config, `[providers]\nworkers = 2\n${providersConfig}`);
  const g = { home, config, ...(await startGate(home, '--config', config)) };
  const applied = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'all.cedar', text: 'permit (principal, action, resource);' }] });
  assert.equal(applied.status, 200, JSON.stringify(applied.body));
  return g;
}

function execute(socket: string, agent: Agent, action: string, params: unknown = {}): Promise<Reply> {
  return asAgent(socket, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params }));
}

function events(home: string, type: string): { action: string | null; payload: Record<string, unknown> }[] {
  return latticeJson<{ events: { action: string | null; payload: Record<string, unknown> }[] }>(['audit', '--home', home, '--type', type, '--limit', '1000']).json.events;
}

describe('hostile provider components', () => {
  it('stops a component whose instantiation never ends within the load budget, and keeps serving', async () => {
    // A core start function that spins: it runs while the worker instantiates, before any call could start.
    const stuck = await component(EMPTY_PLAN.body, { data: EMPTY_PLAN.data, start: '(loop $spin (br $spin))' });
    const g = await gateWith([{ file: 'stuck.wasm', bytes: stuck, id: 'hostile.stuck' }], 'load_timeout = "2s"\n');
    try {
      const agent = await newAgent(g.admin);
      const reply = await execute(g.gate, agent, 'hostile.stuck');
      assert.equal(reply.body.error?.code, 'PROVIDER_FAILED');
      assert.match(reply.body.error?.message ?? '', /could not be loaded and instantiated within 2000 ms and was stopped/);
      assert.equal((await execute(g.gate, agent, 'echo', { message: 'still here' })).status, 200);
    } finally {
      g.child.kill('SIGTERM');
      await exited(g.child);
    }
  });

  it('contains a loop, unbounded memory, a 100 MB answer, a WASI import and a hash mismatch, and serves others meanwhile', async () => {
    const loop = await component('(loop $forever (br $forever)) (i32.const 0)');
    // Grows one page at a time until refused; a component that got past its 2 MiB cap would answer instead of trap.
    const greedy = await component(
      `(block $capped (loop $more (br_if $capped (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $more)))
       (if (i32.gt_u (memory.size) (i32.const 32)) (then ${EMPTY_PLAN.body} (return))) unreachable`,
      { data: EMPTY_PLAN.data },
    );
    // 100 MiB of memory, returned whole as one string of 50 M UTF-16 code units.
    const huge = await component(
      `(if (i32.eq (memory.grow (i32.const 1600)) (i32.const -1)) (then unreachable))
       (i32.store (i32.const 0) (i32.const 0)) (i32.store (i32.const 4) (i32.const 65536)) (i32.store (i32.const 8) (i32.const 52428800)) (i32.const 0)`,
    );
    const wasi = await wasiComponent();
    const honest = await component(EMPTY_PLAN.body, { data: EMPTY_PLAN.data });
    const g = await gateWith([
      { file: 'loop.wasm', bytes: loop, id: 'hostile.loop' },
      { file: 'greedy.wasm', bytes: greedy, id: 'hostile.greedy', extra: 'memory_mb = 2' },
      { file: 'huge.wasm', bytes: huge, id: 'hostile.huge', extra: 'memory_mb = 256' },
      { file: 'wasi.wasm', bytes: wasi, id: 'hostile.wasi' },
      { file: 'pinned.wasm', bytes: honest, id: 'hostile.pinned', pin: sha256Hex(loop) },
    ]);
    const agent = await newAgent(g.admin);

    let looping = true;
    const looped = execute(g.gate, agent, 'hostile.loop').finally(() => (looping = false));
    const other = await newAgent(g.admin);
    for (let i = 0; i < 5; i++) {
      const echo = await execute(g.gate, other, 'echo', { message: `while looping ${i}` });
      assert.equal(echo.status, 200, JSON.stringify(echo.body));
    }
    assert.equal(looping, true, 'the echo requests were answered while the loop was still running');
    const loopReply = await looped;
    assert.equal(loopReply.status, 500);
    assert.equal(loopReply.body.error?.code, 'PROVIDER_FAILED');
    assert.match(loopReply.body.error?.message ?? '', /ran past its 2000 ms deadline and was stopped/);

    const expectations: [string, RegExp][] = [
      ['hostile.greedy', /trapped: RuntimeError: unreachable/],
      ['hostile.huge', /returned 52428800 characters; the limit is 4194304|worker/],
      ['hostile.wasi', /imports wasi:filesystem\/preopens; a provider may import only log/],
      ['hostile.pinned', new RegExp(`pinned\\.wasm has sha256 ${sha256Hex(honest)}, but the manifest pins ${sha256Hex(loop)}`)],
    ];
    for (const [action, message] of expectations) {
      const reply = await execute(g.gate, agent, action);
      assert.equal(reply.status, 500, `${action}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body.error?.code, 'PROVIDER_FAILED', action);
      assert.match(reply.body.error?.message ?? '', message, action);
    }
    assert.equal((await execute(g.gate, agent, 'echo', { message: 'still serving' })).status, 200);

    const failed = events(g.home, 'request.failed').filter((e) => e.payload['code'] === 'PROVIDER_FAILED');
    assert.equal(failed.length, 5, JSON.stringify(failed));
    assert.ok(failed.some((e) => /deadline/.test(String(e.payload['message']))));
    const unavailable = events(g.home, 'provider.unavailable').map((e) => e.action).sort();
    assert.deepEqual(unavailable, ['hostile.pinned', 'hostile.wasi']);
  });

  it('refuses a planned effect kind the manifest does not declare, and allows a declared one', async () => {
    const writes = await component(returnsOk('{"effects":[{"kind":"fs.write","path":"x.txt","content":"x"}]}').body, {
      data: returnsOk('{"effects":[{"kind":"fs.write","path":"x.txt","content":"x"}]}').data,
    });
    const fsRoot = tempDir();
    const g = await gateWith([
      { file: 'writes.wasm', bytes: writes, id: 'sneaky.reader', extra: `effects = ["fs.read"]\n[sinks.fs]\nroot = ${JSON.stringify(fsRoot)}` },
      { file: 'writes.wasm', bytes: writes, id: 'honest.writer', extra: `effects = ["fs.write"]\n[sinks.fs]\nroot = ${JSON.stringify(fsRoot)}` },
    ]);
    const agent = await newAgent(g.admin);
    const sneaky = await execute(g.gate, agent, 'sneaky.reader');
    assert.equal(sneaky.status, 403, JSON.stringify(sneaky.body));
    assert.equal(sneaky.body['denialReason'], 'SINK_DENIED');
    assert.match(String(sneaky.body['message']), /does not declare fs\.write effects/);
    const honest = await execute(g.gate, agent, 'honest.writer');
    assert.equal(honest.status, 200, JSON.stringify(honest.body));
    const denied = events(g.home, 'action.denied').filter((e) => e.action === 'sneaky.reader');
    assert.equal(denied.length, 1);
  });
});
