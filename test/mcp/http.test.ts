/**
 * `lattice mcp --http` with the official SDK's Streamable HTTP client and raw requests that set any header: a
 * foreign Host or a present, foreign Origin is answered 403 and only requests with the bearer secret are served,
 * all before anything is kept for the request (thousands of refused initializes leave memory flat); an unknown or
 * terminated session answers 404; a held call is withdrawn when the client cancels it or goes away; and the
 * secret's file must be private.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { lattice, tempDir } from '../helpers.ts';
import { exited, type TestGate } from '../gate/harness.ts';
import { approveWhenHeld, assertWithdrawn, heldFor, httpClient, httpServer, mcpGate, raw, rawInitialize, stopServer, text, tokenBeside } from './harness.ts';

let g: TestGate;
let credential: string;
before(async () => {
  ({ g, credential } = await mcpGate());
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

describe('lattice mcp over Streamable HTTP', () => {
  it('mcp-http-no-secret: refuses a client without the bearer secret or with a wrong one, and serves the one that has it', async () => {
    const { child, url } = await httpServer(credential, ['--http', '127.0.0.1:0']);
    try {
      // Any local process, with nothing but the address.
      await assert.rejects(httpClient(url), (e: unknown) => (e as { code?: number }).code === 401, 'a client without the secret is refused');
      const tokenFile = tokenBeside(credential);
      assert.equal(statSync(tokenFile).mode & 0o777, 0o600, 'the secret is made beside the credential, private');
      const token = readFileSync(tokenFile, 'utf8').trim();
      assert.match(token, /^[A-Za-z0-9_-]{43}$/);

      // A wrong secret, the secret under another scheme.
      for (const headers of [{ Authorization: `Bearer ${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}` }, { Authorization: `Basic ${token}` }]) {
        await assert.rejects(httpClient(url, headers), (e: unknown) => (e as { code?: number }).code === 401, `refused: ${JSON.stringify(headers)}`);
      }
      const wrong = await rawInitialize(url, { authorization: 'Bearer not-the-secret' });
      assert.equal(wrong.status, 401);
      assert.match(String(wrong.headers['www-authenticate']), /^Bearer realm="lattice mcp", error="invalid_token"$/);
      assert.match(String((await rawInitialize(url, {})).headers['www-authenticate']), /^Bearer realm="lattice mcp"$/);

      const client = await httpClient(url, { Authorization: `Bearer ${token}` });
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
      assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'over http' } })), /over http/);
      await client.close();

      // With the secret, a foreign Host header is still refused (DNS rebinding).
      const target = new URL(url);
      const rebinding = await rawInitialize(url, { host: `evil.example:${target.port}`, authorization: `Bearer ${token}` });
      assert.equal(rebinding.status, 403, 'a foreign Host header is refused (DNS rebinding)');
      const outside = lattice(['mcp', '--credential', credential, '--http', '0.0.0.0:7801']);
      assert.notEqual(outside.status, 0);
      assert.match(outside.stderr, /loopback/);
    } finally {
      await stopServer(child);
    }
  });

  it('mcp-http-foreign-origin: answers 403 to a present, foreign Origin before any session exists; no Origin and its own loopback origins are served', async () => {
    const { child, url } = await httpServer(credential, ['--http', '127.0.0.1:0']);
    try {
      const port = Number(new URL(url).port);
      const authorization = `Bearer ${readFileSync(tokenBeside(credential), 'utf8').trim()}`;
      const foreign = ['http://evil.example', 'null', `http://127.0.0.1:${port + 1}`, `https://127.0.0.1:${port}`, `http://127.0.0.1:${port}.evil.example`, `http://localhost:${port}, http://evil.example`];
      for (const origin of foreign) {
        const refused = await rawInitialize(url, { authorization, origin });
        assert.equal(refused.status, 403, `Origin ${origin} is refused`);
        assert.equal(refused.headers['mcp-session-id'], undefined, 'and no session is made for it');
      }
      assert.equal((await rawInitialize(url, { origin: 'http://evil.example' })).status, 403, 'Host and Origin are checked before the secret');
      await assert.rejects(httpClient(url, { Authorization: authorization, Origin: 'http://evil.example' }), (e: unknown) => (e as { code?: number }).code === 403, 'the official client is refused too');

      for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`, `HTTP://LOCALHOST:${port}`]) {
        const served = await rawInitialize(url, { authorization, origin });
        assert.equal(served.status, 200, `Origin ${origin} is this server's own`);
        assert.match(String(served.headers['mcp-session-id']), /^[0-9a-f-]{36}$/);
      }
      for (const headers of [{ Authorization: authorization }, { Authorization: authorization, Origin: `http://localhost:${port}` }]) {
        const client = await httpClient(url, headers);
        assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'same origin' } })), /same origin/);
        await client.close();
      }
    } finally {
      await stopServer(child);
    }
  });

  it('mcp-http-session-404: an unknown or terminated session id answers 404 (the client initializes again); a request without one that is no initialize 400', async () => {
    const { child, url } = await httpServer(credential, ['--http', '127.0.0.1:0']);
    try {
      const headers = { Authorization: `Bearer ${readFileSync(tokenBeside(credential), 'utf8').trim()}` };
      const client = await httpClient(url, headers);
      const transport = client.transport as StreamableHTTPClientTransport;
      const sessionId = transport.sessionId ?? assert.fail('no session id');
      assert.ok((await client.listTools()).tools.length > 0, 'the session serves');
      await transport.terminateSession();
      await client.close();

      const resumed = new Client({ name: 'lattice-test', version: '1.0.0' });
      await resumed.connect(new StreamableHTTPClientTransport(new URL(url), { sessionId, requestInit: { headers } }));
      await assert.rejects(resumed.listTools(), (e: unknown) => (e as { code?: number }).code === 404, 'a terminated session is not found');
      await resumed.close();

      const session = { ...headers, 'mcp-protocol-version': '2025-11-25' };
      const list = { jsonrpc: '2.0', id: 7, method: 'tools/list' };
      for (const [method, sid] of [['POST', 'no-such-session'], ['GET', 'no-such-session'], ['DELETE', 'no-such-session'], ['POST', sessionId]] as const) {
        const reply = await raw(url, method, { ...session, 'mcp-session-id': sid }, method === 'POST' ? list : undefined);
        assert.equal(reply.status, 404, `${method} with session ${sid}`);
        assert.equal((JSON.parse(reply.text) as { error: { code: number } }).error.code, -32001);
      }
      assert.equal((await raw(url, 'GET', session)).status, 400, 'a GET needs a session');
      assert.equal((await raw(url, 'POST', session, list)).status, 400, 'so does anything but initialize');
      const fresh = await httpClient(url, headers); // the client's way back after a 404: a new session
      assert.ok((await fresh.listTools()).tools.length > 0);
      await fresh.close();
    } finally {
      await stopServer(child);
    }
  });

  it('mcp-http-refused-leak: thousands of refused initialize requests (a foreign Host, a bad Accept) keep nothing, so memory stays flat', async () => {
    const { child, url } = await httpServer(credential, ['--http', '127.0.0.1:0']);
    try {
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
      const authorization = `Bearer ${readFileSync(tokenBeside(credential), 'utf8').trim()}`;
      const refusals = [
        { request: { authorization, host: `evil.example:${new URL(url).port}` }, status: 403 }, // refused by lattice before any object is made
        { request: { authorization, accept: 'application/json' }, status: 406 }, // refused by the SDK transport, which is then closed
      ];
      const send = async (count: number) => {
        for (let sent = 0; sent < count; sent += 25) {
          const batch = Array.from({ length: 25 }, (_, i) => refusals[(sent + i) % refusals.length]!);
          const replies = await Promise.all(batch.map((r) => rawInitialize(url, r.request)));
          replies.forEach((reply, i) => assert.equal(reply.status, batch[i]!.status));
        }
      };
      await send(1500); // the heap grows to its working size first
      const before = rss();
      await send(6000);
      const grown = rss() - before;
      // Before the fix each refused initialize kept a transport and an MCP Server (~33 KiB): 6,000 grew RSS ~200 MiB.
      assert.ok(grown < 40, `RSS grew ${grown.toFixed(1)} MiB over 6,000 refused initialize requests`);
      const client = await httpClient(url, { Authorization: authorization });
      assert.ok((await client.listTools()).tools.length > 0, 'and it still serves');
      await client.close();
    } finally {
      await stopServer(child);
    }
  });

  it('mcp-http-cancel-held: a held call is withdrawn when the client cancels it, goes away or terminates its session, and when the server stops', async () => {
    const { child, url } = await httpServer(credential, ['--http', '127.0.0.1:0']);
    const clients: Client[] = [];
    try {
      const headers = { Authorization: `Bearer ${readFileSync(tokenBeside(credential), 'utf8').trim()}` };
      const connect = async () => {
        const client = await httpClient(url, headers);
        clients.push(client);
        return client;
      };
      const fsWrite = (client: Client, path: string, signal?: AbortSignal) =>
        client.callTool({ name: 'fs_write', arguments: { path, content: 'nobody waits' } }, undefined, { timeout: 60_000, ...(signal !== undefined && { signal }) });

      const cancelling = await connect();
      const cancel = new AbortController();
      const cancelled = fsWrite(cancelling, 'http-cancelled.txt', cancel.signal);
      const held = await heldFor(g, 'http-cancelled.txt');
      cancel.abort('changed my mind');
      await assert.rejects(cancelled, /changed my mind/);
      await assertWithdrawn(g, held, 'http-cancelled.txt', /^the MCP client cancelled the call: changed my mind$/);
      const kept = fsWrite(cancelling, 'http-kept.txt'); // the legitimate case: a call nobody cancels runs once approved
      await approveWhenHeld(g, 'http-kept.txt');
      assert.notEqual((await kept).isError, true);
      assert.equal(readFileSync(join(g.home, 'workspace', 'http-kept.txt'), 'utf8'), 'nobody waits');
      await cancelling.close();

      const leaving = await connect();
      const dropped = fsWrite(leaving, 'http-dropped.txt');
      const heldDropped = await heldFor(g, 'http-dropped.txt');
      await leaving.close(); // aborts its response streams, sends no cancellation
      await assert.rejects(dropped);
      await assertWithdrawn(g, heldDropped, 'http-dropped.txt', /^the MCP client cancelled the call: the client closed the response stream$/);

      const terminating = await connect();
      const terminated = fsWrite(terminating, 'http-terminated.txt');
      const heldTerminated = await heldFor(g, 'http-terminated.txt');
      await (terminating.transport as StreamableHTTPClientTransport).terminateSession();
      await assertWithdrawn(g, heldTerminated, 'http-terminated.txt', /^the MCP client cancelled the call( or went away|: the client closed the response stream)$/);
      await terminating.close();
      await assert.rejects(terminated);

      const staying = await connect();
      const stranded = fsWrite(staying, 'http-stopped.txt');
      const heldStopped = await heldFor(g, 'http-stopped.txt');
      child.kill('SIGTERM'); // the server stops with a client connected and a call held
      const stopped = await Promise.race([exited(child), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
      assert.equal(stopped, 0, 'it withdraws the held call, closes its connections and exits');
      await assertWithdrawn(g, heldStopped, 'http-stopped.txt', /^the MCP server stopped$/);
      await assert.rejects(stranded);
    } finally {
      await Promise.allSettled(clients.map((client) => client.close()));
      await stopServer(child);
    }
  });

  it('mcp-http-token-file: refuses a secret file others may read, a symbolic link, or one that holds no secret', () => {
    const dir = tempDir();
    const open = join(dir, 'open.token');
    writeFileSync(open, `${'A'.repeat(43)}\n`, { mode: 0o644 });
    const linked = join(dir, 'linked.token');
    symlinkSync(open, linked);
    const short = join(dir, 'short.token');
    writeFileSync(short, 'secret\n', { mode: 0o600 });
    const cases: [string, RegExp][] = [
      [open, /accessible to group or others \(mode 0644\); run `chmod 600/],
      [linked, /is a symbolic link/],
      [short, /is not an MCP bearer secret/],
    ];
    for (const [file, message] of cases) {
      const r = lattice(['mcp', '--credential', credential, '--http', '127.0.0.1:0', '--token-file', file]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /A{43}/, 'the secret is never printed');
    }
  });
});
