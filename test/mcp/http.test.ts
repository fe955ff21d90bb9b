/**
 * `lattice mcp --http` with the official SDK's Streamable HTTP client and raw requests that set any header: only
 * requests with the bearer secret are served, a foreign Host is refused (DNS rebinding), and the secret's file must
 * be private.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lattice, tempDir } from '../helpers.ts';
import { exited, type TestGate } from '../gate/harness.ts';
import { httpClient, httpServer, mcpGate, rawInitialize, text, tokenBeside } from './harness.ts';

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
      for (const headers of [{ Authorization: `Bearer ${token.slice(0, -1)}A` }, { Authorization: `Basic ${token}` }]) {
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
      child.kill('SIGTERM');
      await exited(child);
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
