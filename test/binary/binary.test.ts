/**
 * The single `lattice` binary (npm run build:binary → dist/lattice), copied away from the checkout and run under
 * `env -i` from `/`: no node_modules, no Node on PATH, no environment but a HOME. npm test builds it first.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { sha256Hex } from '../../core/crypto/index.ts';
import { ROOT, lattice, tempDir } from '../helpers.ts';

const BUILT = join(ROOT, 'dist', 'lattice');

/** A copy of the binary in a directory of its own, and an empty HOME beside it. */
function install(): { bin: string; home: string; dir: string } {
  assert.ok(existsSync(BUILT), `${BUILT} is missing: run \`npm run build:binary\` (npm test does)`);
  const dir = tempDir('lattice-bin-');
  const bin = join(dir, 'bin', 'lattice');
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BUILT, bin);
  chmodSync(bin, 0o755);
  mkdirSync(join(dir, 'home'), { mode: 0o700 });
  return { bin, home: join(dir, 'home'), dir };
}

function run(bin: string, args: readonly string[], env: Record<string, string>): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(bin, args, { cwd: '/', env, encoding: 'utf8', timeout: 120_000 });
  if (result.error !== undefined) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The tool names `lattice mcp` (the MCP SDK bundled inside the binary) lists over stdio for a credential. */
function mcpTools(bin: string, credential: string, env: Record<string, string>): Promise<string[]> {
  const child = spawn(bin, ['mcp', '--credential', credential], { cwd: '/', env, stdio: ['pipe', 'pipe', 'pipe'] });
  const messages = [
    { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'binary-test', version: '1' } } },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/list' },
  ];
  child.stdin.write(messages.map((m) => `${JSON.stringify(m)}\n`).join(''));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => finish(new Error(`no tools/list answer in 30 s: ${out}${err}`)), 30_000);
    const finish = (result: string[] | Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      for (const line of out.split('\n').slice(0, -1)) {
        const m = JSON.parse(line) as { id?: number; result?: { tools: { name: string }[] } };
        if (m.id === 2) finish(m.result?.tools.map((t) => t.name) ?? new Error(`tools/list failed: ${line}`));
      }
    });
    child.once('exit', (code) => finish(new Error(`lattice mcp exited ${code}: ${err}`)));
  });
}

/** Every file of the asset cache with its mode, relative to the cache. */
function cacheFiles(cache: string): { path: string; mode: number }[] {
  return readdirSync(cache, { recursive: true, encoding: 'utf8' })
    .map((path) => ({ path, mode: statSync(join(cache, path)).mode }))
    .filter((f) => (f.mode & 0o170000) === 0o100000);
}

test('--version prints the version and commit, the same as the bundle', () => {
  const { bin, home } = install();
  const answer = run(bin, ['--version'], { HOME: home });
  assert.equal(answer.status, 0, answer.stderr);
  assert.match(answer.stdout, /^\d+\.\d+\.\d+ \(([0-9a-f]{12}|unknown)\)\n$/);
  assert.equal(answer.stdout, lattice(['--version']).stdout);
  assert.equal(existsSync(join(home, '.cache')), false, '--version wrote the asset cache');
});

