/**
 * `lattice mcp` with a real MCP client (the official SDK's Client, spawning the built CLI over stdio, and over
 * Streamable HTTP): the tools are the actions the agent may use, with annotations from risk; a call that is
 * allowed returns the output, a denied one a tool error with its conditions, a held one sends progress until an
 * operator approves and then returns the output; the list follows policy changes; no approve/deny tools exist.
 * And `lattice mcp install` for each client: merged into existing configuration, never over a broken file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { parse as parseToml } from 'smol-toml';
import { CLI, ROOT, freePort, lattice, latticeJson, tempDir } from '../helpers.ts';
import { asOperator, exited, gate, type TestGate } from '../gate/harness.ts';

const POLICY = `@id("echo")
permit (principal in Preset::"sandboxed", action == Action::"echo", resource) when { !(context.params has message && context.params.message == "forbidden") };
@id("writes-held")
@approval("required")
permit (principal in Preset::"sandboxed", action == Action::"fs.write", resource);`;

let g: TestGate;
let credential: string;
before(async () => {
  g = await gate();
  assert.equal((await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'mcp.cedar', text: POLICY }] })).status, 200);
  credential = join(tempDir(), 'credential.json');
  const enrolled = latticeJson(['enroll', '--home', g.home, '--name', 'mcp-agent', '--type', 'claude-code', '--workspace', 'ws-mcp', '--out', credential, '--json']);
  assert.equal(enrolled.status, 0, enrolled.stderr);
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') e[k] = v;
  return e;
}

async function stdioClient(): Promise<Client> {
  const client = new Client({ name: 'lattice-test', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--credential', credential], env: env(), stderr: 'pipe' }));
  return client;
}

const text = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

async function approveWhenHeld(path: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const held = ((await asOperator(g, 'GET', '/api/v1/approvals')).body['approvals'] as { approvalId: string; planSha256: string }[]).find((a) => JSON.stringify(a).includes(path));
    if (held !== undefined) {
      const approved = await asOperator(g, 'POST', `/api/v1/approvals/${held.approvalId}/approve`, { planSha256: held.planSha256 });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      return;
    }
    if (Date.now() > deadline) throw new Error('nothing was held');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('lattice mcp over stdio', () => {
  it('lists the usable actions as tools with schemas and annotations, and no way to approve or deny', async () => {
    const client = await stdioClient();
    try {
      assert.equal(client.getServerVersion()?.name, 'lattice');
      assert.equal(client.getServerCapabilities()?.tools?.listChanged, true);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'fs_write'], 'only what a policy lets this agent use');
      const echo = tools.find((t) => t.name === 'echo')!;
      assert.equal(echo.inputSchema.type, 'object');
      assert.ok(echo.inputSchema.properties !== undefined && 'message' in echo.inputSchema.properties);
      assert.equal(echo.annotations?.readOnlyHint, true);
      assert.equal(echo.annotations?.destructiveHint, false);
      assert.match(tools.find((t) => t.name === 'fs_write')!.description ?? '', /waits for a human approval/);
      assert.ok(!tools.some((t) => /approv|deny/i.test(t.name)));
    } finally {
      await client.close();
    }
  });

  it('calls an allowed action, a denied one (a tool error with its conditions) and a held one that an operator approves', async () => {
    const client = await stdioClient();
    try {
      const allowed = await client.callTool({ name: 'echo', arguments: { message: 'hello mcp' } });
      assert.notEqual(allowed.isError, true);
      assert.match(text(allowed), /hello mcp/);

      const denied = await client.callTool({ name: 'echo', arguments: { message: 'forbidden' } });
      assert.equal(denied.isError, true);
      assert.match(text(denied), /denied \(CONDITIONS_DENIED by policy echo\)/);
      assert.match(text(denied), /conditions:/);

      const progress: string[] = [];
      const held = client.callTool({ name: 'fs_write', arguments: { path: 'mcp-approved.txt', content: 'via mcp' } }, undefined, {
        onprogress: (p) => progress.push(p.message ?? ''),
        timeout: 60_000,
      });
      await approveWhenHeld('mcp-approved.txt');
      const written = await held;
      assert.notEqual(written.isError, true, text(written));
      assert.ok(progress.length >= 1, 'progress while waiting');
      assert.match(progress[0]!, /waiting for a human to approve fs\.write/);

      const unknown = await client.callTool({ name: 'http_request', arguments: {} });
      assert.equal(unknown.isError, true);
    } finally {
      await client.close();
    }
  });

  it('tells the client the list changed when policies change', async () => {
    const client = await stdioClient();
    try {
      let changed = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
      assert.ok(!(await client.listTools()).tools.some((t) => t.name === 'fs_read'));
      const more = `${POLICY}\n@id("reads")\npermit (principal in Preset::"sandboxed", action == Action::"fs.read", resource);`;
      assert.equal((await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'mcp.cedar', text: more }] })).status, 200);
      const deadline = Date.now() + 10_000;
      while (changed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(changed >= 1, 'notifications/tools/list_changed');
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'fs_read'));
      assert.equal((await asOperator(g, 'POST', '/api/v1/policies', { files: [{ name: 'mcp.cedar', text: POLICY }] })).status, 200);
    } finally {
      await client.close();
    }
  });
});

/** Starts `lattice mcp --http` on `address` and resolves with its URL once it serves. */
async function httpServer(args: readonly string[]): Promise<{ child: ReturnType<typeof spawn>; url: string }> {
  const child = spawn(process.execPath, [CLI, 'mcp', '--credential', credential, ...args], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stderr);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`lattice mcp exited ${code}: ${stderr}`)));
  });
  return { child, url };
}

