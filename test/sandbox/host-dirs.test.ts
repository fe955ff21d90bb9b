/**
 * Which host directories the agent may be given to write, and lattice's own directories masked inside: the rule
 * as a table, then for real through `lattice sandbox`, as root and as a normal user. A workspace or --rw-mount
 * holding LATTICE_HOME is refused before anything runs; a read-only mount holding it shows an empty directory there
 * (no admin socket, no keys, no ledger). The homes are the test's own throwaway ones.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type HostDirs, writableRefusal } from '../../sandbox/host-dirs.ts';
import { gateAs, isRoot, latticeAs, mkdirOwned, ownedDir, type Runner, runners, type SandboxHome } from './harness.ts';

/** A throwaway copy of lattice installed in a project (`<project>/node_modules/lattice`), owned by the runner. */
function installedCopy(runner: Runner): { project: string; install: string; runner: Runner } {
  const project = join(ownedDir(runner, 'lattice-install-'), 'project');
  const install = join(project, 'node_modules', 'lattice');
  mkdirSync(install, { recursive: true });
  for (const part of ['bin', 'dist', 'profiles', 'package.json']) cpSync(join(runner.cliRoot, part), join(install, part), { recursive: true });
  symlinkSync(join(runner.cliRoot, 'node_modules'), join(install, 'node_modules'));
  mkdirSync(join(project, 'src'));
  if (isRoot) assert.equal(spawnSync('chown', ['-R', `${runner.uid}:${runner.gid}`, dirname(project)]).status, 0);
  return { project, install, runner: { ...runner, cli: join(install, 'bin', 'lattice.mjs'), cliRoot: install } };
}

