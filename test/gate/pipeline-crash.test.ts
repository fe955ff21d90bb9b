/**
 * Crash safety of the pipeline: the gate is killed with SIGKILL at random moments during a stream of allowed HTTP
 * executions (20 runs). After every restart the agent retries each request it got no answer for, with the same
 * eventId. Then: no effect ran twice (the loopback server counts hits per request), every answered request has its
 * receipt in the ledger, requests caught mid-flight are recorded as interrupted, and `lattice verify` passes.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { lattice, tempDir } from '../helpers.ts';
import { asAgent, asOperator, exited, newAgent, startGate, type Agent } from './harness.ts';

const RUNS = 20;

describe('pipeline crash safety', () => {
  it(`runs no effect twice and keeps every answered receipt across ${RUNS} SIGKILLs`, async () => {
    const hits = new Map<number, number>();
    const server = createServer((req, res) => {
      const n = Number(/^\/hit\/(\d+)$/.exec(req.url ?? '')?.[1]);
      hits.set(n, (hits.get(n) ?? 0) + 1);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ n }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;

    const home = join(tempDir(), 'home');
    const config = join(tempDir(), 'lattice.toml');
    writeFileSync(config, '[identity]\nmax_ttl = "2h"\n[ledger]\ncheckpoint_interval = "500ms"\n');
    const manifest = `
id = "count.hit"
version = "1.0.0"
description = "Count one hit."
risk = "low"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
required = ["n"]
[request.schema.properties.n]
type = "integer"
minimum = 0
[[sinks.http]]
host = "127.0.0.1"
scheme = "http"
ports = [${port}]
methods = ["POST"]
allow_private = true
[template]
method = "POST"
url = "http://127.0.0.1:${port}/hit/{params.n}"
`;
    let g = await startGate(home, '--config', config);
    assert.equal((await asOperator(g, 'POST', '/api/v1/actions', { manifest, allowUnsigned: true })).status, 201);
    const policy = 'permit (principal in Preset::"sandboxed", action == Action::"count.hit", resource);';
    assert.equal((await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'crash.cedar', text: policy }] })).status, 200);
    const agent = await newAgent(g.admin, 'Ed25519', { ttl: '2h' });

    const answers = new Map<number, Record<string, unknown>>();
    let unanswered: number[] = [];
    let next = 0;
    const send = async (gateSocket: string, n: number, who: Agent) => {
      try {
        const reply = await asAgent(gateSocket, who, 'POST', '/api/v1/actions/count.hit/execute', JSON.stringify({ params: { n }, eventId: `hit-${n}` }));
        if (reply.status === 200 || reply.status === 500) answers.set(n, reply.body);
        else assert.fail(`request ${n}: ${reply.status} ${JSON.stringify(reply.body)}`);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        unanswered.push(n); // the gate died with the request in flight
      }
    };

    let interruptedSeen = 0;
    for (let run = 0; run < RUNS; run++) {
      // First the retries of what the last run left unanswered: each gets its first answer (or interrupted).
      const retry = unanswered;
      unanswered = [];
      for (const n of retry) await send(g.gate, n, agent);
      interruptedSeen += retry.filter((n) => answers.get(n)?.['status'] === 'interrupted').length;
      let stop = false;
      const stream = Promise.all(
        [0, 1, 2, 3].map(async () => {
          while (!stop) await send(g.gate, next++, agent);
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 40 + Math.floor(Math.random() * 400)));
      g.child.kill('SIGKILL');
      await exited(g.child);
      stop = true;
      await stream;
      g = await startGate(home, '--config', config);
    }
    for (const n of unanswered) await send(g.gate, n, agent);
    assert.equal(lattice(['down', '--home', home]).status, 0);
    server.close();

    const twice = [...hits].filter(([, count]) => count > 1);
    assert.deepEqual(twice, [], 'no effect ran twice');
    const db = new Database(join(home, 'lattice.db'), { readonly: true });
    const receipt = db.prepare('SELECT 1 FROM receipts WHERE id = ?').pluck();
    let executed = 0;
    for (const [n, body] of answers) {
      assert.ok(receipt.get(body['receiptId']) !== undefined, `request ${n}'s receipt ${String(body['receiptId'])} is in the ledger`);
      if (body['status'] === 'executed') {
        executed++;
        assert.equal(hits.get(n), 1, `request ${n} executed exactly once`);
      }
    }
    const interrupted = db.prepare(`SELECT count(*) FROM requests WHERE state = 'interrupted'`).pluck().get() as number;
    db.close();
    const verify = lattice(['verify', '--home', home]);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    assert.ok(executed > RUNS, `enough executions to mean something (${executed})`);
    process.stdout.write(`  ${RUNS} SIGKILLs: ${next} requests sent, ${executed} executed exactly once, ${interrupted} interrupted (${interruptedSeen} seen by retries), ${hits.size} distinct hits, none twice\n`);
  });
});
