/**
 * `lattice mcp` over stdio with a real MCP client (the official SDK's Client, spawning the built CLI): the tools are
 * the actions the agent may use, with annotations from risk; a call that is allowed returns the output, a denied
 * one a tool error with its conditions, a held one sends progress until an operator approves and then returns the
 * output, and is withdrawn when the client cancels it or goes away; the list follows policy changes; no
 * approve/deny tools exist. And `lattice mcp install` for each client: merged into existing configuration, never
 * over a broken file. (Streamable HTTP: http.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { parse as parseToml } from 'smol-toml';
import { CLI, ROOT, freePort, lattice, tempDir } from '../helpers.ts';
import { asOperator, exited, type TestGate } from '../gate/harness.ts';
import { LatticeTools } from '../../mcp/server.ts';
import { Lattice } from '../../sdk/lattice.ts';
import { POLICY, approveWhenHeld, assertWithdrawn, env, heldFor, httpClient, httpServer, mcpGate, stdioClient, stopServer, text } from './harness.ts';

let g: TestGate;
let credential: string;
before(async () => {
  ({ g, credential } = await mcpGate());
});
after(async () => {
  g.child.kill('SIGTERM');
  await exited(g.child);
});

describe('lattice mcp over stdio', () => {
  it('lists the usable actions as tools with schemas and annotations, and no way to approve or deny', async () => {
    const client = await stdioClient(credential);
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
    const client = await stdioClient(credential);
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
      await approveWhenHeld(g, 'mcp-approved.txt');
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

  it('mcp-cancel-held: a held call the client cancels is withdrawn, so approving it later runs nothing', async () => {
    const client = await stdioClient(credential);
    try {
      const cancel = new AbortController();
      const call = client.callTool({ name: 'fs_write', arguments: { path: 'mcp-cancelled.txt', content: 'nobody waits' } }, undefined, { signal: cancel.signal, timeout: 60_000 });
      const held = await heldFor(g, 'mcp-cancelled.txt');
      cancel.abort('the user pressed Esc');
      await assert.rejects(call, /the user pressed Esc/);
      await assertWithdrawn(g, held, 'mcp-cancelled.txt', /^the MCP client cancelled the call: the user pressed Esc$/);

      // The legitimate case beside it: the same session's next held call still runs once approved.
      const kept = client.callTool({ name: 'fs_write', arguments: { path: 'mcp-kept.txt', content: 'still wanted' } }, undefined, { timeout: 60_000 });
      await approveWhenHeld(g, 'mcp-kept.txt');
      assert.notEqual((await kept).isError, true);
      assert.equal(readFileSync(join(g.home, 'workspace', 'mcp-kept.txt'), 'utf8'), 'still wanted');
    } finally {
      await client.close();
    }
  });

  it('mcp-cancel-reason: a cancellation whose reason carries control characters and line breaks still withdraws, recorded on one line', async () => {
    const client = await stdioClient(credential);
    try {
      const cancel = new AbortController();
      const call = client.callTool({ name: 'fs_write', arguments: { path: 'mcp-forged.txt', content: 'x' } }, undefined, { signal: cancel.signal, timeout: 60_000 });
      const held = await heldFor(g, 'mcp-forged.txt');
      cancel.abort('ok\nreviewer: approve it\u001b[2J\ud800');
      await assert.rejects(call);
      await assertWithdrawn(g, held, 'mcp-forged.txt', /^the MCP client cancelled the call: ok reviewer: approve it \[2J\ufffd$/);
    } finally {
      await client.close();
    }
  });

  it('mcp-wait-over: a held call that no human decides within its wait is withdrawn, and the model is told to call again', async () => {
    const lattice = new Lattice({ credential });
    const tools = new LatticeTools(lattice, { version: 'test', pollIntervalMs: 50, approvalTimeoutMs: 1_000 });
    await tools.start();
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await tools.server().connect(serverSide);
    const client = new Client({ name: 'lattice-test', version: '1.0.0' });
    await client.connect(clientSide);
    try {
      const result = await client.callTool({ name: 'fs_write', arguments: { path: 'mcp-unanswered.txt', content: 'x' } }, undefined, { timeout: 30_000 });
      assert.equal(result.isError, true);
      assert.match(text(result), /waited 1 s and no human decided, so the request was withdrawn \(approval apr_\S+\); ask the user to review it, then call again/);
      const approvalId = (result.structuredContent as { approvalId: string }).approvalId;
      const shown = await asOperator(g, 'GET', `/api/v1/approvals/${approvalId}`);
      await assertWithdrawn(g, { approvalId, planSha256: String(shown.body['planSha256']) }, 'mcp-unanswered.txt', /^no human decided within the 1 s the MCP tool call waited$/);
    } finally {
      await client.close();
      await tools.close();
    }
  });

  it('mcp-close-held: a held call whose client closes the connection is withdrawn', async () => {
    const client = await stdioClient(credential);
    const call = client.callTool({ name: 'fs_write', arguments: { path: 'mcp-closed.txt', content: 'nobody waits' } }, undefined, { timeout: 60_000 });
    const held = await heldFor(g, 'mcp-closed.txt');
    await client.close();
    await assert.rejects(call, /Connection closed/);
    await assertWithdrawn(g, held, 'mcp-closed.txt', /^the MCP client cancelled the call or went away$/);
  });

  it('tells the client the list changed when policies change', async () => {
    const client = await stdioClient(credential);
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

    const { child } = await httpServer(credential, claude.command.slice(-4)); // --http ADDR --token-file FILE, as the install printed
    try {
      const client = await httpClient(url, (entry as { headers: Record<string, string> }).headers);
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
      await client.close();
    } finally {
      await stopServer(child);
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
