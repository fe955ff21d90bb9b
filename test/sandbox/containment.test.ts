/**
 * Every containment probe (test/sandbox/probes.py) inside a real `lattice sandbox`, as root and as a normal user:
 * real namespaces, Landlock, seccomp, a real gate. A probe that escapes fails the test; nothing here skips when
 * run as root (CI). All targets are this test's own: temp files, loopback and abstract listeners it started.
 */
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '../helpers.ts';
import { gateAs, latticeAs, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

interface Probe {
  probe: string;
  contained: boolean;
  detail: string;
}

function listen(server: Server, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...(args as [number, string]), () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function hostListeners(dir: string): Promise<{ hostPort: number; hostPort6: number; abstract: string; hostSocket: string }> {
  const abstract = `lattice-probe-${process.pid}-${Date.now()}`;
  const hostSocket = join(dir, 'host.sock');
  const make = () => {
    const s = createServer((c) => c.end('host service\n'));
    servers.push(s);
    return s;
  };
  const hostPort = await listen(make(), 0, '127.0.0.1');
  const hostPort6 = await listen(make(), 0, '::1');
  await listen(make(), `\0${abstract}`);
  await listen(make(), hostSocket);
  return { hostPort, hostPort6, abstract, hostSocket };
}

for (const runner of runners()) {
  describe(`lattice sandbox containment, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    it('denies every escape probe and keeps normal work working', async () => {
      const base = ownedDir(runner);
      const hostHome = mkdirOwned(runner, join(base, 'hosthome'));
      const secrets = ['.ssh/id_ed25519', '.aws/credentials', '.config/gh/hosts.yml', '.netrc', '.npmrc', '.docker/config.json'].map((p) => join(hostHome, p));
      for (const s of secrets) {
        mkdirSync(join(s, '..'), { recursive: true });
        writeFileSync(s, 'host secret\n');
      }
      const ws = mkdirOwned(runner, join(base, 'ws'));
      const protectedPaths = ['.git/hooks/pre-commit', '.git/config', '.envrc', '.vscode/settings.json', '.lattice/config.toml'];
      for (const p of protectedPaths) {
        mkdirOwned(runner, join(ws, p, '..'));
        writeFileSync(join(ws, p), 'original\n');
      }
      // A setuid-root copy of cat (made by root) or one of the user's own: either way it must not gain anything.
      copyFileSync('/bin/cat', join(ws, 'setuid-cat'));
      chmodSync(join(ws, 'setuid-cat'), 0o4755);
      const { hostPort, hostPort6, abstract, hostSocket } = await hostListeners(base);
      const unique = `lattice-probe-${process.pid}-${Date.now()}`;
      const marker = `marker-${unique}`;
      copyFileSync(join(ROOT, 'test', 'sandbox', 'probes.py'), join(ws, 'probes.py'));
      const args = {
        workspace: ws,
        outside: ['/etc/lattice-probe', '/usr/lattice-probe', '/usr/local/lattice-probe', '/lattice-probe', join(runner.cliRoot, 'lattice-probe')],
        shadowed: [join(hostHome, unique), `/tmp/${unique}`, join(base, unique)],
        secrets: [...secrets, '/etc/shadow', '/etc/gshadow', '/etc/ssl/private'],
        protected: protectedPaths,
        hostPid: process.pid,
        marker,
        hostPort,
        hostPort6,
        abstract,
        hostSockets: [hostSocket, ...(process.env['XDG_RUNTIME_DIR'] === undefined ? [] : [process.env['XDG_RUNTIME_DIR']])],
        allowedUrl: 'https://registry.npmjs.org/',
        latticeCli: runner.cli,
      };
      const run = latticeAs(
        runner,
        ['sandbox', '--home', gate.home, '--workspace', ws, '--allow-host', 'registry.npmjs.org', '--ro-mount', runner.cliRoot, '--', '/usr/bin/python3', join(ws, 'probes.py'), JSON.stringify(args)],
        { HOME: hostHome, LATTICE_PROBE_MARKER: marker, FAKE_API_KEY: 'sk-host-secret', GITHUB_TOKEN: 'ghp_host', AWS_SECRET_ACCESS_KEY: 'aws-host', SSH_AUTH_SOCK: hostSocket, NODE_OPTIONS: '--no-warnings', NODE_EXTRA_CA_CERTS: '/nonexistent.pem' },
        ws,
      );
      if (process.env["LATTICE_PROBE_VERBOSE"] !== undefined) process.stderr.write(run.stdout);
      const probes = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Probe);
      assert.ok(probes.some((p) => p.probe === 'done'), `the probe script did not finish (exit ${String(run.status)}):\n${run.stdout}\n${run.stderr}`);
      assert.equal(run.status, 0, run.stderr);
      const escaped = probes.filter((p) => !p.contained);
      assert.deepEqual(escaped, [], `probes not contained:\n${escaped.map((p) => `  ${p.probe}: ${p.detail}`).join('\n')}`);
      assert.ok(probes.length >= 80, `only ${probes.length} probes ran`);
      const families = new Set(probes.map((p) => p.probe.split(' ')[0]));
      for (let n = 1; n <= 22; n++) assert.ok(families.has(String(n)), `probe ${n} did not run`);
      assert.ok(families.has('26'));
      // Writes that landed in the sandbox's own /tmp, home or tmpfs left nothing on the host.
      for (const p of args.shadowed) assert.equal(existsSync(p), false, `${p} appeared on the host`);
      for (const p of args.outside) assert.equal(existsSync(p), false, `${p} appeared on the host`);
      for (const p of protectedPaths) assert.ok(existsSync(join(ws, p)));
    });
  });
}
