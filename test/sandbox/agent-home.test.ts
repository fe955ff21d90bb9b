/**
 * What lattice writes into and reads from the agent's private home, through real `lattice sandbox` runs as root and
 * as a normal user. A first session plants what a hostile agent would leave behind (symlinks to files and
 * directories of the host, links at every temp name lattice could use); the next session must neither read nor
 * write through them. Every victim is this test's own throwaway file or directory, owned by the user lattice runs as
 * (so an attack that worked would have had the rights to succeed). And the legitimate case: each profile's MCP
 * configuration is there at every start, and the agent's own edits persist.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { gateAs, isRoot, latticeAs, mkdirOwned, ownedDir, runners, spawnLattice, type Run, type Runner, type SandboxHome } from './harness.ts';

const KEYS = { ANTHROPIC_API_KEY: 'sk-test-not-real', OPENAI_API_KEY: 'sk-test-not-real' };
const CREDENTIAL_ARGS = ['mcp', '--credential', '/run/lattice/credential.json'];
const REFUSED = /is a symbolic link; lattice neither reads nor writes through it/;

function ownedFile(runner: Runner, file: string, text: string): void {
  writeFileSync(file, text);
  if (isRoot) chownSync(file, runner.uid, runner.gid);
}

function finished(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
}

for (const runner of runners()) {
  describe(`the agent's private home, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());

    const sandbox = (profile: string, ws: string, script: string, extra: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Run =>
      latticeAs(runner, ['sandbox', '--home', gate.home, '--profile', profile, '--workspace', ws, ...extra, '--', '/bin/sh', '-c', script], { ...KEYS, ...env });
    const homeOf = (profile: string) => join(gate.home, 'homes', profile);

    it('mcp-config-tmp-symlink: a link planted at the temp name lattice would use is never followed; the configuration is still written', async () => {
      const ws = ownedDir(runner);
      const victims = ownedDir(runner, 'lattice-victim-');
      const victim = join(victims, 'settings.json');
      ownedFile(runner, victim, '{"hooks":"the host user\'s own"}\n');
      const first = sandbox('claude-code', ws, 'true'); // makes ~/.claude.json, so the next start merges and rewrites it
      assert.equal(first.status, 0, first.stderr);
      // The reviewer's agent planted one symlink per possible pid at the predictable temp name beside ~/.claude.json
      // (131,072 of them, 2.7 s). Planted here for the next start's own pid the moment it is known, before it can
      // reach its configuration, which is the same attack made certain.
      const home = homeOf('claude-code');
      const child = spawnLattice(runner, ['sandbox', '--home', gate.home, '--profile', 'claude-code', '--workspace', ws, '--', '/bin/sh', '-c', `cat ~/.claude.json > ${ws}/seen`], KEYS);
      const pid = child.pid ?? 0;
      const planted = [0, 1, 2, 3].map((i) => join(home, `..claude.json.${pid + i}.tmp`));
      for (const link of planted) symlinkSync(victim, link);
      const second = await finished(child);
      assert.equal(readFileSync(victim, 'utf8'), '{"hooks":"the host user\'s own"}\n', 'the host file was overwritten through a planted link');
      assert.equal(second.status, 0, second.stderr);
      const config = JSON.parse(readFileSync(join(ws, 'seen'), 'utf8')) as { mcpServers: Record<string, { args: string[] }> };
      assert.deepEqual(config.mcpServers['lattice']?.args.slice(-3), CREDENTIAL_ARGS);
      assert.ok(lstatSync(join(home, '.claude.json')).isFile());
      for (const link of planted) assert.ok(lstatSync(link).isSymbolicLink(), `${link} was used`);
      assert.deepEqual(readdirSync(home).filter((f) => f.endsWith('.tmp')).sort(), planted.map((l) => basename(l)).sort(), 'a temp file was left behind');
    });

    it('home-file-symlink: ~/.claude.json pointing at a host file is neither read nor written; the next start refuses, naming it', () => {
      const ws = ownedDir(runner);
      const victims = ownedDir(runner, 'lattice-victim-');
      const victim = join(victims, 'token.json');
      ownedFile(runner, victim, '{"token":"host-secret-token"}\n');
      const before = statSync(victim);
      const first = sandbox('claude-code', ws, `ln -sfn ${victim} ~/.claude.json`);
      assert.equal(first.status, 0, first.stderr);

      const second = sandbox('claude-code', ws, `cat ~/.claude.json > ${ws}/seen`);
      const seen = existsSync(join(ws, 'seen')) ? readFileSync(join(ws, 'seen'), 'utf8') : '';
      assert.doesNotMatch(seen, /host-secret-token/, 'lattice read the host file and merged it into the configuration the agent reads');
      assert.equal(readFileSync(victim, 'utf8'), '{"token":"host-secret-token"}\n');
      assert.equal(statSync(victim).mtimeMs, before.mtimeMs);
      assert.equal(second.status, 2, second.stderr);
      assert.match(second.stderr, REFUSED);
      assert.ok(second.stderr.includes(join(homeOf('claude-code'), '.claude.json')), second.stderr);
      assert.equal(seen, '', 'the agent ran');
      assert.ok(lstatSync(join(homeOf('claude-code'), '.claude.json')).isSymbolicLink(), 'the link is left for the user to see and remove');

      // Once it is gone, the profile starts again.
      unlinkSync(join(homeOf('claude-code'), '.claude.json'));
      const third = sandbox('claude-code', ws, 'true');
      assert.equal(third.status, 0, third.stderr);
    });

    const dirLinks = [
      { profile: 'codex', link: '.codex' },
      { profile: 'cursor', link: '.cursor' },
      { profile: 'opencode', link: '.config' },
      { profile: 'opencode', link: '.cache' },
    ];
    for (const { profile, link } of dirLinks) {
      it(`home-dir-symlink: ~/${link} pointing at a host directory (${profile}): nothing is created there, no mode changes, the start is refused`, () => {
        const ws = ownedDir(runner);
        const victim = mkdirOwned(runner, join(ownedDir(runner, 'lattice-victim-'), 'dir'));
        const mode = statSync(victim).mode;
        const first = sandbox(profile, ws, `rm -rf ~/${link} && ln -s ${victim} ~/${link}`);
        assert.equal(first.status, 0, first.stderr);

        try {
          const second = sandbox(profile, ws, `touch ${ws}/ran`);
          assert.deepEqual(readdirSync(victim), [], `lattice created something in the host directory ~/${link} points at`);
          assert.equal(statSync(victim).mode, mode);
          assert.equal(second.status, 2, second.stderr);
          assert.match(second.stderr, REFUSED);
          assert.ok(second.stderr.includes(join(homeOf(profile), link)), second.stderr);
          assert.equal(existsSync(join(ws, 'ran')), false);
        } finally {
          unlinkSync(join(homeOf(profile), link));
        }
      });
    }

    it('mount-point-symlink: a link where the helper makes a mount point inside the home is refused; nothing is created on the host', () => {
      // $HOME inside is this host directory, so a mount below it (here --ro-mount, as ~/.local/bin in the profiles,
      // lattice's own files or the workspace often are) gets its mount point made inside the private home.
      const ws = ownedDir(runner);
      const hostHome = ownedDir(runner, 'lattice-hosthome-');
      mkdirOwned(runner, join(hostHome, 'tools', 'bin'));
      const victim = mkdirOwned(runner, join(ownedDir(runner, 'lattice-victim-'), 'dir'));
      // The helper resolves names while the host's root is at /oldroot: that is where an absolute link must point.
      const first = sandbox('default', ws, `rm -rf ~/tools && ln -s /oldroot${victim} ~/tools`, [], { HOME: hostHome });
      assert.equal(first.status, 0, first.stderr);

      try {
        const second = sandbox('default', ws, `touch ${ws}/ran`, ['--ro-mount', join(hostHome, 'tools', 'bin')], { HOME: hostHome });
        assert.deepEqual(readdirSync(victim), [], 'the helper made a mount point in the host directory the link points at');
        assert.notEqual(second.status, 0);
        assert.ok(second.stderr.includes(`${join(hostHome, 'tools')} is a symbolic link, and lattice follows no link there`), second.stderr);
        assert.equal(existsSync(join(ws, 'ran')), false);
      } finally {
        unlinkSync(join(homeOf('default'), 'tools'));
      }

      // Without the link, the same mount is made inside the home and the agent sees it.
      writeFileSync(join(hostHome, 'tools', 'bin', 'tool'), 'tool\n');
      const third = sandbox('default', ws, `cat ~/tools/bin/tool > ${ws}/tool`, ['--ro-mount', join(hostHome, 'tools', 'bin')], { HOME: hostHome });
      assert.equal(third.status, 0, third.stderr);
      assert.equal(readFileSync(join(ws, 'tool'), 'utf8'), 'tool\n');
    });

    it('the MCP configuration is there at every start, lattice\'s entry is restored, and the agent\'s own edits persist', () => {
      const ws = ownedDir(runner);
      // Claude Code and Cursor: the entry merged into the configuration in the home, which the agent also edits.
      const edit = (file: string) => `python3 -c "
import json, os
f = os.path.expanduser('${file}')
d = json.load(open(f))
assert d['mcpServers']['lattice']['args'][-3:] == ['mcp', '--credential', '/run/lattice/credential.json'], d
d['agentEdit'] = 'kept'
d['mcpServers']['own'] = {'command': 'own-server'}
d['mcpServers']['lattice'] = {'command': 'tampered'}
json.dump(d, open(f, 'w'))
"`;
      for (const [profile, file] of [['claude-code', '~/.claude.json'], ['cursor', '~/.cursor/mcp.json']] as const) {
        const first = sandbox(profile, ws, edit(file));
        assert.equal(first.status, 0, first.stderr);
        const second = sandbox(profile, ws, `cat ${file} > ${ws}/${profile}.json`);
        assert.equal(second.status, 0, second.stderr);
        const config = JSON.parse(readFileSync(join(ws, `${profile}.json`), 'utf8')) as { agentEdit: string; mcpServers: Record<string, { command: string; args?: string[] }> };
        assert.equal(config.agentEdit, 'kept');
        assert.equal(config.mcpServers['own']?.command, 'own-server');
        assert.deepEqual(config.mcpServers['lattice']?.args?.slice(-3), CREDENTIAL_ARGS);
        assert.notEqual(config.mcpServers['lattice']?.command, 'tampered');
      }

      // Codex and opencode: the entry in a file generated into the sandbox's root; their files in the home untouched.
      const codex = sandbox('codex', ws, `cat /etc/codex/config.toml > ${ws}/codex-system.toml; echo 'model = "o4"' > ~/.codex/config.toml; (echo x >> /etc/codex/config.toml) 2> ${ws}/codex-write || true`);
      assert.equal(codex.status, 0, codex.stderr);
      const system = parseToml(readFileSync(join(ws, 'codex-system.toml'), 'utf8')) as { mcp_servers: { lattice: { args: string[] } } };
      assert.deepEqual(system.mcp_servers.lattice.args.slice(-3), CREDENTIAL_ARGS);
      assert.match(readFileSync(join(ws, 'codex-write'), 'utf8'), /Read-only file system|Permission denied/);
      const codexAgain = sandbox('codex', ws, `cat ~/.codex/config.toml > ${ws}/codex-user.toml`);
      assert.equal(codexAgain.status, 0, codexAgain.stderr);
      assert.equal(readFileSync(join(ws, 'codex-user.toml'), 'utf8'), 'model = "o4"\n', 'lattice changed the agent\'s own Codex configuration');

      const opencode = sandbox('opencode', ws, `printf %s "$OPENCODE_CONFIG" > ${ws}/oc-var; cat "$OPENCODE_CONFIG" > ${ws}/oc.json; echo '{"theme":"mine"}' > ~/.config/opencode/opencode.json`);
      assert.equal(opencode.status, 0, opencode.stderr);
      assert.equal(readFileSync(join(ws, 'oc-var'), 'utf8'), '/etc/lattice/opencode.json');
      const oc = JSON.parse(readFileSync(join(ws, 'oc.json'), 'utf8')) as { mcp: { lattice: { type: string; command: string[] } } };
      assert.equal(oc.mcp.lattice.type, 'local');
      assert.deepEqual(oc.mcp.lattice.command.slice(-3), CREDENTIAL_ARGS);
      const opencodeAgain = sandbox('opencode', ws, `cat ~/.config/opencode/opencode.json > ${ws}/oc-user.json`);
      assert.equal(opencodeAgain.status, 0, opencodeAgain.stderr);
      assert.equal(readFileSync(join(ws, 'oc-user.json'), 'utf8'), '{"theme":"mine"}\n');
      for (const d of ['.config/opencode', '.local/share/opencode', '.cache/opencode']) assert.ok(lstatSync(join(homeOf('opencode'), d)).isDirectory(), d);
      assert.equal(statSync(homeOf('opencode')).mode & 0o777, 0o700);
    });
  });
}
