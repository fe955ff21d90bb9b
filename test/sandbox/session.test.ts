/**
 * A sandbox session from the outside: exit codes and signals through `lattice sandbox`, nothing left behind after
 * SIGKILL, an interactive agent on a real pseudo-terminal (raw mode, resize, ^C), the proxies' refusals and the
 * credential proxy (key injected, agent's auth headers stripped, SSE streamed unbuffered), and what the ledger
 * records. Real helper, real gate, loopback listeners of the test's own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateEd25519Jwks } from '../../core/crypto/index.ts';
import { call, exited } from '../gate/harness.ts';
import { baseEnv, gateAs, latticeAs, latticeAsync, ownedDir, runners, type Runner, spawnLattice, type SandboxHome } from './harness.ts';

const [runner] = runners() as [Runner, ...Runner[]];

async function waitFor(file: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} never appeared`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The python3 processes (the agent's children) carrying `marker` as an argument. */
function processesWith(marker: string): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv[0] === 'python3' && argv.includes(marker);
    } catch {
      return false;
    }
  });
}

/** Opens a sandbox session on the admin socket: the status and first answer, and a promise of the request's end. */
function openSession(socketPath: string, body: unknown): Promise<{ status: number; text: string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/api/v1/admin/sandboxes', method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      res.once('data', (chunk: Buffer) => resolve({ status: res.statusCode ?? 0, text: chunk.toString('utf8'), ended }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function events(home: string, type: string, as: Runner = runner): { decision: string | null; payload: Record<string, unknown> }[] {
  const r = latticeAs(as, ['audit', '--home', home, '--type', type, '--limit', '200', '--json']);
  return (JSON.parse(r.stdout) as { events: { decision: string | null; payload: Record<string, unknown> }[] }).events;
}

