/**
 * A newcomer's first ten minutes, run for real: a fresh clone of the commit under test, the README's first line
 * exactly as printed (parsed out of README.md, so the test fails the day README and reality diverge) with a fresh
 * HOME, then every line of the README's tour in order, then `lattice status` finds no gate. The MCP configuration
 * the tour writes is started by the official MCP SDK's client, and `initialize` must answer. `.ci/run` must run the
 * README's second line and nothing else.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ROOT, tempDir } from '../helpers.ts';

/** The lines of the first ```sh block after `after` in a Markdown text, each without its trailing comment. */
function shellBlock(markdown: string, after = ''): { command: string; comment: string }[] {
  const start = markdown.indexOf(after);
  assert.ok(start >= 0, `README.md has no "${after}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(markdown.slice(start));
  assert.ok(block?.[1] !== undefined, `README.md has no sh block after "${after}"`);
  return block[1]
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const at = line.search(/\s+# /); // the comments are after two or more spaces; no command here contains ' # '
      return at < 0 ? { command: line.trim(), comment: '' } : { command: line.slice(0, at).trim(), comment: line.slice(at).trim() };
    });
}

interface Step {
  readonly status: number;
  readonly out: string;
}

describe('the README, as a newcomer runs it', () => {
  let clone: string;
  let readme: string;
  let env: NodeJS.ProcessEnv;

  /** One line through bash in the clone, as a user types it. */
  function sh(command: string, timeout = 120_000): Step {
    const r = spawnSync('bash', ['-c', command], { cwd: clone, env, encoding: 'utf8', timeout });
    if (r.error !== undefined) throw r.error;
    return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
  }

  before(() => {
    const dir = tempDir('lattice-newcomer-');
    clone = join(dir, 'lattice');
    const head = spawnSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    assert.match(head, /^[0-9a-f]{40}$/, 'the suite runs from a git checkout');
    for (const args of [['clone', '--quiet', '--no-hardlinks', ROOT, clone], ['-C', clone, 'checkout', '--quiet', '--detach', head]]) {
      const r = spawnSync('git', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`);
    }
    readme = readFileSync(join(clone, 'README.md'), 'utf8');
    // A fresh user: a HOME of its own (so ~/.lattice and ~/.claude.json are new), nothing of lattice's in the
    // environment. npm keeps the machine's configuration (where node-gyp finds Node's headers, the registry's CA)
    // and its download cache, neither of which lattice's files can set.
    const npm = (key: string) => spawnSync('npm', ['config', 'get', key], { encoding: 'utf8' }).stdout.trim();
    env = { PATH: process.env['PATH'] ?? '', HOME: join(dir, 'home'), LANG: 'C.UTF-8', npm_config_userconfig: npm('userconfig'), npm_config_cache: npm('cache') };
    mkdirSync(env['HOME'] ?? '', { mode: 0o700 });
  });

  it('.ci/run runs the README\'s second line and nothing else', () => {
    const [, second] = shellBlock(readme);
    assert.ok(second !== undefined, 'the README\'s first block has a second line');
    const ci = readFileSync(join(clone, '.ci', 'run'), 'utf8').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    assert.deepEqual(ci, ['set -euo pipefail', 'cd "$(dirname "$0")/.."', second.command]);
  });

  it('the first line installs, builds and starts the gate on its embedded defaults', { timeout: 900_000 }, () => {
    const [first] = shellBlock(readme);
    assert.ok(first !== undefined);
    assert.match(first.command, /lattice up --detach/);
    const up = sh(first.command, 600_000);
    assert.equal(up.status, 0, `${first.command}:\n${up.out}`);
    assert.match(up.out, /gate running in the background \(pid \d+\)/);
    assert.match(up.out, new RegExp(`${env['HOME'] ?? ''}/\\.lattice/run/gate\\.sock`), 'on ~/.lattice');
  });

  it('every line of the tour works as printed, and the MCP command it writes answers initialize', { timeout: 300_000 }, async () => {
    const tour = shellBlock(readme, '## A tour');
    assert.ok(tour.length >= 10, 'the tour is there');
    let said = '';
    for (const { command, comment } of tour) {
      // What a reader copies from an earlier line's output: the approval id and the plan's SHA-256.
      const approval = /apr_[A-Za-z0-9_-]{22}/.exec(said)?.[0] ?? 'apr_none';
      const plan = /plan sha256 ([0-9a-f]{64})/.exec(said)?.[1] ?? 'none';
      const typed = command.replaceAll('apr_…', approval).replaceAll('<sha256>', plan);
      const exported = /^export ([A-Z_]+)=(\S+)$/.exec(typed);
      if (exported?.[1] !== undefined) {
        env[exported[1]] = exported[2];
        continue;
      }
      const step = sh(typed);
      said += step.out;
      const expected = Number(/\bexit (\d)\b/.exec(comment)?.[1] ?? 0);
      assert.equal(step.status, expected, `${typed}:\n${step.out}`);
      check(typed, step.out);
      if (typed.includes('mcp install --client claude-code')) await mcpAnswers();
    }
    const after = sh('npx lattice status');
    assert.equal(after.status, 1, `no gate runs after the tour's last line:\n${after.out}`);
  });

  /** What a reader is told each step does, checked in its output. */
  function check(command: string, out: string): void {
    const expectations: [RegExp, RegExp][] = [
      [/lattice status$/, /running, pid \d+/],
      [/lattice enroll /, /enrolled peer_/],
      [/lattice exec echo /, /executed \(receipt rcpt_/],
      [/--no-wait$/, /held for approval apr_.*\n\s+plan sha256 [0-9a-f]{64}/],
      // The plan as it will run, one JSON member per line (not a line with \n in it).
      [/approvals show /, /\n\s+"kind": "fs\.write",\n\s+"path": "notes\.md",?\n/],
      [/approvals approve /, /executed: receipt rcpt_/],
      [/lattice audit /, /action\.executed .* fs\.write/],
      [/lattice verify$/, /^VALID: /m],
      [/mcp install /, /wrote the lattice MCP server into .*\.claude\.json/],
      [/lattice sandbox /, /^uid=\d+.*\n(.*\n)*usr\n/m],
      [/lattice down$/, /gate stopped \(pid \d+\)/],
    ];
    const matched = expectations.filter(([line]) => line.test(command));
    assert.equal(matched.length, 1, `the test knows what "${command}" should print`);
    assert.match(out, matched[0]?.[1] ?? /never/, command);
  }

  /** The command `lattice mcp install` wrote into ~/.claude.json starts, and answers a real MCP client. */
  async function mcpAnswers(): Promise<void> {
    const config = JSON.parse(readFileSync(join(env['HOME'] ?? '', '.claude.json'), 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }> };
    const server = config.mcpServers['lattice'];
    assert.ok(server !== undefined, 'a lattice server in ~/.claude.json');
    const client = new Client({ name: 'newcomer-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: server.command, args: server.args, cwd: clone, env: { PATH: env['PATH'] ?? '', HOME: env['HOME'] ?? '' }, stderr: 'pipe' }));
    try {
      assert.equal(client.getServerVersion()?.name, 'lattice');
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'echo'), 'the agent\'s actions are its tools');
    } finally {
      await client.close();
    }
  }
});
