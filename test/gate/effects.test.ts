/**
 * Effects performed by the host, end to end through the gate: an HTTP call with an injected secret that reaches
 * the test server and nothing else; hosts off the allowlist and names resolving to loopback refused; URLs whose
 * path a param or the parser would change refused; fs.write traversal, absolute paths, deny globs and symlink
 * escapes refused, and so is an fs.read of a hard-linked file. Every target is a loopback listener or a directory
 * the test made.
 */
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lattice, tempDir } from '../helpers.ts';
import { asAgent, asOperator, gate, newAgent, type Agent, type Reply, type TestGate } from './harness.ts';

const SECRET = 'lt-test-secret-6f1d9c2b8a';

function execute(g: TestGate, agent: Agent, action: string, params: unknown): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', `/api/v1/actions/${action}/execute`, JSON.stringify({ params }));
}

/** A loopback server that records what it received and echoes the request headers back (a hostile upstream). */
async function echoServer(): Promise<{ server: Server; port: number; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': String(req.headers['x-api-key']) });
      res.end(JSON.stringify({ ok: true, youSent: req.headers }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function manifest(id: string, host: string, port: number, allowPrivate: boolean, provider = 'http.template'): string {
  return `
id = "${id}"
version = "1.0.0"
description = "Notify a local service."
risk = "low"
[provider]
builtin = "${provider}"
[request.schema]
type = "object"
${provider === 'http.template' ? 'required = ["text"]\n[request.schema.properties.text]\ntype = "string"' : 'required = ["method", "url"]\n[request.schema.properties.method]\ntype = "string"\n[request.schema.properties.url]\ntype = "string"'}
[[sinks.http]]
host = "${host}"
scheme = "http"
ports = [${port}]
methods = ["POST"]
allow_private = ${allowPrivate}
[[secrets]]
name = "local"
header = "x-api-key"
format = "Key {secret}"
secret = "LOCAL_KEY"
${provider === 'http.template' ? `[template]\nmethod = "POST"\nurl = "http://${host}:${port}/notify"\n[template.body]\ntext = "{params.text}"` : ''}
`;
}

async function install(g: TestGate, text: string): Promise<void> {
  const reply = await asOperator(g, 'POST', '/api/v1/actions', { manifest: text, allowUnsigned: true });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
}

async function permitAll(g: TestGate, actions: string[]): Promise<void> {
  const text = `permit (principal in Preset::"sandboxed", action in [${actions.map((a) => `Action::"${a}"`).join(', ')}], resource);`;
  const reply = await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'effects.cedar', text }] });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
}

/** Every byte the home holds on disk (ledger, WAL, logs, state), to search for a leaked secret. */
function homeBytes(dir: string): string {
  let all = '';
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) all += homeBytes(path);
    else if (entry.isFile()) all += readFileSync(path).toString('latin1');
  }
  return all;
}