describe('lattice sandbox sessions', () => {
  let gate: SandboxHome;
  before(async () => (gate = await gateAs(runner)));
  after(async () => gate.stop());
  const sandbox = (ws: string, ...args: string[]) => ['sandbox', '--home', gate.home, '--workspace', ws, ...args];

  it('returns the agent\'s exit status and records start, exit and a revoked identity', () => {
    const ws = ownedDir(runner);
    const r = latticeAs(runner, [...sandbox(ws, '--json-status', join(ws, 'status.json')), '--', '/bin/sh', '-c', 'exit 42']);
    assert.equal(r.status, 42, r.stderr);
    const status = JSON.parse(readFileSync(join(ws, 'status.json'), 'utf8')) as { state: string; exitCode: number; peerId: string; landlockAbi: number };
    assert.equal(status.state, 'exited');
    assert.equal(status.exitCode, 42);
    assert.ok(status.landlockAbi >= 1);
    const exitedEvent = events(gate.home, 'sandbox.exited').find((e) => e.payload['exitCode'] === 42);
    assert.ok(exitedEvent !== undefined);
    assert.ok(events(gate.home, 'sandbox.started').some((e) => e.payload['peerId'] === status.peerId));
    assert.ok(events(gate.home, 'peer.revoked').some((e) => e.payload['peerId'] === status.peerId), 'the sandbox identity is revoked at exit');
    assert.equal(latticeAs(runner, sandbox(ws, '--', '/bin/sh', '-c', 'kill -TERM $$')).status, 143);
    const missing = latticeAs(runner, sandbox(ws, '--', 'no-such-agent-binary'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot run no-such-agent-binary inside the sandbox/);
    assert.equal(events(gate.home, 'sandbox.abandoned').some((e) => e.payload['peerId'] === status.peerId), false, 'a session that closed is not abandoned');
  });

  it('a session that fails after its helper started (an agent config it cannot update) stops the helper, says why and records nothing', () => {
    // The helper starts first and waits for its plan; a session failing before it sends one must end it, or
    // lattice sandbox would wait on it for ever. The private home's Claude config is made unreadable JSON.
    const ws = ownedDir(runner);
    const key = { ANTHROPIC_API_KEY: 'sk-test-never-sent' };
    const first = latticeAs(runner, [...sandbox(ws, '--profile', 'claude-code'), '--', '/bin/true'], key);
    assert.equal(first.status, 0, first.stderr);
    const config = join(gate.home, 'homes', 'claude-code', '.claude.json');
    writeFileSync(config, '{ not json');
    const before = events(gate.home, 'sandbox.started').length;
    const r = latticeAs(runner, [...sandbox(ws, '--profile', 'claude-code'), '--', '/bin/true'], key, undefined, 20_000); // throws if it hangs
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /\.claude\.json is not valid JSON/);
    assert.equal(events(gate.home, 'sandbox.started').length, before);
    assert.deepEqual(readdirSync(join(gate.home, 'run')).filter((f) => f.startsWith('sbx_')), [], 'the runtime directory is removed');
  });

  it('without a running gate it refuses before anything starts and says to run `lattice up`', () => {
    // The same command against a home with a gate runs (every other test here); against one without, nothing runs.
    const ws = ownedDir(runner);
    const home = join(ownedDir(runner, 'lattice-home-'), 'h');
    const r = latticeAs(runner, ['sandbox', '--home', home, '--workspace', ws, '--', '/bin/sh', '-c', `touch ${ws}/ran`]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no gate is running for .*; start one with `lattice up`/);
    assert.doesNotMatch(r.stderr, /bind source/, 'the helper never started');
    assert.equal(existsSync(join(ws, 'ran')), false, 'the command did not run');
    assert.equal(existsSync(join(home, 'run')), false, 'no runtime directory was made');
  });

  it('--no-network: no proxy variables and no TCP at all (Landlock), while the gate socket still answers', () => {
    const ws = ownedDir(runner);
    const script = [
      `env > ${ws}/env`,
      `python3 -c "import socket; socket.socket().bind(('127.0.0.1', 0))" 2> ${ws}/bind || true`,
      `python3 -c "import socket; s = socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', 47080))" 2> ${ws}/connect || true`,
      `python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/lattice/gate.sock'); print('gate reachable')" > ${ws}/gate`,
    ].join('\n');
    const r = latticeAs(runner, [...sandbox(ws, '--no-network'), '--', '/bin/sh', '-c', script]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(readFileSync(join(ws, 'env'), 'utf8'), /HTTPS_PROXY/);
    assert.match(readFileSync(join(ws, 'bind'), 'utf8'), /PermissionError/);
    assert.match(readFileSync(join(ws, 'connect'), 'utf8'), /PermissionError/);
    assert.equal(readFileSync(join(ws, 'gate'), 'utf8').trim(), 'gate reachable');
  });

  it('refuses / and $HOME as a workspace; the admin sandbox routes refuse what is not theirs and keep an exit record', async () => {
    for (const dir of ['/', process.env['HOME'] ?? '/root']) {
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', dir, '--', '/bin/true'], { HOME: process.env['HOME'] ?? '/root' });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /the workspace may not be/);
    }
    const admin = { socketPath: join(gate.home, 'run', 'admin.sock') };
    const forged = await call(admin, 'POST', '/api/v1/admin/sandbox-events', JSON.stringify({ events: [{ type: 'action.executed', payload: {} }] }));
    assert.equal(forged.status, 400);
    const ok = await call(admin, 'POST', '/api/v1/admin/sandbox-events', JSON.stringify({ events: [{ type: 'sandbox.proxy', decision: 'deny', payload: { note: 'test' } }] }));
    assert.equal(ok.status, 201);
    const post = (path: string, body: unknown) => call(admin, 'POST', path, JSON.stringify(body));
    const badIdentity = await post('/api/v1/admin/sandboxes', { identity: { agentName: 'x' }, started: { note: 'never-started' } });
    assert.equal(badIdentity.status, 400);
    assert.equal(events(gate.home, 'sandbox.started').some((e) => e.payload['note'] === 'never-started'), false, 'no start recorded without an identity');
    const exitedOnly = [{ type: 'sandbox.exited', payload: { note: 'closing-gone' } }];
    assert.equal((await post('/api/v1/admin/sandboxes/close', { peerId: 'tok_abc', events: exitedOnly })).status, 400, 'only peer ids are closed');
    const gone = await post('/api/v1/admin/sandboxes/close', { peerId: 'peer_alreadygone', events: exitedOnly });
    assert.equal(gone.status, 201, 'an identity the reaper already removed does not lose the exit record');
    assert.equal((gone.body as { revoked: boolean }).revoked, false);
    assert.ok(events(gate.home, 'sandbox.exited').some((e) => e.payload['note'] === 'closing-gone'));
    // A session that ends with nothing left to record still revokes its identity.
    const identity = { agentName: 'sandbox-test', agentType: 'default', workspaceId: 'sandbox', ttl: '1h', policyPreset: 'sandboxed', publicJwk: generateEd25519Jwks().publicJwk };
    const opened = await openSession(admin.socketPath, { identity, started: { note: 'opened-by-test' } });
    assert.equal(opened.status, 200, opened.text);
    const answer = /^event: opened\ndata: (.*)\n\n$/.exec(opened.text);
    assert.ok(answer !== null, `the enrollment comes as the first event: ${opened.text}`);
    const peerId = String((JSON.parse(answer[1] ?? '') as Record<string, unknown>)['peerId']);
    assert.ok(events(gate.home, 'sandbox.started').some((e) => e.payload['peerId'] === peerId && e.payload['note'] === 'opened-by-test'));
    const quiet = await post('/api/v1/admin/sandboxes/close', { peerId, events: [] });
    assert.deepEqual([quiet.status, (quiet.body as { revoked: boolean }).revoked], [201, true]);
    assert.ok(events(gate.home, 'peer.revoked').some((e) => e.payload['peerId'] === peerId));
    // Closing the session ends its open request, and that end is no abandonment (an end before the close is: see the
    // SIGKILL test).
    await opened.ended;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(events(gate.home, 'sandbox.abandoned').some((e) => e.payload['peerId'] === peerId), false, 'a closed session is not abandoned');
  });

  it('an interactive agent gets the terminal: raw keystrokes, resizes, ^C as a byte in raw mode and as one SIGINT in cooked mode', () => {
    const ws = ownedDir(runner);
    // The agent: reports what the terminal does to it. Lines end in \r\n because raw mode does not translate.
    writeFileSync(join(ws, 'terminal-agent.py'), [
      'import os, signal, sys, termios, time, tty',
      'def say(s): os.write(1, (s + "\\r\\n").encode())',
      'signal.signal(signal.SIGWINCH, lambda *_: say("SIZE %dx%d" % tuple(os.get_terminal_size(0))))',
      'ints = 0',
      'def on_int(*_):',
      '    global ints',
      '    ints += 1',
      'signal.signal(signal.SIGINT, on_int)',
      'cooked = termios.tcgetattr(0)',
      'tty.setraw(0)',
      'say("RAW TERM=" + os.environ.get("TERM", "-"))',
      'say("KEY %r" % os.read(0, 1))',
      'say("KEY %r" % os.read(0, 1))',
      'termios.tcsetattr(0, termios.TCSANOW, cooked)',
      'say("COOKED")',
      'say("LINE " + sys.stdin.readline().strip())',
      'while ints == 0: time.sleep(0.05)',
      'time.sleep(0.5)',
      'say("INTS %d" % ints)',
      'sys.exit(7)',
    ].join('\n'));
    const spec = {
      uid: runner.uid, gid: runner.gid, cwd: ws, timeout: 60,
      argv: [process.execPath, runner.cli, ...sandbox(ws, '--', '/usr/bin/python3', join(ws, 'terminal-agent.py'))],
      env: baseEnv({ TERM: 'xterm-256color' }),
      steps: [
        ['expect', 'RAW TERM=xterm-256color'],
        ['resize', 40, 132], ['expect', 'SIZE 132x40'],
        ['send', 'x'], ['expect', "KEY b'x'"], // one keystroke, no Enter: raw mode took effect
        ['send', '\x03'], ['expect', "KEY b'\\x03'"], // ^C in raw mode is a byte, not a signal
        ['expect', 'COOKED'], ['send', 'hello\n'], ['expect', 'LINE hello'],
        ['send', '\x03'], ['expect', 'INTS 1'], // the terminal's ^C reaches the agent once (not also forwarded)
      ],
    };
    const r = spawnSync('/usr/bin/python3', [join(import.meta.dirname, 'pty-driver.py'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { ok: boolean; failed_step: number | null; status: number | null; output: string };
    assert.equal(result.failed_step, null, `stopped at step ${result.failed_step}: ${JSON.stringify(spec.steps[result.failed_step ?? 0])}; output:\n${result.output}`);
    assert.equal(result.status, 7, result.output);
  });

  it('without Landlock it refuses unless --allow-degraded, which runs and is on record (as a normal user; as root it is refused); without user namespaces it always refuses', async () => {
    // The kernel the test wants: landlock_create_ruleset (444) → ENOSYS as on a kernel without Landlock, or
    // unshare (272) → EPERM as where user namespaces are off. Inherited by lattice sandbox and its helper.
    const withKernel = (as: Runner, home: string, ws: string, errno: number, syscalls: string, ...args: string[]) => {
      const r = spawnSync('/usr/bin/python3', [join(import.meta.dirname, 'deny-syscall.py'), String(errno), syscalls, '--', process.execPath, as.cli, 'sandbox', '--home', home, '--workspace', ws, ...args], {
        encoding: 'utf8', env: baseEnv({}), uid: as.uid, gid: as.gid, timeout: 60_000,
      });
      return { status: r.status, stderr: r.stderr };
    };
    const ws = ownedDir(runner);
    const ran = join(ws, 'ran');
    const command = ['--', '/bin/sh', '-c', `touch ${ran}`];
    const refused = withKernel(runner, gate.home, ws, 38, '444', ...command);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /Landlock is unavailable on this kernel.*--allow-degraded/);
    assert.equal(existsSync(ran), false, 'the command ran without Landlock');
    assert.ok(events(gate.home, 'sandbox.refused').some((e) => String(e.payload['reason']).includes('Landlock is unavailable') && e.payload['workspace'] === ws));
    if (runner.uid === 0) {
      // As root the agent's host uid would be 0, and without Landlock nothing would keep it from /proc/sys.
      const asRoot = withKernel(runner, gate.home, ws, 38, '444', '--allow-degraded', ...command);
      assert.equal(asRoot.status, 2, asRoot.stderr);
      assert.match(asRoot.stderr, /--allow-degraded is refused as root/);
      assert.equal(existsSync(ran), false, 'the command ran as root without Landlock');
    }

    // A normal user (uid 65534 when the suite runs as root) may run without Landlock, on record.
    const user = runners().find((r) => r.uid !== 0) ?? runner;
    const userGate = user === runner ? gate : await gateAs(user);
    try {
      const userWs = ownedDir(user);
      const userRan = join(userWs, 'ran');
      const userCommand = ['--', '/bin/sh', '-c', `touch ${userRan}`];
      const degraded = withKernel(user, userGate.home, userWs, 38, '444', '--allow-degraded', '--json-status', join(userWs, 'status.json'), ...userCommand);
      assert.equal(degraded.status, 0, degraded.stderr);
      assert.match(degraded.stderr, /running WITHOUT Landlock/);
      assert.equal(existsSync(userRan), true);
      const status = JSON.parse(readFileSync(join(userWs, 'status.json'), 'utf8')) as { landlockAbi: number; degraded: boolean; peerId: string };
      assert.deepEqual([status.landlockAbi, status.degraded], [0, true]);
      assert.ok(events(userGate.home, 'sandbox.started', user).some((e) => e.payload['peerId'] === status.peerId && e.payload['degraded'] === true));

      const noUserns = withKernel(user, userGate.home, userWs, 1, '272', '--allow-degraded', ...userCommand.map((a) => a.replace(userRan, `${userRan}2`)));
      assert.equal(noUserns.status, 1, noUserns.stderr);
      assert.match(noUserns.stderr, /user namespaces are unavailable/);
      assert.equal(existsSync(`${userRan}2`), false);
    } finally {
      if (userGate !== gate) await userGate.stop();
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    it(`${signal} to lattice sandbox reaches the agent's handler, and its exit status comes back`, async () => {
      const ws = ownedDir(runner);
      const script = `trap 'echo got-${signal} > ${ws}/caught; exit 42' ${signal.slice(3)}; touch ${ws}/ready; while :; do sleep 0.05; done`;
      const child = spawnLattice(runner, sandbox(ws, '--', '/bin/sh', '-c', script));
      await waitFor(join(ws, 'ready'));
      child.kill(signal);
      assert.equal(await exited(child), 42);
      assert.equal(readFileSync(join(ws, 'caught'), 'utf8').trim(), `got-${signal}`);
    });
  }

  it('an agent without a handler killed by SIGTERM gives 143; after SIGKILL of lattice sandbox nothing survives', async () => {
    const ws = ownedDir(runner);
    const term = spawnLattice(runner, sandbox(ws, '--', '/bin/sh', '-c', `touch ${ws}/ready; exec sleep 1000`));
    await waitFor(join(ws, 'ready'));
    term.kill('SIGTERM');
    assert.equal(await exited(term), 143);

    const marker = `lattice-survivor-${process.pid}-${Date.now()}`;
    const statusFile = join(ws, 'status-killed.json');
    const killed = spawnLattice(runner, sandbox(ws, '--json-status', statusFile, '--', '/bin/sh', '-c', `python3 -c 'import time; time.sleep(1000)' ${marker} & python3 -c 'import time; time.sleep(1000)' ${marker} & touch ${ws}/ready2; wait`));
    await waitFor(join(ws, 'ready2'));
    for (let i = 0; i < 100 && processesWith(marker).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(processesWith(marker).length, 2, 'the agent\'s children run');
    killed.kill('SIGKILL');
    await exited(killed);
    const deadline = Date.now() + 5000;
    while (processesWith(marker).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(processesWith(marker), [], 'processes survived SIGKILL of lattice sandbox');
    // Nor does its identity: the gate saw the held session end unclosed, revoked it and removed its credential.
    const { peerId } = JSON.parse(readFileSync(statusFile, 'utf8')) as { peerId: string };
    const abandoned = () => events(gate.home, 'sandbox.abandoned').some((e) => e.payload['peerId'] === peerId);
    for (let i = 0; i < 100 && !abandoned(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(abandoned(), 'the gate records the abandoned session');
    assert.ok(events(gate.home, 'peer.revoked').some((e) => e.payload['peerId'] === peerId), 'the sandbox identity is revoked');
    assert.deepEqual(readdirSync(join(gate.home, 'run')).filter((f) => f.startsWith('sbx_')), [], 'the runtime directory (and its credential) is removed');
  });

  describe('proxies', () => {
    let upstream: Server;
    let port = 0;
    const seen: IncomingMessage['headers'][] = [];
    let releaseSecond: (() => void) | undefined;
    before(async () => {
      upstream = createServer((req, res) => {
        seen.push(req.headers);
        if (req.url === '/v1/ack') {
          releaseSecond?.();
          return void res.end('ok');
        }
        if (req.url === '/v1/stream') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: first\n\n');
          // The second event is sent only after the agent has received the first and acked it through the proxy:
          // a proxy that buffered the response would deadlock here and the test would time out.
          releaseSecond = () => res.end('data: second\n\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }));
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      const address = upstream.address();
      port = typeof address === 'object' && address !== null ? address.port : 0;
    });
    after(() => upstream.close());

    function profile(dir: string): string {
      const file = join(dir, 'profile.toml');
      writeFileSync(file, `extends = "default"\n[sandbox]\nallow_hosts = ["api.example.com"]\n[sandbox.agent.credentials.test]\nupstream = "http://127.0.0.1:${port}/v1"\nheader = "x-api-key"\nformat = "{key}"\nkey_source = "env:LATTICE_TEST_REAL_KEY"\nbase_url_env = "TEST_BASE_URL"\nplaceholder_env = "TEST_AUTH_TOKEN"\n`);
      return file;
    }

    it('injects the key, strips the agent\'s auth headers, streams SSE, and the key never enters the sandbox', async () => {
      const ws = ownedDir(runner);
      const key = `sk-real-${Date.now()}`;
      const script = [
        'set -e',
        `curl -sS -H "Authorization: Bearer stolen" -H "x-api-key: agent-own" -H "Cookie: a=b" "$TEST_BASE_URL/messages?x=1" > ${ws}/plain.json`,
        // Read the stream line by line: ack after the first event, then wait for the second.
        `curl -sS -N "$TEST_BASE_URL/stream" | { read -r first; echo "$first" > ${ws}/first; curl -sS "$TEST_BASE_URL/ack" > /dev/null; read -r _; read -r second; echo "$second" > ${ws}/second; }`,
        `cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' > ${ws}/environ || true`,
        `env > ${ws}/env`,
      ].join('\n');
      const r = await latticeAsync(runner, [...sandbox(ws, '--config', profile(ws)), '--', '/bin/sh', '-c', script], { LATTICE_TEST_REAL_KEY: key });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(ws, 'plain.json'), 'utf8')), { path: '/v1/messages?x=1' });
      const first = seen[0];
      assert.ok(first !== undefined);
      assert.equal(first['x-api-key'], key);
      assert.equal(first['authorization'], undefined);
      assert.equal(first['cookie'], undefined);
      assert.equal(readFileSync(join(ws, 'first'), 'utf8').trim(), 'data: first');
      assert.equal(readFileSync(join(ws, 'second'), 'utf8').trim(), 'data: second');
      assert.ok(!readFileSync(join(ws, 'environ'), 'utf8').includes(key), 'the real key is in an environment inside');
      const env = readFileSync(join(ws, 'env'), 'utf8');
      assert.ok(!env.includes(key));
      assert.match(env, /TEST_BASE_URL=http:\/\/127\.0\.0\.1:47081/);
      assert.match(env, /TEST_AUTH_TOKEN=lattice-credential-proxy-injects-the-real-key/);
      const decisions = events(gate.home, 'sandbox.proxy').filter((e) => e.payload['kind'] === 'credential');
      assert.ok(decisions.some((e) => e.decision === 'allow' && e.payload['path'] === '/messages' && e.payload['route'] === 'test'));
    });

    it('takes a route\'s key from the secrets store (key_source = "secret:NAME"), and refuses a secret that is not stored', async () => {
      const ws = ownedDir(runner);
      const key = `sk-stored-${Date.now()}`;
      const set = spawnSync(process.execPath, [runner.cli, 'secrets', 'set', 'LATTICE_TEST_STORED', '--home', gate.home], { input: key, env: baseEnv({}), uid: runner.uid, gid: runner.gid, encoding: 'utf8' });
      assert.equal(set.status, 0, set.stderr);
      const file = join(ws, 'stored.toml');
      const route = (name: string) => `extends = "default"\n[sandbox.agent.credentials.stored]\nupstream = "http://127.0.0.1:${port}/v1"\nheader = "x-api-key"\nformat = "{key}"\nkey_source = "secret:${name}"\nbase_url_env = "TEST_BASE_URL"\n`;
      writeFileSync(file, route('LATTICE_TEST_STORED'));
      seen.length = 0;
      const r = await latticeAsync(runner, [...sandbox(ws, '--config', file), '--', '/bin/sh', '-c', 'curl -sS -f "$TEST_BASE_URL/stored" > /dev/null']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(seen[0]?.['x-api-key'], key);
      writeFileSync(file, route('LATTICE_TEST_NEVER_STORED'));
      const missing = latticeAs(runner, [...sandbox(ws, '--config', file), '--', '/bin/true']);
      assert.equal(missing.status, 2, missing.stderr);
      assert.match(missing.stderr, /takes its key from the secret LATTICE_TEST_NEVER_STORED/);
    });

    it('refuses CONNECT to hosts off the allowlist, other ports, raw IPs, routed hosts and plain HTTP, and records each', () => {
      const ws = ownedDir(runner);
      const file = join(ws, 'profile.toml');
      writeFileSync(file, `extends = "default"\n[sandbox]\nallow_hosts = ["api.example.com", "routed.example.com"]\n[sandbox.agent.credentials.r]\nupstream = "https://routed.example.com"\nheader = "authorization"\nformat = "Bearer {key}"\nkey_source = "env:LATTICE_TEST_REAL_KEY"\n`);
      const attempts = ['https://not-allowed.example.org/', 'https://api.example.com:8443/', 'https://203.0.113.7/', 'https://routed.example.com/', 'http://api.example.com/'];
      // curl reports a refused CONNECT as http_connect 403 and a refused plain request as http_code 403.
      const script = attempts.map((u) => `echo "$(curl -s -o /dev/null -w '%{http_connect}/%{http_code}' ${u})" >> ${ws}/codes`).join('\n');
      const r = latticeAs(runner, [...sandbox(ws, '--config', file), '--', '/bin/sh', '-c', script], { LATTICE_TEST_REAL_KEY: 'k' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readFileSync(join(ws, 'codes'), 'utf8').trim().split('\n'), ['403/000', '403/000', '403/000', '403/000', '000/403']);
      const reasons = events(gate.home, 'sandbox.proxy').filter((e) => e.decision === 'deny').map((e) => `${String(e.payload['host'])}:${String(e.payload['reason'])}`);
      for (const expected of [/not-allowed\.example\.org:host is not on the allowlist/, /api\.example\.com:only port 443/, /203\.0\.113\.7:raw IP/, /routed\.example\.com:this host has a credential route/, /plain HTTP/]) {
        assert.ok(reasons.some((reason) => expected.test(reason)), `no refusal matching ${String(expected)} in ${reasons.join(' | ')}; stderr: ${r.stderr}`);
      }
    });

    it('refuses to start when a credential route\'s key is missing or its upstream is not allowlisted', () => {
      const ws = ownedDir(runner);
      const noKey = latticeAs(runner, [...sandbox(ws, '--config', profile(ws)), '--', '/bin/true']);
      assert.equal(noKey.status, 2);
      assert.match(noKey.stderr, /LATTICE_TEST_REAL_KEY, which is not set/);
      const file = join(ws, 'bad.toml');
      writeFileSync(file, `[sandbox.agent.credentials.x]\nupstream = "https://elsewhere.example.com"\nheader = "x-api-key"\nformat = "{key}"\nkey_source = "env:LATTICE_TEST_REAL_KEY"\n`);
      const off = latticeAs(runner, [...sandbox(ws, '--config', file), '--', '/bin/true'], { LATTICE_TEST_REAL_KEY: 'k' });
      assert.equal(off.status, 2);
      assert.match(off.stderr, /elsewhere\.example\.com, which is not on the allowlist/);
    });
  });
});
