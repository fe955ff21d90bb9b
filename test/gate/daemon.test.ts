/** The gate as a real process on a temporary home, driven over its sockets and through the CLI. */
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, latticeJson, tempDir } from '../helpers.ts';
import { call, exited, startGate, type Reply } from './harness.ts';

describe('lattice up / status / down', () => {
  it('serves both sockets with private modes, reports status, and stops cleanly with a final checkpoint', async () => {
    const home = join(tempDir(), 'home');
    const { child, gate, admin } = await startGate(home);
    assert.equal(statSync(join(home, 'run')).mode & 0o777, 0o700);
    for (const socket of [gate, admin]) assert.equal(statSync(socket).mode & 0o777, 0o600, socket);

    const status = latticeJson<{ running: boolean; pid: number; sockets: { gate: string }; ledger: { head: { seq: number } }; counts: { peers: number } }>(['status', '--home', home]);
    assert.equal(status.status, 0);
    assert.equal(status.json.running, true);
    assert.equal(status.json.pid, child.pid);
    assert.equal(status.json.sockets.gate, gate);
    assert.equal(status.json.counts.peers, 0);

    const down = lattice(['down', '--home', home]);
    assert.equal(down.status, 0, down.stderr);
    assert.equal(await exited(child), 0);
    assert.equal(existsSync(gate), false);
    const verify = latticeJson<{ ok: boolean; unsignedTail: number }>(['verify', '--home', home]);
    assert.equal(verify.json.ok, true);
    assert.equal(verify.json.unsignedTail, 0, 'lattice down writes a final checkpoint');
    const stopped = latticeJson<{ events: { type: string }[] }>(['audit', '--home', home, '--type', 'gate.stopped']);
    assert.equal(stopped.json.events.length, 1);

    const after = latticeJson<{ running: boolean }>(['status', '--home', home]);
    assert.equal(after.status, 1);
    assert.equal(after.json.running, false);
  });

  it('keeps operator routes off the agent socket, and refuses bad requests with their own codes, each recorded', async () => {
    const home = join(tempDir(), 'home');
    const { gate, admin } = await startGate(home);
    const agent = { socketPath: gate };
    const cases: [Promise<Reply>, number, string][] = [
      [call(agent, 'GET', '/api/v1/admin/status'), 404, 'NOT_FOUND'],
      [call(agent, 'POST', '/api/v1/admin/shutdown', '{}'), 404, 'NOT_FOUND'],
      [call(agent, 'DELETE', '/api/v1/health'), 405, 'METHOD_NOT_ALLOWED'],
      [call({ socketPath: admin }, 'POST', '/api/v1/admin/shutdown', '{not json'), 400, 'BAD_REQUEST'],
      [call({ socketPath: admin }, 'POST', '/api/v1/admin/shutdown', 'x', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [call({ socketPath: admin }, 'POST', '/api/v1/admin/shutdown', Buffer.alloc(1024 * 1024 + 1, 'a')), 413, 'BODY_TOO_LARGE'],
    ];
    for (const [reply, status, code] of cases) {
      const r = await reply;
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, code);
    }
    // None of the refused shutdowns stopped the gate.
    assert.equal((await call(agent, 'GET', '/api/v1/health')).status, 200);
    const refused = latticeJson<{ events: { payload: { code: string } }[] }>(['audit', '--home', home, '--type', 'request.refused']);
    assert.deepEqual(refused.json.events.map((e) => e.payload.code).sort(), cases.map(([, , code]) => code).sort());
    assert.equal(lattice(['down', '--home', home]).status, 0);
  });

  it('refuses a second gate on the same home, and replaces the stale sockets of a killed one', async () => {
    const home = join(tempDir(), 'home');
    const first = await startGate(home);
    const second = lattice(['up', '--home', home, '--yes']);
    assert.equal(second.status, 2);
    assert.match(second.stderr, /already listening/);
    first.child.kill('SIGKILL');
    await exited(first.child);
    assert.equal(existsSync(first.gate), true, 'a killed gate leaves its socket file behind');
    const again = await startGate(home);
    assert.equal((await call({ socketPath: again.gate }, 'GET', '/api/v1/health')).status, 200);
    assert.equal(lattice(['down', '--home', home]).status, 0);
    assert.equal(latticeJson<{ ok: boolean }>(['verify', '--home', home]).json.ok, true);
  });

  it('starts in the background with --detach and stops with down', () => {
    const home = join(tempDir(), 'home');
    const up = latticeJson<{ pid: number; log: string }>(['up', '--home', home, '--detach']);
    assert.equal(up.status, 0, up.stderr);
    try {
      process.kill(up.json.pid, 0);
    } finally {
      assert.equal(lattice(['down', '--home', home]).status, 0);
    }
    assert.equal(latticeJson<{ running: boolean }>(['status', '--home', home]).json.running, false);
  });

  it('detach-over-running-gate: refuses to report a second gate as running when one already answers', () => {
    const home = join(tempDir(), 'home');
    const up = latticeJson<{ pid: number }>(['up', '--home', home, '--detach']);
    assert.equal(up.status, 0, up.stderr);
    try {
      const second = lattice(['up', '--home', home, '--detach']);
      assert.equal(second.status, 2, second.stdout);
      assert.match(second.stderr, new RegExp(`a gate is already running for .* \\(pid ${up.json.pid}\\); stop it with \`lattice down\``));
      assert.equal(latticeJson<{ pid: number }>(['status', '--home', home]).json.pid, up.json.pid, 'the first gate still runs');
    } finally {
      assert.equal(lattice(['down', '--home', home]).status, 0);
    }
  });

  it('listens on loopback TCP with --listen and refuses other addresses without TLS', async () => {
    const home = join(tempDir(), 'home');
    const refused = lattice(['up', '--home', home, '--yes', '--listen', '0.0.0.0:7443']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /without TLS/);
    const { admin } = await startGate(home, '--listen', '127.0.0.1:0');
    const status = await call({ socketPath: admin }, 'GET', '/api/v1/admin/status');
    const port = Number(String(status.body['listen']).split(':').pop());
    assert.ok(port > 0);
    assert.equal((await call({ port }, 'GET', '/api/v1/health')).status, 200);
    assert.equal((await call({ port }, 'GET', '/api/v1/admin/status')).status, 404, 'operator routes are not on TCP');
    assert.equal(lattice(['down', '--home', home]).status, 0);
  });

  it('refuses a request that arrives too slowly (slowloris) or is not HTTP, and records both', async () => {
    const home = join(tempDir(), 'home');
    const config = join(tempDir(), 'lattice.toml');
    writeFileSync(config, '[gate]\nrequest_timeout = "1s"\n');
    const { gate } = await startGate(home, '--config', config);
    const raw = (data: string, waitMs: number) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(gate);
        let answer = '';
        socket.on('data', (c: Buffer) => (answer += c.toString()));
        socket.on('close', () => resolve(answer));
        socket.on('error', reject);
        socket.write(data);
        setTimeout(() => socket.destroy(), waitMs);
      });
    const started = Date.now();
    const slow = await raw('GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ', 8000);
    assert.match(slow, /^HTTP\/1\.1 408 /);
    assert.match(slow, /"code":"REQUEST_TIMEOUT"/);
    assert.ok(Date.now() - started < 6000, 'the slow request is cut off near the configured timeout');
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n', 3000);
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    assert.match(garbage, /"code":"BAD_REQUEST"/);
    const codes = latticeJson<{ events: { payload: { code: string } }[] }>(['audit', '--home', home, '--type', 'request.refused']).json.events.map((e) => e.payload.code);
    assert.deepEqual(codes.sort(), ['BAD_REQUEST', 'REQUEST_TIMEOUT']);
    assert.equal((await call({ socketPath: gate }, 'GET', '/api/v1/health')).status, 200);
    assert.equal(lattice(['down', '--home', home]).status, 0);
  });

  it('refuses a configuration with an unknown key, naming it', () => {
    const home = join(tempDir(), 'home');
    const file = join(tempDir(), 'lattice.toml');
    writeFileSync(file, '[gate]\nlistne = "127.0.0.1:1"\n');
    const result = lattice(['up', '--home', home, '--config', file]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /unknown key gate\.listne \(did you mean gate\.listen\?\)/);
  });
});
