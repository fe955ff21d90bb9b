/**
 * The SDK (`lattice/sdk`, the built bundle) against a real gate over its unix socket: every method, delegation
 * (within and outside capabilities, revoked when the body throws, chains narrowing, cascades), `gate` waiting for
 * an operator's approval, withdrawing a held request (and `gate` withdrawing when its caller aborts), subscriptions with filters, and retries that cannot run an action twice when the first
 * response is lost. Also: the bundle holds no daemon code, and its exported names are pinned.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as sdk from 'lattice/sdk';
import { Lattice, LatticeDeniedError, LatticeError, LatticeTimeoutError, type LatticeEvent } from 'lattice/sdk';
import { ROOT, freePort, latticeJson, tempDir } from '../helpers.ts';
import { asOperator, exited, gate, type TestGate } from '../gate/harness.ts';

let g: TestGate;
before(async () => {
  g = await gate();
  const policy = `@id("echo-any")
permit (principal in Preset::"sandboxed", action == Action::"echo", resource) when { !(context.params has message && context.params.message == "forbidden") };
@id("reads")
permit (principal in Preset::"sandboxed", action == Action::"fs.read", resource);
@id("writes-held")
@approval("required")
permit (principal in Preset::"sandboxed", action == Action::"fs.write", resource);`;
  const reply = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'sdk.cedar', text: policy }] });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

/** A fresh agent: `lattice enroll` writes its credential file, the SDK reads it. */
function credentialFile(): string {
  const out = join(tempDir(), 'credential.json');
  const enrolled = latticeJson(['enroll', '--home', g.home, '--name', 'sdk-test', '--type', 'custom', '--workspace', 'ws-sdk', '--ttl', '1h', '--out', out, '--json']);
  assert.equal(enrolled.status, 0, enrolled.stderr);
  return out;
}

const client = (options: ConstructorParameters<typeof Lattice>[0] = {}) => new Lattice({ credential: credentialFile(), backoffMs: 50, ...options });

describe('the SDK bundle', () => {
  it('imports no daemon code: only sdk/ sources, and jose, undici and node built-ins', () => {
    const meta = JSON.parse(readFileSync(join(ROOT, 'dist', 'sdk.meta.json'), 'utf8')) as { inputs: Record<string, unknown>; outputs: Record<string, { imports: { path: string }[] }> };
    const inputs = Object.keys(meta.inputs);
    assert.ok(inputs.length > 3);
    assert.deepEqual(inputs.filter((file) => !file.startsWith('sdk/')), []);
    const imports = new Set(meta.outputs['dist/sdk.mjs']!.imports.map((i) => i.path));
    assert.deepEqual([...imports].filter((path) => !['jose', 'undici'].includes(path) && !path.startsWith('node:')), []);
    assert.ok(!imports.has('node:crypto'), 'WebCrypto only, like any agent runtime');
  });

  it('exports exactly these names', () => {
    assert.deepEqual(Object.keys(sdk).sort(), ['DelegatedLattice', 'Lattice', 'LatticeDeniedError', 'LatticeError', 'LatticeTimeoutError']);
    assert.deepEqual(
      Object.getOwnPropertyNames(Lattice.prototype).filter((n) => n !== 'constructor').sort(),
      ['actions', 'approval', 'audit', 'canI', 'close', 'delegate', 'delegations', 'execute', 'gate', 'peerId', 'policies', 'posture', 'report', 'revoke', 'subscribe', 'unsubscribe', 'verify', 'waitForDecision', 'whoami', 'withdraw'],
    );
    assert.equal(typeof Lattice.parallel, 'function');
  });
});

