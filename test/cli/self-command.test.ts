/**
 * lattice runs itself again (`up --detach`, the command `mcp install` writes) however it was started: through
 * npm's exec-cache link (`npx lattice`, a link with no extension), through an `npm link` chain of links, as
 * `node bin/lattice.mjs` or as `node dist/lattice.mjs`. Each way starts a detached gate, writes an MCP client
 * configuration, and the command in it answers a real MCP client's `initialize`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ROOT, tempDir } from '../helpers.ts';

const BIN = realpathSync(join(ROOT, 'bin', 'lattice.mjs'));
const DIST = realpathSync(join(ROOT, 'dist', 'lattice.mjs'));

/** `npx lattice` in a clone: npm's exec cache holds a link to the package and a bin link into it. */
function npxLink(): string {
  const modules = join(tempDir(), '_npx', '5eec080bf95e7d97', 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  symlinkSync(ROOT, join(modules, 'lattice'));
  symlinkSync('../lattice/bin/lattice.mjs', join(modules, '.bin', 'lattice'));
  return join(modules, '.bin', 'lattice');
}

/** `npm link`: PREFIX/bin/lattice → ../lib/node_modules/lattice/bin/lattice.mjs, and that package → the clone. */
function npmLink(): string {
  const prefix = tempDir();
  mkdirSync(join(prefix, 'lib', 'node_modules'), { recursive: true });
  mkdirSync(join(prefix, 'bin'));
  symlinkSync(ROOT, join(prefix, 'lib', 'node_modules', 'lattice'));
  symlinkSync('../lib/node_modules/lattice/bin/lattice.mjs', join(prefix, 'bin', 'lattice'));
  return join(prefix, 'bin', 'lattice');
}

const WAYS: { name: string; argv: () => string[]; entry: string }[] = [
  { name: 'npx (an exec-cache link with no extension)', argv: () => [npxLink()], entry: BIN },
  { name: 'npm link (a chain of links on the PATH)', argv: () => [npmLink()], entry: BIN },
  { name: 'node bin/lattice.mjs (relative)', argv: () => [process.execPath, join('bin', 'lattice.mjs')], entry: BIN },
  { name: 'node dist/lattice.mjs', argv: () => [process.execPath, DIST], entry: DIST },
];

function run(argv: string[], args: string[], home: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, LATTICE_HOME: home };
  delete env['NODE_OPTIONS'];
  const [file = '', ...prefix] = argv;
  const r = spawnSync(file, [...prefix, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${argv.join(' ')} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('lattice runs itself again', () => {
  for (const way of WAYS) {
    it(`started by ${way.name}: detaches a gate and writes an MCP command that starts`, async () => {
      const dir = tempDir();
      const home = join(dir, 'home');
      const argv = way.argv();
      run(argv, ['up', '--detach'], home);
      try {
        const credential = join(dir, 'cred.json');
        run(argv, ['enroll', '--name', 'self', '--type', 'cli', '--workspace', 'ws', '--out', credential], home);
        run(argv, ['mcp', 'install', '--client', 'claude-code', '--dir', dir, '--credential', credential, '--absolute'], home); // the form that names this lattice's own paths
        const server = (JSON.parse(readFileSync(join(dir, '.mcp.json'), 'utf8')) as { mcpServers: Record<string, { command: string; args: string[] }> }).mcpServers['lattice'];
        assert.ok(server !== undefined);
        assert.deepEqual([server.command, ...server.args], [process.execPath, way.entry, 'mcp', '--credential', credential]);
        const client = new Client({ name: 'self-command-test', version: '1.0.0' });
        await client.connect(new StdioClientTransport({ command: server.command, args: server.args, env: { PATH: process.env['PATH'] ?? '', LATTICE_HOME: home }, stderr: 'pipe' }));
        try {
          assert.equal(client.getServerVersion()?.name, 'lattice');
        } finally {
          await client.close();
        }
      } finally {
        run(argv, ['down'], home);
      }
    });
  }
});
