/**
 * The first-run setup of `lattice up`, typed into a real pseudo-terminal (test/sandbox/pty-driver.py): answers
 * given by keystrokes, then the config, the chosen policies and the imported key are checked, and a second run
 * without a terminal starts at once. `--yes` and runs without a terminal never prompt.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, ROOT, freePort, latticeJson, tempDir } from '../helpers.ts';


describe('lattice up, first run', () => {
  it('asks on a terminal, writes what was answered, imports the chosen key, and starts the gate', async () => {
    const home = join(tempDir(), 'home');
    const port = await freePort();
    const key = `sk-ant-wizard-${Date.now()}`;
    const spec = {
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      argv: [process.execPath, CLI, 'up', '--home', home],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: tempDir(), TERM: 'xterm', ANTHROPIC_API_KEY: key },
      cwd: tempDir(),
      timeout: 90,
      steps: [
        ['expect', 'Where should lattice keep its state?'], ['send', '\r'],
        ['expect', 'Which preset policies'], ['send', '\x1b[B'], ['send', ' '], ['send', '\r'], // untick "isolated"
        ['expect', 'Import these API keys'], ['send', ' '], ['send', '\r'],
        ['expect', 'loopback TCP'], ['send', 'y'], ['send', '\r'],
        ['expect', 'Port on 127.0.0.1'], ['send', String(port)], ['send', '\r'],
        ['expect', 'imported ANTHROPIC_API_KEY'],
        ['expect', 'stop with Ctrl-C'], ['send', '\x03'],
      ],
    };
    const r = spawnSync('/usr/bin/python3', [join(ROOT, 'test', 'sandbox', 'pty-driver.py'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { failed_step: number | null; status: number | null; output: string };
    assert.equal(result.failed_step, null, `stopped at step ${result.failed_step}: ${JSON.stringify(spec.steps[result.failed_step ?? 0])}; output:\n${result.output}`);
    assert.equal(result.status, 0, result.output);

    const config = readFileSync(join(home, 'lattice.toml'), 'utf8');
    assert.match(config, new RegExp(`listen = "127\\.0\\.0\\.1:${port}"`));
    assert.deepEqual(readdirSync(join(home, 'policies')).sort(), ['coordinator.cedar', 'sandboxed.cedar']);
    const secrets = latticeJson<{ events: { payload: { name?: string } }[] }>(['audit', '--home', home, '--type', 'secret.set', '--json']).json.events;
    assert.deepEqual(secrets.map((e) => e.payload.name), ['ANTHROPIC_API_KEY']);
    assert.ok(!readFileSync(join(home, 'lattice.db')).includes(key), 'the key is stored sealed, never in clear');
  });

  it('never asks without a terminal or with --yes, and takes the defaults', () => {
    const home = join(tempDir(), 'home');
    const up = spawnSync(process.execPath, [CLI, 'up', '--home', home, '--detach'], { encoding: 'utf8', timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(up.status, 0, up.stderr);
    assert.doesNotMatch(up.stdout + up.stderr, /first run/);
    assert.equal(existsSync(join(home, 'lattice.toml')), false, 'defaults need no file');
    assert.equal(spawnSync(process.execPath, [CLI, 'down', '--home', home], { encoding: 'utf8' }).status, 0);
  });
});
