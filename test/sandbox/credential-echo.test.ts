/**
 * A credential route's key and upstreams that echo requests, for real through `lattice sandbox`, as root and as a
 * normal user: TRACE (Apache's default TraceEnable), an echo endpoint answering the request's headers in its body
 * (plain and gzip-compressed) and in a header. The agent gets none of the key; ordinary requests still carry it.
 * The upstream is a loopback listener of the test's own, the key a made-up one.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { gateAs, latticeAsync, ownedDir, runners, type SandboxHome } from './harness.ts';

for (const runner of runners()) {
  describe(`a credential route's key and an echoing upstream, as ${runner.label}`, () => {
    let gate: SandboxHome;
    let upstream: Server;
    const seen: { method: string; auth: string | undefined }[] = [];
    before(async () => {
      gate = await gateAs(runner);
      upstream = createServer((req, res) => {
        seen.push({ method: req.method ?? '', auth: req.headers.authorization });
        const echo = `${req.method ?? ''} ${req.url ?? ''}\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`).join('\r\n')}\r\n`;
        if (req.method === 'TRACE') return void res.writeHead(200, { 'content-type': 'message/http' }).end(echo);
        if (req.url === '/v1/echo') return void res.writeHead(200, { 'x-echo-auth': String(req.headers.authorization) }).end(echo);
        if (req.url === '/v1/echo-gzip') return void res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(echo));
        res.end('ok');
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    });
    after(async () => {
      upstream.close();
      await gate.stop();
    });

    it('credential-trace: TRACE is refused and an echoed key is overwritten in headers and bodies; plain requests carry it', async () => {
      const ws = ownedDir(runner);
      const key = `sk-rt-not-a-real-key-${Date.now()}`;
      const profile = join(ws, 'profile.toml');
      writeFileSync(profile, `extends = "default"\n[sandbox.agent.credentials.local]\nupstream = "http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1"\nheader = "authorization"\nformat = "Bearer {key}"\nkey_source = "env:RT_FAKE_KEY"\nbase_url_env = "LOCAL_BASE_URL"\n`);
      const script = [
        `curl -s -o ${ws}/trace -w '%{http_code}' -X TRACE "$LOCAL_BASE_URL/x" > ${ws}/trace-code`,
        `curl -s -o ${ws}/track -w '%{http_code}' -X TRACK "$LOCAL_BASE_URL/x" > ${ws}/track-code`,
        `curl -s -D ${ws}/echo-head "$LOCAL_BASE_URL/echo" > ${ws}/echo`,
        `curl -s -H 'accept-encoding: gzip' --compressed "$LOCAL_BASE_URL/echo-gzip" > ${ws}/echo-gzip`,
        `curl -s "$LOCAL_BASE_URL/plain" > ${ws}/plain`,
      ].join('\n');
      seen.length = 0;
      const r = await latticeAsync(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--config', profile, '--', '/bin/sh', '-c', script], { RT_FAKE_KEY: key });
      assert.equal(r.status, 0, r.stderr);
      const read = (name: string) => readFileSync(join(ws, name), 'utf8');
      assert.equal(read('trace-code'), '405');
      assert.match(read('track-code'), /^40[05]$/, 'TRACK went through'); // node:http's parser refuses it (400) before lattice's check (405)
      assert.match(read('trace'), /TRACE is refused/);
      for (const name of ['trace', 'echo-head', 'echo', 'echo-gzip']) {
        assert.ok(!read(name).includes(key.slice(3)), `the key reached the agent in ${name}: ${read(name)}`);
      }
      const stars = '*'.repeat(`Bearer ${key}`.length);
      assert.match(read('echo'), new RegExp(`authorization: \\*{${stars.length}}`), 'the echo is there, its key overwritten');
      assert.match(read('echo-head'), /x-echo-auth: \*+/i);
      assert.match(read('echo-gzip'), /authorization: \*+/);
      assert.equal(read('plain'), 'ok');
      assert.deepEqual(seen.map((s) => s.method), ['GET', 'GET', 'GET'], 'TRACE and TRACK never reached the upstream');
      assert.ok(seen.every((s) => s.auth === `Bearer ${key}`), 'the upstream got the key');
    });
  });
}