describe('host effects through the gate', () => {
  it('injects the secret into the request only: never in the answer, the ledger, an error or the audit', async () => {
    const upstream = await echoServer();
    const g = await gate();
    try {
      await install(g, manifest('local.notify', '127.0.0.1', upstream.port, true));
      assert.equal((await asOperator(g, 'POST', '/api/v1/secrets/LOCAL_KEY', { value: SECRET })).status, 200);
      await permitAll(g, ['local.notify']);
      const agent = await newAgent(g.admin);
      const reply = await execute(g, agent, 'local.notify', { text: 'build passed' });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(upstream.seen.length, 1);
      assert.equal(upstream.seen[0]?.['x-api-key'], `Key ${SECRET}`, 'the secret reached the server');
      const output = reply.body['output'] as { status: number; body: { youSent: Record<string, string> }; headers: Record<string, string> };
      assert.equal(output.status, 200);
      assert.match(output.body.youSent['x-api-key'] ?? '', /^(Key )?\[REDACTED\]$/, 'echoed back, it is redacted');
      assert.match(output.headers['x-request-id'] ?? '', /^(Key )?\[REDACTED\]$/);
      assert.ok(!JSON.stringify(reply.body).includes(SECRET));

      upstream.server.close();
      const failed = await execute(g, agent, 'local.notify', { text: 'nobody listens' });
      assert.equal(failed.status, 502);
      assert.equal(failed.body['status'], 'failed');
      assert.equal((failed.body['error'] as { code: string }).code, 'EFFECT_FAILED');
      assert.ok(!JSON.stringify(failed.body).includes(SECRET));

      const audit = lattice(['audit', '--home', g.home, '--limit', '1000', '--json']);
      assert.ok(!audit.stdout.includes(SECRET));
      assert.equal(lattice(['down', '--home', g.home]).status, 0);
      assert.ok(!homeBytes(g.home).includes(SECRET), 'the secret is nowhere in the home except encrypted');
      assert.equal(lattice(['verify', '--home', g.home]).status, 0);
    } finally {
      upstream.server.close();
    }
  });

  it('refuses a host off the allowlist at plan time, and a name resolving to loopback unless the sink allows private addresses', async () => {
    const upstream = await echoServer();
    const g = await gate();
    try {
      await install(g, manifest('local.raw', '127.0.0.1', upstream.port, true, 'http.request'));
      await install(g, manifest('named.notify', 'localhost', upstream.port, false));
      await install(g, manifest('named.private', 'localhost', upstream.port, true));
      assert.equal((await asOperator(g, 'POST', '/api/v1/secrets/LOCAL_KEY', { value: SECRET })).status, 200);
      await permitAll(g, ['local.raw', 'named.notify', 'named.private']);
      const agent = await newAgent(g.admin);

      const off = { method: 'POST', url: `http://127.0.0.2:${upstream.port}/x` };
      const canI = await asAgent(g.gate, agent, 'POST', '/api/v1/can-i', JSON.stringify({ action: 'local.raw', params: off }));
      assert.equal(canI.body['denialReason'], 'SINK_DENIED');
      const offList = await execute(g, agent, 'local.raw', off);
      assert.equal(offList.status, 403);
      assert.equal(offList.body['denialReason'], 'SINK_DENIED');
      const onList = await execute(g, agent, 'local.raw', { method: 'POST', url: `http://127.0.0.1:${upstream.port}/x` });
      assert.equal(onList.status, 200, 'the same action reaches an allowed host');
      assert.equal((await execute(g, agent, 'local.raw', { method: 'GET', url: `http://127.0.0.1:${upstream.port}/x` })).body['denialReason'], 'SINK_DENIED', 'method not allowed');

      const named = await execute(g, agent, 'named.notify', { text: 'x' });
      assert.equal(named.status, 403, JSON.stringify(named.body));
      assert.equal(named.body['denialReason'], 'SINK_DENIED');
      assert.match(String(named.body['message']), /127\.0\.0\.1|::1|private|loopback|public/);
      assert.equal(upstream.seen.length, 1, 'the refused request never reached the server');
      const allowed = await execute(g, agent, 'named.private', { text: 'x' });
      assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
      assert.equal(upstream.seen.length, 2);
      assert.equal(lattice(['down', '--home', g.home]).status, 0);
    } finally {
      upstream.server.close();
    }
  });

  it('template-dotdot-repo: a path param cannot make the URL sent differ from the one policy saw; an ordinary one is sent', async () => {
    const urls: string[] = [];
    const server = createServer((req, res) => {
      urls.push(req.url ?? '');
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const g = await gate();
    try {
      // Like github.issue.create, but without the repo pattern: the sink check alone must hold.
      const template = `
id = "local.issue"
version = "1.0.0"
description = "Open an issue on a local service."
risk = "low"
[provider]
builtin = "http.template"
[request.schema]
type = "object"
required = ["owner", "repo"]
[request.schema.properties.owner]
type = "string"
[request.schema.properties.repo]
type = "string"
[[sinks.http]]
host = "127.0.0.1"
scheme = "http"
ports = [${port}]
methods = ["POST"]
allow_private = true
[template]
method = "POST"
url = "http://127.0.0.1:${port}/repos/{params.owner}/{params.repo}/issues"
[template.body]
title = "t"
`;
      await install(g, template);
      await install(g, manifest('local.raw', '127.0.0.1', port, true, 'http.request'));
      await permitAll(g, ['local.issue', 'local.raw']);
      const agent = await newAgent(g.admin);
      const refused: [string, unknown, RegExp][] = [
        ['local.issue', { owner: 'acme', repo: '..' }, /\. or \.\. segment/],
        ['local.issue', { owner: '.', repo: 'r' }, /\. or \.\. segment/],
        ['local.issue', { owner: 'acme', repo: '../../admin' }, /encoded slash/],
        ['local.raw', { method: 'POST', url: `http://127.0.0.1:${port}/public/../admin` }, /\. or \.\. segment/],
        ['local.raw', { method: 'POST', url: `http://127.0.0.1:${port}/public/%2e%2e/admin` }, /\. or \.\. segment/],
      ];
      for (const [action, params, why] of refused) {
        const reply = await execute(g, agent, action, params);
        assert.equal(reply.status, 403, `${JSON.stringify(params)}: ${JSON.stringify(reply.body)}`);
        assert.equal(reply.body['denialReason'], 'SINK_DENIED');
        assert.match(String(reply.body['message']), why);
      }
      assert.deepEqual(urls, [], 'no refused request reached the server');
      const ok = await execute(g, agent, 'local.issue', { owner: 'acme', repo: '.github' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.deepEqual(urls, ['/repos/acme/.github/issues']);
      assert.equal(lattice(['down', '--home', g.home]).status, 0);
    } finally {
      server.close();
    }
  });

  it('refuses fs.write traversal, absolute paths, deny globs and symlink escapes, and writes inside the root', async () => {
    const g = await gate();
    await permitAll(g, ['fs.write', 'fs.read']);
    const agent = await newAgent(g.admin);
    const root = join(g.home, 'workspace');
    const outside = tempDir('lattice-outside-');
    mkdirSync(join(root, 'src'), { recursive: true });
    symlinkSync(outside, join(root, 'escape'));
    writeFileSync(join(outside, 'target.txt'), 'untouched');
    symlinkSync(join(outside, 'target.txt'), join(root, 'link.txt'));

    const refused: [string, RegExp][] = [
      ['../escaped.txt', /\.\./],
      ['src/../../escaped.txt', /\.\./],
      ['/etc/lattice-test-absolute', /absolute/],
      ['.git/config', /denied by/],
      ['src/.env.local', /denied by/],
      ['.ssh/authorized_keys', /denied by/],
      ['pkg/.aws/credentials', /denied by/],
      ['app/.ENV', /denied by/],
      ['escape/pwned.txt', /symlink/],
      ['link.txt', /symlink|not a regular file/],
    ];
    for (const [path, why] of refused) {
      const reply = await execute(g, agent, 'fs.write', { path, content: 'pwned' });
      assert.equal(reply.status, 403, `${path}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body['denialReason'], 'SINK_DENIED', path);
      assert.match(String(reply.body['message']), why, path);
    }
    assert.deepEqual(readdirSync(outside).sort(), ['target.txt']);
    assert.equal(readFileSync(join(outside, 'target.txt'), 'utf8'), 'untouched');
    assert.equal(existsSync(join(g.home, 'escaped.txt')), false);

    const ok = await execute(g, agent, 'fs.write', { path: './src/./new/file.txt', content: 'inside' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(readFileSync(join(root, 'src', 'new', 'file.txt'), 'utf8'), 'inside');
    const read = await execute(g, agent, 'fs.read', { path: 'src/new/file.txt' });
    assert.equal((read.body['output'] as { content: string }).content, 'inside');
    assert.equal((await execute(g, agent, 'fs.read', { path: 'link.txt' })).body['denialReason'], 'SINK_DENIED');
    writeFileSync(join(root, 'src', '.env'), 'API_KEY=hunter2\n');
    linkSync(join(root, 'src', '.env'), join(root, 'src', 'notes.txt'));
    const linked = await execute(g, agent, 'fs.read', { path: 'src/notes.txt' });
    assert.equal(linked.body['denialReason'], 'SINK_DENIED', `fs-read-hardlink: ${JSON.stringify(linked.body)}`);
    assert.ok(!JSON.stringify(linked.body).includes('hunter2'));
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
    assert.equal(lattice(['verify', '--home', g.home]).status, 0);
  });
});