describe('what the agent may be given to write', () => {
  const dirs: HostDirs = {
    home: '/home/u',
    lattice: ['/home/u/.lattice', '/home/u/.cache/lattice'],
    installs: ['/home/u/.nvm/versions/node/v20', '/home/u/tools/lattice', '/srv/shared/node_modules'],
    private: ['/home/u/.ssh', '/home/u/.gnupg', '/home/u/.docker', '/tmp/runtime-u', '/run/user/1000'],
    runtime: '/tmp/runtime-u',
    root: false,
  };
  const refused = {
    '/': /holds \/home\/u\/\.lattice/,
    '/home': /holds \/home\/u\/\.lattice/,
    '/home/u': /holds \/home\/u\/\.lattice/,
    '/home/u/.lattice': /it is \/home\/u\/\.lattice, lattice's own directory/,
    '/home/u/.lattice/homes/default': /lies inside \/home\/u\/\.lattice/,
    '/home/u/.cache': /holds \/home\/u\/\.cache\/lattice/,
    '/tmp/runtime-u': /your runtime directory/,
    '/tmp': /holds \/tmp\/runtime-u/,
    '/usr': /lies inside \/usr, a system directory/,
    '/usr/local/src/app': /lies inside \/usr, a system directory/,
    '/etc/nginx': /lies inside \/etc/,
    '/run/user/1000': /it is \/run\/user\/1000, your private directory/,
    '/run/user/1001': /lies inside \/run, a system directory/,
    '/var': /holds \/var\/lib, a system directory/,
    '/opt': /holds everyone's files/,
    '/home/u/tools/lattice': /it is \/home\/u\/tools\/lattice, the lattice or Node install/,
    '/home/u/tools/lattice/dist': /lies inside \/home\/u\/tools\/lattice, the lattice or Node install/,
    '/home/u/tools': /holds \/home\/u\/tools\/lattice, the lattice or Node install/,
    '/home/u/.nvm/versions/node/v20/lib': /lies inside \/home\/u\/\.nvm\/versions\/node\/v20, the lattice or Node install/,
    '/srv/shared/node_modules/left-pad': /lies inside \/srv\/shared\/node_modules, the lattice or Node install/,
    '/home/u/.ssh': /it is \/home\/u\/\.ssh, your private directory/,
    '/home/u/.docker/run': /lies inside \/home\/u\/\.docker, your private directory/,
    '/var/tmp': /\/var\/tmp holds everyone's files/,
    '/var/spool/cron': /lies inside \/var\/spool, a system directory/,
    '/var/lib/app': /lies inside \/var\/lib, a system directory/,
    '/var/mail': /lies inside \/var\/mail, a system directory/,
  };
  for (const [path, why] of Object.entries(refused)) {
    it(`refuses ${path}`, () => assert.match(writableRefusal(path, dirs) ?? 'allowed', why));
  }
  for (const path of ['/home/u/src/app', '/home/u/.cache/other', '/tmp/project', '/opt/app', '/var/www/site', '/srv/repo', '/var/tmp/project', '/home/other/src', '/home/u/tools/other']) {
    it(`allows ${path}`, () => assert.equal(writableRefusal(path, dirs), null));
  }
  it('refuses your home itself, or what holds it, when lattice lives elsewhere', () => {
    const elsewhere: HostDirs = { home: '/home/u', lattice: ['/data/lattice'], installs: [], private: [], runtime: null, root: false };
    assert.match(writableRefusal('/home/u', elsewhere) ?? '', /it is your home directory/);
    assert.match(writableRefusal('/home', elsewhere) ?? '', /holds your home directory/);
    assert.match(writableRefusal('/data', elsewhere) ?? '', /holds \/data\/lattice/);
  });
  it('other-home: as root, a tree in another user\'s home is refused; in your own, it is not', () => {
    const root: HostDirs = { ...dirs, home: '/root', root: true };
    assert.match(writableRefusal('/home/u/src/app', root) ?? '', /another user's home under \/home/);
    assert.match(writableRefusal('/home/alice', root) ?? '', /another user's home under \/home/);
    assert.equal(writableRefusal('/root/src/app', root), null);
    const sudo: HostDirs = { ...dirs, root: true };
    assert.match(writableRefusal('/root/src/app', sudo) ?? '', /another user's home under \/root/);
    assert.match(writableRefusal('/home/ux/src', sudo) ?? '', /another user's home under \/home/);
    assert.equal(writableRefusal('/home/u/src/app', sudo), null);
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

    it('lattice-install: a workspace or --rw-mount that is, holds or lies inside the lattice install is refused', () => {
      const { project, install, runner: copy } = installedCopy(runner);
      const entry = join(install, 'dist', 'lattice.mjs');
      const before = readFileSync(entry, 'utf8');
      const rewrite = `echo 'process.exit(7)' >> ${entry}`;
      const run = (args: string[], cwd?: string) => latticeAs(copy, ['sandbox', '--home', gate.home, ...args, '--', '/bin/sh', '-c', rewrite], {}, cwd);
      // README's tour: `lattice sandbox` run from the lattice checkout, whose workspace is then lattice itself.
      const fromCheckout = run([], install);
      assert.equal(fromCheckout.status, 2, fromCheckout.stderr);
      assert.match(fromCheckout.stderr, new RegExp(`the workspace may not be ${install}: it is ${install}, the lattice or Node install that runs on your host.*pass --workspace DIR`));
      const holding = run(['--workspace', project]);
      assert.equal(holding.status, 2, holding.stderr);
      assert.match(holding.stderr, new RegExp(`it holds ${install}, the lattice or Node install`));
      const inside = run(['--workspace', join(project, 'src'), '--rw-mount', join(install, 'dist')]);
      assert.equal(inside.status, 2, inside.stderr);
      assert.match(inside.stderr, new RegExp(`--rw-mount ${install}/dist may not be given to the agent: it lies inside ${install}, the lattice or Node install`));
      assert.equal(readFileSync(entry, 'utf8'), before, 'the agent rewrote lattice');
      // The project beside it is the agent's, and lattice still runs.
      const beside = latticeAs(copy, ['sandbox', '--home', gate.home, '--workspace', join(project, 'src'), '--', '/bin/sh', '-c', `touch ${project}/src/ran`]);
      assert.equal(beside.status, 0, beside.stderr);
      assert.equal(existsSync(join(project, 'src', 'ran')), true);
    });

    it('shared-dirs: /var/tmp itself, /var/spool, /var/lib and /var/mail are refused; a project in /var/tmp is not', () => {
      const ws = mkdirOwned(runner, join(ownedDir(runner), 'ws'));
      const project = mkdtempSync('/var/tmp/lattice-project-');
      try {
        mkdirOwned(runner, project);
        const asWorkspace = sandbox(['--workspace', '/var/tmp'], 'true');
        assert.equal(asWorkspace.status, 2, asWorkspace.stderr);
        assert.match(asWorkspace.stderr, /the workspace may not be \/var\/tmp: \/var\/tmp holds everyone's files/);
        const inProject = sandbox(['--workspace', project], `touch ${project}/ran`);
        assert.equal(inProject.status, 0, inProject.stderr);
        assert.equal(existsSync(join(project, 'ran')), true);
      } finally {
        rmSync(project, { recursive: true, force: true });
      }
      // Throwaway directories in each, made by the test (as root: a normal user cannot make them).
      for (const parent of isRoot ? ['/var/spool', '/var/lib', '/var/mail'] : []) {
        if (!existsSync(parent)) continue;
        const dir = mkdtempSync(join(parent, 'lattice-test-'));
        try {
          mkdirOwned(runner, dir);
          const r = sandbox(['--workspace', ws, '--rw-mount', dir], `touch ${dir}/ran`);
          assert.equal(r.status, 2, r.stderr);
          assert.match(r.stderr, new RegExp(`--rw-mount ${dir} may not be given to the agent: it lies inside ${parent}, a system directory`));
          assert.equal(existsSync(join(dir, 'ran')), false, 'the agent wrote there');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    });

    it('other-home: as root, another user\'s home is refused; as that user, it is theirs to give', { skip: !isRoot && 'making a directory in /home needs root' }, () => {
      const home = mkdtempSync('/home/lattice-test-user-');
      try {
        mkdirOwned(runner, home);
        const r = sandbox(['--workspace', home], `touch ${home}/ran`);
        if (runner.uid === 0) {
          assert.equal(r.status, 2, r.stderr);
          assert.match(r.stderr, /it lies in another user's home under \/home/);
          assert.equal(existsSync(join(home, 'ran')), false, 'the agent wrote there');
        } else {
          assert.equal(r.status, 0, r.stderr);
          assert.equal(existsSync(join(home, 'ran')), true);
        }
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
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
