/**
 * Real agent CLIs from the npm registry (test/agents, installed by .ci/run with `npm install --prefix test/agents`)
 * started inside their built-in profiles; and Claude Code sending a request through the credential proxy to a
 * local stand-in for the Anthropic API, which must see the injected key while the agent never had it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../helpers.ts';
import { gateAs, latticeAsync, ownedDir, runners, type Runner, type SandboxHome } from './harness.ts';

const AGENTS = join(ROOT, 'test', 'agents');
const BIN = join(AGENTS, 'node_modules', '.bin');
const [runner] = runners() as [Runner, ...Runner[]];
// The agents, and lattice's own dependencies for `lattice mcp` inside. A checkout whose node_modules are links to a
// shared install (a git worktree) needs the install itself bound too; elsewhere these are the directories above.
const MOUNTS = [AGENTS, ...[join(AGENTS, 'node_modules'), join(ROOT, 'node_modules')].filter((d) => existsSync(d) && realpathSync(d) !== d).map((d) => realpathSync(d))].flatMap((d) => ['--ro-mount', d]);

describe('real agent CLIs inside lattice sandbox', () => {
  let gate: SandboxHome;
  before(async () => {
    assert.ok(existsSync(join(BIN, 'claude')), `the agent CLIs are not installed: run \`npm install --prefix test/agents\` (.ci/run does)`);
    gate = await gateAs(runner);
  });
  after(async () => gate.stop());

  const cases = [
    { profile: 'claude-code', bin: 'claude', expect: /^\d+\.\d+\.\d+ \(Claude Code\)/, env: { ANTHROPIC_API_KEY: 'sk-test-not-real' } },
    { profile: 'codex', bin: 'codex', expect: /^codex-cli \d+\.\d+\.\d+/, env: { OPENAI_API_KEY: 'sk-test-not-real' } },
    { profile: 'opencode', bin: 'opencode', expect: /^\d+\.\d+\.\d+/, env: {} },
  ];
  for (const c of cases) {
    it(`${c.bin} --version runs in the ${c.profile} profile`, async () => {
      const ws = ownedDir(runner);
      const r = await latticeAsync(runner, ['sandbox', '--home', gate.home, '--profile', c.profile, '--workspace', ws, ...MOUNTS, '--', join(BIN, c.bin), '--version'], c.env);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout.trim(), c.expect);
    });
  }

  // The profile wires `lattice mcp` into each agent's own MCP configuration; the agents' own commands show it.
  const mcpCases = [
    { profile: 'claude-code', args: ['claude', 'mcp', 'list'], expect: /^lattice: .*lattice\.mjs mcp --credential \/run\/lattice\/credential\.json - ✔ Connected$/m, env: { ANTHROPIC_API_KEY: 'sk-test-not-real' } },
    { profile: 'opencode', args: ['opencode', 'mcp', 'list'], expect: /✓ lattice .*connected/, env: {} },
    { profile: 'codex', args: ['codex', 'mcp', 'list'], expect: /^lattice\s+\S+\s+\S*lattice\.mjs mcp --credential \/run\/lattice\/credential\.json .*enabled/m, env: { OPENAI_API_KEY: 'sk-test-not-real' } },
  ];
  for (const c of mcpCases) {
    it(`${c.args.join(' ')} shows lattice's MCP server${c.profile === 'codex' ? '' : ' connected from inside the sandbox'} (${c.profile} profile)`, async () => {
      const ws = ownedDir(runner);
      const [bin, ...rest] = c.args as [string, ...string[]];
      const r = await latticeAsync(runner, ['sandbox', '--home', gate.home, '--profile', c.profile, '--workspace', ws, ...MOUNTS, '--', join(BIN, bin), ...rest], c.env);
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      // eslint-disable-next-line no-control-regex -- opencode colours its output
      assert.match(r.stdout.replace(/\u001b\[[0-9;]*m/g, ''), c.expect);
    });
  }

  describe('Claude Code through the credential proxy', () => {
    let api: Server;
    const requests: { url: string; headers: IncomingHttpHeaders }[] = [];
    before(async () => {
      api = createServer((req, res) => {
        requests.push({ url: req.url ?? '', headers: req.headers });
        req.resume();
        // A non-retryable API error ends the CLI's turn at once.
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'lattice test upstream' } }));
      });
      await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    });
    after(() => api.close());

    it('sends its request with the injected key; the agent\'s environment has no key', async () => {
      const ws = ownedDir(runner);
      const profile = join(ws, 'claude-test.toml');
      const { port } = api.address() as AddressInfo;
      writeFileSync(profile, `extends = "claude-code"\n[sandbox.agent.credentials.anthropic]\nupstream = "http://127.0.0.1:${port}"\nheader = "x-api-key"\nformat = "{key}"\nkey_source = "env:ANTHROPIC_API_KEY"\nbase_url_env = "ANTHROPIC_BASE_URL"\nplaceholder_env = "ANTHROPIC_AUTH_TOKEN"\n`);
      const key = `sk-ant-test-${Date.now()}`;
      const script = `env > ${ws}/agent-env; ${join(BIN, 'claude')} -p "say hi" > ${ws}/claude-out 2>&1; echo $? > ${ws}/claude-status`;
      const r = await latticeAsync(runner, ['sandbox', '--home', gate.home, '--config', profile, '--workspace', ws, ...MOUNTS, '--', '/bin/sh', '-c', script], { ANTHROPIC_API_KEY: key });
      assert.equal(r.status, 0, r.stderr);
      const messages = requests.filter((q) => q.url.startsWith('/v1/messages'));
      assert.ok(messages.length > 0, `no /v1/messages request arrived (${requests.map((q) => q.url).join(', ')}); claude said: ${readFileSync(join(ws, 'claude-out'), 'utf8').slice(0, 500)}`);
      for (const m of messages) {
        assert.equal(m.headers['x-api-key'], key);
        assert.equal(m.headers['authorization'], undefined, 'the agent\'s placeholder token was forwarded');
      }
      const env = readFileSync(join(ws, 'agent-env'), 'utf8');
      assert.ok(!env.includes(key), 'the real key is in the agent\'s environment');
      assert.doesNotMatch(env, /^ANTHROPIC_API_KEY=/m);
      assert.match(env, /^ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:47081$/m);
    });
  });
});