test('under env -i from /: up, enroll, exec, mcp, sandbox -- true, audit, verify, down', async () => {
  const { bin, home, dir } = install();
  const env = { HOME: home };
  const state = join(dir, 'state');
  const workspace = join(dir, 'ws');
  mkdirSync(workspace);
  const ok = (args: readonly string[], extra: Record<string, string> = {}) => {
    const r = run(bin, args, { ...env, ...extra });
    assert.equal(r.status, 0, `lattice ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  try {
    ok(['up', '--detach', '--home', state]);
    ok(['enroll', '--home', state, '--name', 'bin-agent', '--type', 'custom', '--workspace', 'ws', '--ttl', '10m', '--preset', 'sandboxed', '--out', join(dir, 'cred.json')]);
    const executed = JSON.parse(ok(['exec', 'echo', '--params', '{"message":"from the binary"}', '--json'], { LATTICE_CREDENTIAL: join(dir, 'cred.json') })) as { output: unknown };
    assert.deepEqual(executed.output, { message: 'from the binary' });
    const tools = await mcpTools(bin, join(dir, 'cred.json'), env);
    assert.ok(tools.includes('echo'), `the binary's MCP server listed ${tools.join(', ')}`);
    ok(['sandbox', '--home', state, '--workspace', workspace, '--', '/bin/true']);
    const inside = run(bin, ['sandbox', '--home', state, '--workspace', workspace, '--', '/bin/sh', '-c', 'exit 7'], env);
    assert.equal(inside.status, 7, inside.stderr);
    // Agents see the prefix of the first `node` on PATH (outside /usr), read-only, and never the directory above
    // the binary's own (here the one holding the credential file).
    const nodeBin = join(dir, 'agent-node', 'bin');
    mkdirSync(nodeBin, { recursive: true });
    writeFileSync(join(nodeBin, 'node'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const probe = `test -x ${nodeBin}/node || exit 11; test -e ${join(dir, 'cred.json')} && exit 12; touch ${nodeBin}/x 2>/dev/null && exit 13; exit 0`;
    const seen = run(bin, ['sandbox', '--home', state, '--workspace', workspace, '--', '/bin/sh', '-c', probe], { ...env, PATH: `${nodeBin}:/usr/bin:/bin` });
    assert.equal(seen.status, 0, `exit ${seen.status} (11: the agents' node is missing; 12: the binary's parent is visible; 13: node's prefix is writable) ${seen.stderr}`);
    const events = (JSON.parse(ok(['audit', '--home', state, '--json', '--limit', '100'])) as { events: { type: string }[] }).events.map((e) => e.type);
    for (const type of ['action.executed', 'sandbox.started', 'sandbox.exited']) assert.ok(events.includes(type), `no ${type} in ${events.join(' ')}`);
    assert.match(ok(['verify', '--home', state]), /receipts\s+\d+ verified/);
    // --workers splits verification across worker threads: the verify worker runs from the cache, with the addon.
    assert.equal((JSON.parse(ok(['verify', '--home', state, '--workers', '2', '--json'])) as { ok: boolean }).ok, true);
  } finally {
    ok(['down', '--home', state]);
  }

  // The assets it used sit in ~/.cache/lattice/<sha256>/, private, each file matching the hash that names it.
  const cache = join(home, '.cache', 'lattice');
  assert.equal(statSync(cache).mode & 0o777, 0o700);
  const files = cacheFiles(cache);
  for (const name of ['lattice-sandbox', 'better_sqlite3.node', 'verify-worker', 'provider-worker', 'components/echo.wasm', 'profiles/default.toml']) assert.ok(files.some((f) => f.path.endsWith(`/${name}`)), `${name} not cached`);
  for (const f of files) {
    assert.equal(f.mode & 0o277, 0, `${f.path} is writable or open to others (${(f.mode & 0o777).toString(8)})`);
    const [hash = '', ...rest] = f.path.split('/');
    if (rest.length === 1) assert.equal(sha256Hex(readFileSync(join(cache, f.path))), hash, `${f.path} does not match the hash naming it`);
  }
  assert.equal((files.find((f) => f.path.endsWith('/lattice-sandbox'))?.mode ?? 0) & 0o777, 0o500, 'the helper is not 0500');
});

test('a cached file that no longer matches its hash is rewritten from the binary, never run', () => {
  const { bin, home, dir } = install();
  const env = { HOME: home };
  const state = join(dir, 'state');
  const workspace = join(dir, 'ws');
  mkdirSync(workspace);
  const probe = run(bin, ['doctor', '--home', state, '--json'], env); // writes the sandbox helper to the cache
  assert.ok(probe.stdout.includes('landlock'), probe.stdout + probe.stderr);
  const cache = join(home, '.cache', 'lattice');
  const helper = cacheFiles(cache).find((f) => f.path.endsWith('/lattice-sandbox'));
  assert.ok(helper !== undefined);
  const file = join(cache, helper.path);
  const marker = join(dir, 'tampered-helper-ran');
  chmodSync(file, 0o700);
  writeFileSync(file, `#!/bin/sh\ntouch ${marker}\nexit 0\n`);
  try {
    const up = run(bin, ['up', '--detach', '--home', state], env);
    assert.equal(up.status, 0, up.stderr);
    const sandboxed = run(bin, ['sandbox', '--home', state, '--workspace', workspace, '--', '/bin/sh', '-c', 'exit 3'], env);
    assert.equal(sandboxed.status, 3, sandboxed.stderr);
  } finally {
    run(bin, ['down', '--home', state], env);
  }
  assert.equal(existsSync(marker), false, 'the tampered helper ran');
  assert.equal(sha256Hex(readFileSync(file)), helper.path.split('/')[0]);
  assert.equal(statSync(file).mode & 0o777, 0o500);
});

test('XDG_CACHE_HOME chooses the cache; an unwritable one is named in the error', () => {
  const { bin, home, dir } = install();
  const xdg = join(dir, 'xdg');
  const listed = run(bin, ['sandbox', '--help'], { HOME: home, XDG_CACHE_HOME: xdg });
  assert.equal(listed.status, 0, listed.stderr);
  const doctor = run(bin, ['doctor', '--home', join(dir, 'state'), '--json'], { HOME: home, XDG_CACHE_HOME: xdg });
  assert.ok(doctor.stdout.length > 0, doctor.stderr);
  assert.ok(cacheFiles(join(xdg, 'lattice')).some((f) => f.path.endsWith('/lattice-sandbox')));
  assert.equal(existsSync(join(home, '.cache')), false);

  const blocked = join(dir, 'blocked');
  writeFileSync(blocked, 'a file where the cache directory would go');
  const refused = run(bin, ['init', '--home', join(dir, 'other')], { HOME: home, XDG_CACHE_HOME: blocked });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /cannot write lattice's cache .*XDG_CACHE_HOME/);
});
