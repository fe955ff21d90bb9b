/**
 * Which host directories the agent may be given to write, and lattice's own directories masked inside: the rule
 * as a table, then for real through `lattice sandbox`, as root and as a normal user. A workspace or --rw-mount
 * holding LATTICE_HOME is refused before anything runs; a read-only mount holding it shows an empty directory there
 * (no admin socket, no keys, no ledger). The homes are the test's own throwaway ones.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type HostDirs, writableRefusal } from '../../sandbox/host-dirs.ts';
import { gateAs, latticeAs, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

describe('what the agent may be given to write', () => {
  const dirs: HostDirs = { home: '/home/u', lattice: ['/home/u/.lattice', '/home/u/.cache/lattice'], runtime: '/tmp/runtime-u' };
  const refused = {
    '/': /holds \/home\/u\/\.lattice/,
    '/home': /holds \/home\/u\/\.lattice/,
    '/home/u': /holds \/home\/u\/\.lattice/,
    '/home/u/.lattice': /lies inside \/home\/u\/\.lattice/,
    '/home/u/.lattice/homes/default': /lies inside \/home\/u\/\.lattice/,
    '/home/u/.cache': /holds \/home\/u\/\.cache\/lattice/,
    '/tmp/runtime-u': /your runtime directory/,
    '/tmp': /holds \/tmp\/runtime-u/,
    '/usr': /lies inside \/usr, a system directory/,
    '/usr/local/src/app': /lies inside \/usr, a system directory/,
    '/etc/nginx': /lies inside \/etc/,
    '/run/user/1000': /lies inside \/run/,
    '/var': /holds everyone's files/,
    '/opt': /holds everyone's files/,
  };
  for (const [path, why] of Object.entries(refused)) {
    it(`refuses ${path}`, () => assert.match(writableRefusal(path, dirs) ?? 'allowed', why));
  }
  for (const path of ['/home/u/src/app', '/home/u/.cache/other', '/tmp/project', '/opt/app', '/var/www/site', '/srv/repo']) {
    it(`allows ${path}`, () => assert.equal(writableRefusal(path, dirs), null));
  }
  it('refuses your home itself, or what holds it, when lattice lives elsewhere', () => {
    const elsewhere: HostDirs = { home: '/home/u', lattice: ['/data/lattice'], runtime: null };
    assert.match(writableRefusal('/home/u', elsewhere) ?? '', /it is your home directory/);
    assert.match(writableRefusal('/home', elsewhere) ?? '', /holds your home directory/);
    assert.match(writableRefusal('/data', elsewhere) ?? '', /holds \/data\/lattice/);
  });
});

for (const runner of runners()) {
  describe(`lattice's own directories and the sandbox, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());
    const sandbox = (args: string[], script: string) => latticeAs(runner, ['sandbox', '--home', gate.home, ...args, '--', '/bin/sh', '-c', script]);

    it('workspace-contains-home: a workspace or --rw-mount that holds LATTICE_HOME is refused before anything runs', () => {
      const parent = dirname(gate.home); // the runner's throwaway directory holding the gate's home
      const marker = join(parent, 'ran');
      const asWorkspace = sandbox(['--workspace', parent], `touch ${marker}; ls ${gate.home}/run`);
      assert.doesNotMatch(asWorkspace.stdout, /admin\.sock/, 'the agent saw lattice\'s admin socket');
      assert.equal(existsSync(marker), false, 'the command ran');
      assert.equal(asWorkspace.status, 2, asWorkspace.stderr);
      assert.match(asWorkspace.stderr, new RegExp(`the workspace may not be ${parent}: it holds ${gate.home}, lattice's own directory`));
      const ws = mkdirOwned(runner, join(ownedDir(runner), 'ws'));
      const asMount = sandbox(['--workspace', ws, '--rw-mount', parent], `touch ${marker}`);
      assert.equal(asMount.status, 2, asMount.stderr);
      assert.match(asMount.stderr, new RegExp(`--rw-mount ${parent} may not be given to the agent: it holds ${gate.home}`));
      assert.equal(existsSync(marker), false, 'the command ran');
      // A workspace beside it runs.
      assert.equal(sandbox(['--workspace', ws], `touch ${ws}/ran`).status, 0);
      assert.equal(existsSync(join(ws, 'ran')), true);
    });

    it('lattice-home-masked: a read-only mount that holds LATTICE_HOME shows it empty: no admin socket, no keys, no ledger', () => {
      assert.ok(existsSync(join(gate.home, 'run', 'admin.sock')) && readdirSync(join(gate.home, 'keys')).length > 0, 'the gate\'s home has its socket and keys');
      const parent = dirname(gate.home);
      const ws = mkdirOwned(runner, join(ownedDir(runner), 'ws'));
      const script = [
        `ls -A ${gate.home} > ${ws}/listed`,
        `python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.connect('${gate.home}/run/admin.sock')" 2> ${ws}/admin || true`,
        `ls -A ${parent} > ${ws}/beside`,
      ].join('\n');
      const r = sandbox(['--workspace', ws, '--ro-mount', parent], script);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(ws, 'listed'), 'utf8'), '', 'the agent saw inside LATTICE_HOME');
      assert.match(readFileSync(join(ws, 'admin'), 'utf8'), /FileNotFoundError/);
      assert.match(readFileSync(join(ws, 'beside'), 'utf8'), /^h$/m, 'the rest of the mount is there');
    });
  });
}