describe('the SDK against a real gate', () => {
  it('reads its credential from LATTICE_CREDENTIAL and says what is missing without one', async () => {
    const file = credentialFile();
    const previous = process.env['LATTICE_CREDENTIAL'];
    try {
      process.env['LATTICE_CREDENTIAL'] = file;
      const lattice = new Lattice();
      const me = await lattice.whoami();
      assert.equal(me.peerId, lattice.peerId);
      assert.equal(me.policyPreset, 'sandboxed');
      await lattice.close();
      delete process.env['LATTICE_CREDENTIAL'];
      assert.throws(() => new Lattice(), (e: unknown) => e instanceof LatticeError && e.code === 'CREDENTIAL_MISSING');
    } finally {
      if (previous === undefined) delete process.env['LATTICE_CREDENTIAL'];
      else process.env['LATTICE_CREDENTIAL'] = previous;
    }
  });

  it('execute, canI, actions, policies, audit, report, verify and posture', async () => {
    await using lattice = client();
    const result = await lattice.execute('echo', { params: { message: 'hi' } });
    assert.equal(result.status, 'executed');
    assert.ok(result.status === 'executed' && (result.output as { message: string }).message === 'hi');
    const denied = await lattice.execute('echo', { params: { message: 'forbidden' } });
    assert.equal(denied.status, 'denied');

    assert.deepEqual(await lattice.canI('echo', { params: { message: 'x' } }).then((a) => [a.allowed, a.needsApproval]), [true, false]);
    assert.deepEqual(await lattice.canI('fs.write', { params: { path: 'a.txt', content: 'x' } }).then((a) => [a.allowed, a.needsApproval]), [false, true]);
    assert.ok((await lattice.actions()).some((a) => a.id === 'echo' && typeof a.requestSchema === 'object'));
    assert.deepEqual((await lattice.policies()).policies.map((p) => p.id).sort(), ['echo-any', 'reads', 'writes-held']);

    const audit = await lattice.audit({ actionType: 'echo', limit: 10 });
    assert.ok(audit.events.every((e) => e.principal === lattice.peerId));
    assert.ok(audit.events.some((e) => e.type === 'action.executed'));
    assert.ok(result.status === 'executed');
    const report = await lattice.report(result.auditEventId, 'success', 'said hi');
    assert.equal(report.auditEventId, result.auditEventId);
    await assert.rejects(lattice.report(1, 'success', 'not mine'), (e: unknown) => e instanceof LatticeError && e.code === 'NOT_FOUND' && e.status === 404);

    assert.equal((await lattice.verify()).ok, true);
    const posture = await lattice.posture();
    assert.equal(posture.components.length, 6);
    assert.equal(posture.score, posture.components.reduce((s, c) => s + c.score, 0));
  });

  it('gate returns the output once an operator approves, and raises typed errors for denials and timeouts', async () => {
    await using lattice = client();
    let waits = 0;
    const pending = lattice.gate('fs.write', { params: { path: 'sdk-approved.txt', content: 'approved' }, pollIntervalMs: 50, onWait: () => waits++ });
    const approvalId = await until(async () => {
      const held = (await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string; planSha256: string; peerId?: string }[];
      return held.find((a) => a.approvalId !== undefined) ?? null;
    });
    const approved = await asOperator(g, 'POST', `/api/v1/approvals/${approvalId.approvalId}/approve`, { planSha256: approvalId.planSha256 });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const result = await pending;
    assert.equal(result.status, 'executed');
    assert.ok(waits >= 1, 'onWait reported the hold');

    await assert.rejects(lattice.gate('echo', { params: { message: 'forbidden' } }), (e: unknown) => e instanceof LatticeDeniedError && e.reason === 'CONDITIONS_DENIED' && e.policy === 'echo-any' && e.conditions.length > 0);
    await assert.rejects(
      lattice.gate('fs.write', { params: { path: 'never.txt', content: 'x' }, pollIntervalMs: 20, timeoutMs: 150 }),
      (e: unknown) => e instanceof LatticeTimeoutError && typeof e.approvalId === 'string',
    );
    const denying = lattice.gate('fs.write', { params: { path: 'denied.txt', content: 'x' }, pollIntervalMs: 50 });
    const held = await until(async () => {
      const list = (await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string; params?: { path?: string } }[];
      return list.find((a) => JSON.stringify(a).includes('denied.txt')) ?? null;
    });
    await asOperator(g, 'POST', `/api/v1/approvals/${held.approvalId}/deny`, { reason: 'no' });
    await assert.rejects(denying, (e: unknown) => e instanceof LatticeDeniedError && e.reason === 'DENIED_BY_REVIEWER' && e.approvalId === held.approvalId);
  });

  it('gate-aborted: withdraw takes back a held request, and gate withdraws the request it waits for when its signal aborts', async () => {
    await using lattice = client();
    const state = async (approvalId: string) => (await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`)).body['state'];
    const held = await lattice.execute('fs.write', { params: { path: 'sdk-withdrawn.txt', content: 'x' } });
    assert.equal(held.status, 'requested');
    if (held.status !== 'requested') return;
    const ended = await lattice.withdraw(held.approvalId, { reason: 'no longer needed' });
    assert.equal(ended.status, 'withdrawn');
    assert.equal((await lattice.approval(held.approvalId)).status, 'withdrawn');
    assert.equal((await lattice.withdraw(held.approvalId)).status, 'withdrawn', 'safe to repeat');
    const approve = await asOperator(g, 'POST', `/api/v1/approvals/${held.approvalId}/approve`, { planSha256: held.planSha256 });
    assert.equal(approve.body.error?.code, 'APPROVAL_WITHDRAWN');
    await assert.rejects(lattice.withdraw('apr_nosuch'), (e: unknown) => e instanceof LatticeError && e.code === 'APPROVAL_NOT_FOUND' && e.status === 404);

    // gate: the caller stops waiting, so the request it waited for is withdrawn before gate rejects.
    const stop = new AbortController();
    const abandoned = lattice.gate('fs.write', { params: { path: 'sdk-abandoned.txt', content: 'x' }, pollIntervalMs: 50, signal: stop.signal });
    const waitedFor = await until(async () => ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string }[]).find((a) => JSON.stringify(a).includes('sdk-abandoned.txt')) ?? null);
    stop.abort(new Error('the caller moved on'));
    await assert.rejects(abandoned, /the caller moved on/);
    assert.equal(await state(waitedFor.approvalId), 'withdrawn');

    // waitForDecision only stops waiting: the request stays held, and gate reports a withdrawal by anyone as a denial.
    const kept = await lattice.execute('fs.write', { params: { path: 'sdk-kept.txt', content: 'x' } });
    const quit = new AbortController();
    const waiting = lattice.waitForDecision(kept, { pollIntervalMs: 50, signal: quit.signal });
    quit.abort(new Error('stop polling'));
    await assert.rejects(waiting, /stop polling/);
    if (kept.status !== 'requested') return assert.fail('not held');
    assert.equal(await state(kept.approvalId), 'held');
    const gated = lattice.gate('fs.write', { params: { path: 'sdk-kept.txt', content: 'x' }, pollIntervalMs: 50 });
    const second = await until(async () => ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string }[]).find((a) => a.approvalId !== kept.approvalId && JSON.stringify(a).includes('sdk-kept.txt')) ?? null);
    await lattice.withdraw(second.approvalId);
    await assert.rejects(gated, (e: unknown) => e instanceof LatticeDeniedError && e.reason === 'APPROVAL_WITHDRAWN' && e.approvalId === second.approvalId);
    await lattice.withdraw(kept.approvalId);
  });

  it('delegate: a child acts within its capabilities, is denied outside them, and is revoked when the body throws', async () => {
    await using lattice = client();
    let childId = '';
    await assert.rejects(
      lattice.delegate('reader', { capabilities: ['echo'], ttl: '5m' }, async (sub) => {
        childId = sub.peerId;
        assert.equal((await sub.execute('echo', { params: { message: 'from child' } })).status, 'executed');
        const outside = await sub.execute('fs.read', { params: { path: 'x.txt' } });
        assert.ok(outside.status === 'denied' && outside.denialReason === 'CAPABILITY_DENIED');
        assert.equal((await lattice.delegations()).length, 1);
        throw new Error('the body failed');
      }),
      /the body failed/,
    );
    assert.notEqual(childId, '');
    assert.deepEqual(await lattice.delegations(), [], 'revoked on the way out');
    const ended = await lattice.delegations({ activeOnly: false });
    assert.equal(ended.find((d) => d.id === childId)?.state, 'ended');
  });

  it('ttl-as-seconds: delegate(name, { ttl: 300 }) makes a sub-agent that lives 300 s, as ttl: "5m" does', async () => {
    await using lattice = client();
    for (const ttl of [300, '5m']) {
      const before = Date.now();
      const lives = await lattice.delegate(`ttl-${String(ttl)}`, { capabilities: ['echo'], ttl }, async (sub) => {
        assert.equal((await sub.execute('echo', { params: { message: 'timed' } })).status, 'executed');
        return Date.parse((await sub.whoami()).expiresAt) - before;
      });
      assert.ok(lives >= 295_000 && lives <= 305_000, `ttl ${String(ttl)}: lives ${lives} ms`);
    }
    await assert.rejects(lattice.delegate('fraction', { capabilities: ['echo'], ttl: 1.5 }), (e: unknown) => e instanceof LatticeError && e.code === 'VALIDATION_FAILED');
  });

  it('await using revokes; chains only narrow; revoking a parent cascades; parallel waits for every task', async () => {
    await using lattice = client();
    let childId = '';
    {
      await using child = await lattice.delegate('planner', { capabilities: ['echo', 'fs.*'], ttl: '10m' });
      await assert.rejects(child.delegate('wider', { capabilities: ['github.*'], ttl: '1m' }), (e: unknown) => e instanceof LatticeError && e.code === 'DELEGATION_INVALID');
      childId = child.peerId;
      const grandchild = await child.delegate('echoer', { capabilities: ['echo'], ttl: '5m' });
      assert.equal((await grandchild.execute('echo', { params: { message: 'deep' } })).status, 'executed');
      assert.deepEqual((await grandchild.delegations({ role: 'child' })).map((d) => d.parentId), [child.peerId]);
      await lattice.revoke(child.peerId); // the parent revokes the child: the grandchild goes with it
      await assert.rejects(grandchild.whoami(), (e: unknown) => e instanceof LatticeError && e.status === 401);
      await grandchild.close();
    } // disposing an already revoked child is not an error
    assert.equal((await lattice.delegations({ activeOnly: false })).find((d) => d.id === childId)?.state, 'ended');

    const results = await Lattice.parallel(
      lattice.delegate('a', { capabilities: ['echo'], ttl: '1m' }, async (sub) => (await sub.gate('echo', { params: { message: 'a' } })).output),
      lattice.delegate('b', { capabilities: ['echo'], ttl: '1m' }, async (sub) => (await sub.gate('echo', { params: { message: 'b' } })).output),
    );
    assert.deepEqual(results.map((r) => (r as { message: string }).message), ['a', 'b']);
    let slowFinished = false;
    await assert.rejects(
      Lattice.parallel(
        lattice.delegate('fails', { capabilities: ['echo'], ttl: '1m' }, () => Promise.reject(new Error('fast failure'))),
        lattice.delegate('slow', { capabilities: ['echo'], ttl: '1m' }, async () => {
          await new Promise((r) => setTimeout(r, 200));
          slowFinished = true;
        }),
      ),
      /fast failure/,
    );
    assert.ok(slowFinished, 'parallel answered only after every task settled');
    assert.deepEqual(await lattice.delegations(), [], 'every sub-agent revoked');
  });

  it('subscribe delivers the events of a run, filtered, until unsubscribed', async () => {
    await using lattice = client();
    const all: LatticeEvent[] = [];
    const executedOnly: LatticeEvent[] = [];
    const everything = await lattice.subscribe((e) => all.push(e));
    const filtered = await lattice.subscribe((e) => executedOnly.push(e), { events: ['action.executed'] });
    await lattice.execute('echo', { params: { message: 'one' } });
    await lattice.execute('echo', { params: { message: 'forbidden' } });
    await until(() => Promise.resolve(all.length >= 2 && executedOnly.length >= 1 ? true : null));
    assert.deepEqual(all.map((e) => e.type), ['action.executed', 'action.denied']);
    assert.deepEqual(executedOnly.map((e) => e.type), ['action.executed']);
    assert.ok(all.every((e) => e.principal === lattice.peerId));
    lattice.unsubscribe(filtered);
    await filtered.closed;
    await lattice.execute('echo', { params: { message: 'two' } });
    await until(() => Promise.resolve(all.length >= 3 ? true : null));
    assert.equal(executedOnly.length, 1, 'nothing after unsubscribe');
    everything.close();
    await everything.closed;
    await assert.rejects(lattice.subscribe(() => undefined, { events: ['no.such'] }), (e: unknown) => e instanceof LatticeError && e.code === 'VALIDATION_FAILED');
  });

  it('retries after a lost response without running the action twice', async () => {
    // A unix-socket relay that forwards the first request to the gate and drops the connection instead of
    // delivering the answer: the action ran, the client never heard. The retry must get the first answer.
    const relaySocket = join(tempDir(), 'relay.sock');
    let connections = 0;
    const relay: Server = createServer((client) => {
      const first = ++connections === 1;
      const upstream = createConnection(g.gate);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => (first ? client.destroy() : client.write(chunk)));
      upstream.on('end', () => client.end());
      client.on('close', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => relay.listen(relaySocket, r));
    try {
      await using lattice = client({ socketPath: relaySocket });
      const result = await lattice.execute('echo', { params: { message: 'once' } });
      assert.equal(result.status, 'executed');
      assert.ok(connections >= 2, 'the first response was lost and the call retried');
      const executed = (await lattice.audit({ type: 'action.executed', limit: 50 })).events;
      assert.equal(executed.length, 1, 'the action ran exactly once');
      assert.ok(result.status === 'executed' && executed[0]!.seq === result.auditEventId);
    } finally {
      relay.close();
    }
  });

  it('reports an unreachable gate clearly after its retries', async () => {
    await using lattice = client({ socketPath: join(tempDir(), 'nothing.sock'), retries: 2, backoffMs: 10 });
    await assert.rejects(lattice.whoami(), (e: unknown) => e instanceof LatticeError && e.code === 'GATE_UNREACHABLE' && /lattice up/.test(e.message));
  });
});

describe('the SDK over HTTP to a remote gate', () => {
  it('speaks to a gate on TCP with proofs naming its base URL', async () => {
    const port = await freePort();
    const tcp = await gate(`[gate]\nbase_url = "http://127.0.0.1:${port}"\nlisten = "127.0.0.1:${port}"\n`);
    try {
      const out = join(tempDir(), 'credential.json');
      const enrolled = latticeJson(['enroll', '--home', tcp.home, '--name', 'remote', '--type', 'custom', '--workspace', 'ws-sdk', '--out', out, '--json']);
      assert.equal(enrolled.status, 0, enrolled.stderr);
      await using remote = new Lattice({ credential: out, baseUrl: `http://127.0.0.1:${port}` });
      assert.equal((await remote.whoami()).peerId, remote.peerId);
      assert.equal((await remote.execute('echo', { params: { message: 'over tcp' } })).status, 'executed');
      await using wrongBase = new Lattice({ credential: out, baseUrl: `http://localhost:${port}` });
      await assert.rejects(wrongBase.whoami(), (e: unknown) => e instanceof LatticeError && e.code === 'DPOP_HTU_MISMATCH', 'a proof must name the configured base URL');
    } finally {
      tcp.child.kill('SIGTERM');
      await exited(tcp.child);
    }
  });
});


async function until<T>(check: () => Promise<T | null>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