/** A raw POST of an MCP initialize, with the headers given (fetch may not set Host; this can). */
function rawInitialize(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: target.port, path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }));
  });
}

/** Connects the official SDK's Streamable HTTP client with these extra headers; resolves with it or the error. */
async function httpClient(url: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'lattice-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

const tokenBeside = (file: string) => `${file.replace(/\.json$/, '')}.mcp-token`;

describe('lattice mcp over Streamable HTTP', () => {
  it('mcp-http-no-secret: refuses a client without the bearer secret or with a wrong one, and serves the one that has it', async () => {
    const { child, url } = await httpServer(['--http', '127.0.0.1:0']);
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

describe('lattice mcp install', () => {
  it('writes each client its configuration, merged with what is there', () => {
    const project = tempDir();
    writeFileSync(join(project, '.mcp.json'), JSON.stringify({ mcpServers: { other: { command: 'other-server' } }, keep: true }));
    const run = (client: string, scope = 'project', home = tempDir()) => {
      const r = lattice(['mcp', 'install', '--client', client, '--scope', scope, '--credential', credential, '--dir', project, '--json'], { HOME: home });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { file: string; command: string[] };
    };
    const claude = run('claude-code');
    const config = JSON.parse(readFileSync(claude.file, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }>; keep: boolean };
    assert.equal(config.keep, true);
    assert.equal(config.mcpServers['other']?.command, 'other-server');
    assert.deepEqual(config.mcpServers['lattice'], { type: 'stdio', command: 'lattice', args: ['mcp'] });

    const cursor = run('cursor');
    assert.equal(cursor.file, join(project, '.cursor', 'mcp.json'));
    const home = tempDir();
    mkdirSync(join(home, '.codex'));
    writeFileSync(join(home, '.codex', 'config.toml'), 'model = "o4"\n');
    const codex = run('codex', 'user', home);
    const toml = parseToml(readFileSync(codex.file, 'utf8')) as { model: string; mcp_servers: { lattice: { args: string[] } } };
    assert.equal(toml.model, 'o4');
    assert.deepEqual(toml.mcp_servers.lattice.args.slice(-3), ['mcp', '--credential', credential]);
    const opencode = run('opencode');
    const oc = JSON.parse(readFileSync(opencode.file, 'utf8')) as { mcp: { lattice: { type: string; command: string[] } } };
    assert.equal(oc.mcp.lattice.type, 'local');
    assert.deepEqual(oc.mcp.lattice.command, ['lattice', 'mcp']);
  });

  it('mcp-project-machine-paths: a project file names no path of this machine, is readable by the team, and starts a session on any machine with lattice on PATH and LATTICE_CREDENTIAL', async () => {
    const project = tempDir();
    const install = (client: string) => {
      const r = lattice(['mcp', 'install', '--client', client, '--credential', credential, '--dir', project, '--json']);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { file: string; form: string; mode: string; command: string[] };
    };
    const claude = install('claude-code');
    const shared = readFileSync(claude.file, 'utf8');
    for (const local of [credential, ROOT, process.execPath, project]) assert.ok(!shared.includes(local), `${claude.file} names ${local} of this machine:\n${shared}`);
    assert.doesNotMatch(shared, /"\//, 'no absolute path at all');
    assert.equal(statSync(claude.file).mode & 0o777, 0o644, 'a file to share holds no secret: normal permissions');
    assert.deepEqual([claude.form, claude.mode], ['portable', '0644']);

    // Every client's project file: the same command, readable by the team; Codex clears a server's environment, so its entry passes the variable on.
    for (const client of ['cursor', 'codex', 'opencode']) {
      const written = install(client);
      const raw = readFileSync(written.file, 'utf8');
      for (const local of [credential, ROOT, process.execPath, project]) assert.ok(!raw.includes(local), `${written.file} names ${local}`);
      assert.equal(statSync(written.file).mode & 0o777, 0o644, written.file);
    }
    const codex = (parseToml(readFileSync(join(project, '.codex', 'config.toml'), 'utf8')) as { mcp_servers: Record<string, unknown> }).mcp_servers['lattice'];
    assert.deepEqual(JSON.parse(JSON.stringify(codex)), { command: 'lattice', args: ['mcp'], env_vars: ['LATTICE_CREDENTIAL'] });

    // A teammate's machine: `lattice` on PATH (as `npm link` puts it), their credential in LATTICE_CREDENTIAL, the client started in the project.
    const bin = tempDir();
    symlinkSync(CLI, join(bin, 'lattice'));
    const entry = (JSON.parse(shared) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers['lattice']!;
    const path = [bin, dirname(process.execPath), process.env['PATH'] ?? ''].join(':');
    const client = new Client({ name: 'lattice-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: entry.command, args: entry.args, cwd: project, env: { ...env(), PATH: path, LATTICE_CREDENTIAL: credential }, stderr: 'pipe' }));
    try {
      assert.match(text(await client.callTool({ name: 'echo', arguments: { message: 'from the shared file' } })), /from the shared file/);
    } finally {
      await client.close();
    }
    // Without the variable, the same command says what is missing.
    const bare = lattice(['mcp'], { PATH: path, LATTICE_CREDENTIAL: '' });
    assert.equal(bare.status, 2, bare.stderr);
    assert.match(bare.stderr, /pass --credential FILE or set LATTICE_CREDENTIAL/);
  });

  it('mcp-shared-mode: a project file is written 0644 only in the portable form, and an existing file never gains permissions for others', () => {
    // --absolute in a project: this machine's paths, kept private as before.
    const local = tempDir();
    const absolute = lattice(['mcp', 'install', '--client', 'claude-code', '--absolute', '--credential', credential, '--dir', local, '--json']);
    assert.equal(absolute.status, 0, absolute.stderr);
    const entry = (JSON.parse(readFileSync(join(local, '.mcp.json'), 'utf8')) as { mcpServers: Record<string, { args: string[] }> }).mcpServers['lattice'];
    assert.deepEqual(entry?.args.slice(-3), ['mcp', '--credential', credential]);
    assert.equal(statSync(join(local, '.mcp.json')).mode & 0o777, 0o600);

    // A private file that holds another server's secret stays private when lattice's portable entry is merged in.
    const project = tempDir();
    writeFileSync(join(project, '.mcp.json'), JSON.stringify({ mcpServers: { db: { command: 'db-mcp', env: { DB_PASSWORD: 'hunter2' } } } }), { mode: 0o600 });
    const merged = lattice(['mcp', 'install', '--client', 'claude-code', '--dir', project], { LATTICE_CREDENTIAL: '' });
    assert.equal(merged.status, 0, merged.stderr);
    assert.equal(statSync(join(project, '.mcp.json')).mode & 0o777, 0o600, 'another server\'s secret became readable by others');
    assert.match(merged.stdout, /portable form, mode 0600\)/);
    const config = JSON.parse(readFileSync(join(project, '.mcp.json'), 'utf8')) as { mcpServers: Record<string, unknown> };
    assert.deepEqual(config.mcpServers['db'], { command: 'db-mcp', env: { DB_PASSWORD: 'hunter2' } });
    assert.deepEqual(config.mcpServers['lattice'], { type: 'stdio', command: 'lattice', args: ['mcp'] });

    // The forms are one or the other; the absolute form needs the credential it writes.
    const both = lattice(['mcp', 'install', '--client', 'claude-code', '--portable', '--absolute', '--dir', project]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /--portable and --absolute .* pass one/);
    const missing = lattice(['mcp', 'install', '--client', 'claude-code', '--absolute', '--dir', project], { LATTICE_CREDENTIAL: '' });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /pass --credential FILE or set LATTICE_CREDENTIAL/);
  });

  it('user scope is unchanged: this machine\'s paths, mode 0600', () => {
    const home = tempDir();
    const r = lattice(['mcp', 'install', '--client', 'claude-code', '--scope', 'user', '--credential', credential, '--json'], { HOME: home });
    assert.equal(r.status, 0, r.stderr);
    const file = join(home, '.claude.json');
    const entry = (JSON.parse(readFileSync(file, 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers['lattice'];
    assert.deepEqual(entry?.args.slice(-3), ['mcp', '--credential', credential]);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal((JSON.parse(r.stdout) as { form: string }).form, 'absolute');
  });

  it('with --http, writes each client the URL and the bearer secret, and the server it names accepts that configuration', async () => {
    const project = tempDir();
    const tokenFile = join(tempDir(), 'mcp.token');
    const port = await freePort();
    const run = (client: string, scope = 'project', home = tempDir()) => {
      const r = lattice(['mcp', 'install', '--client', client, '--scope', scope, '--credential', credential, '--dir', project, '--http', `127.0.0.1:${port}`, '--token-file', tokenFile, '--json'], { HOME: home });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { file: string; command: string[] };
    };
    const claude = run('claude-code');
    const token = readFileSync(tokenFile, 'utf8').trim();
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const url = `http://127.0.0.1:${port}/mcp`;
    const authorization = `Bearer ${token}`;
    const entry = (JSON.parse(readFileSync(claude.file, 'utf8')) as { mcpServers: Record<string, unknown> }).mcpServers['lattice'];
    assert.deepEqual(entry, { type: 'http', url, headers: { Authorization: authorization } });
    assert.deepEqual(claude.command.slice(-7), ['mcp', '--credential', credential, '--http', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    assert.equal(statSync(claude.file).mode & 0o777, 0o600, 'the configuration holds the secret');

    const cursor = run('cursor'); // the same secret: one server serves every client
    assert.deepEqual((JSON.parse(readFileSync(cursor.file, 'utf8')) as { mcpServers: Record<string, unknown> }).mcpServers['lattice'], { url, headers: { Authorization: authorization } });
    const codex = run('codex', 'user');
    const codexEntry = (parseToml(readFileSync(codex.file, 'utf8')) as { mcp_servers: Record<string, unknown> }).mcp_servers['lattice'];
    assert.deepEqual(JSON.parse(JSON.stringify(codexEntry)), { url, http_headers: { Authorization: authorization } }); // TOML tables have no prototype
    const opencode = run('opencode');
    assert.deepEqual((JSON.parse(readFileSync(opencode.file, 'utf8')) as { mcp: Record<string, unknown> }).mcp['lattice'], { type: 'remote', url, headers: { Authorization: authorization }, enabled: true });

    const { child } = await httpServer(claude.command.slice(-4)); // --http ADDR --token-file FILE, as the install printed
    try {
      const client = await httpClient(url, (entry as { headers: Record<string, string> }).headers);
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
      await client.close();
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
    const fixed = lattice(['mcp', 'install', '--client', 'cursor', '--credential', credential, '--dir', project, '--http', '127.0.0.1:0']);
    assert.notEqual(fixed.status, 0);
    assert.match(fixed.stderr, /needs a fixed port/);
    const portable = lattice(['mcp', 'install', '--client', 'cursor', '--portable', '--credential', credential, '--dir', project, '--http', `127.0.0.1:${port}`]);
    assert.equal(portable.status, 2);
    assert.match(portable.stderr, /--portable chooses how the client starts lattice, and with --http it connects instead/);
    for (const file of [claude.file, cursor.file, opencode.file]) assert.equal(statSync(file).mode & 0o777, 0o600, `${file} holds the secret`);
  });

  it('refuses a configuration file it cannot parse and leaves it as it was', () => {
    const project = tempDir();
    writeFileSync(join(project, '.mcp.json'), '{ not json');
    const r = lattice(['mcp', 'install', '--client', 'claude-code', '--credential', credential, '--dir', project]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /is not valid JSON.*nothing was written/);
    assert.equal(readFileSync(join(project, '.mcp.json'), 'utf8'), '{ not json');
    assert.match(lattice(['mcp', 'install', '--client', 'vscode', '--credential', credential]).stderr, /--client must be one of/);
  });

  it('mcp-config-tmp-symlink: a link planted at the temp name it would use is never followed', async () => {
    const project = tempDir();
    const victim = join(tempDir(), 'settings.json');
    writeFileSync(victim, '{"hooks":"mine"}\n');
    writeFileSync(join(project, '.mcp.json'), '{"mcpServers":{}}');
    // Planted for this run's own pid the moment it is known (the old name was `..mcp.json.<pid>.tmp`, opened with 'w').
    const child = spawn(process.execPath, [CLI, 'mcp', 'install', '--client', 'claude-code', '--credential', credential, '--dir', project], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
    const links = [0, 1, 2, 3].map((i) => join(project, `..mcp.json.${(child.pid ?? 0) + i}.tmp`));
    for (const link of links) symlinkSync(victim, link);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const status = await exited(child);
    assert.equal(readFileSync(victim, 'utf8'), '{"hooks":"mine"}\n', 'the file a planted link points at was overwritten');
    assert.equal(status, 0, stderr);
    const config = JSON.parse(readFileSync(join(project, '.mcp.json'), 'utf8')) as { mcpServers: Record<string, { args: string[] }> };
    assert.deepEqual(config.mcpServers['lattice']?.args, ['mcp']);
    for (const link of links) assert.ok(lstatSync(link).isSymbolicLink());
    assert.deepEqual(readdirSync(project).filter((f) => f.endsWith('.tmp')).length, links.length, 'a temp file was left behind');
  });

  it('project-dir-symlink: in a project directory (which an agent may have written) a link is neither read nor written through; in your home your own links are followed', () => {
    const project = tempDir();
    const victims = tempDir();
    mkdirSync(join(victims, 'dir'));
    writeFileSync(join(victims, 'token.json'), '{"token":"host-secret"}\n');
    symlinkSync(join(victims, 'dir'), join(project, '.cursor'));
    symlinkSync(join(victims, 'token.json'), join(project, '.mcp.json'));
    const install = (client: string, ...rest: string[]) => lattice(['mcp', 'install', '--client', client, '--credential', credential, ...rest]);
    const cursor = install('cursor', '--dir', project);
    assert.deepEqual(readdirSync(join(victims, 'dir')), [], 'written into the directory the link points at');
    assert.equal(cursor.status, 2, cursor.stderr);
    assert.match(cursor.stderr, /\.cursor is a symbolic link; lattice neither reads nor writes through it/);
    const claude = install('claude-code', '--dir', project);
    assert.equal(claude.status, 2, claude.stderr);
    assert.match(claude.stderr, /\.mcp\.json is a symbolic link/);
    assert.doesNotMatch(claude.stderr + claude.stdout, /host-secret/);
    assert.ok(lstatSync(join(project, '.mcp.json')).isSymbolicLink());
    assert.equal(readFileSync(join(victims, 'token.json'), 'utf8'), '{"token":"host-secret"}\n');

    // A dotfile manager's link in your own home is yours: followed, as before.
    const home = tempDir();
    const dotfiles = tempDir();
    symlinkSync(dotfiles, join(home, '.config'));
    const opencode = lattice(['mcp', 'install', '--client', 'opencode', '--scope', 'user', '--credential', credential], { HOME: home });
    assert.equal(opencode.status, 0, opencode.stderr);
    const written = JSON.parse(readFileSync(join(dotfiles, 'opencode', 'opencode.json'), 'utf8')) as { mcp: { lattice: { command: string[] } } };
    assert.deepEqual(written.mcp.lattice.command.slice(-3), ['mcp', '--credential', credential]);
  });
});
