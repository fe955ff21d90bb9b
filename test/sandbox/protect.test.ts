/**
 * Protected workspace paths, for real through `lattice sandbox`, as root and as a normal user: a link on the way to
 * one refuses the run and nothing outside the workspace is shown; the repository's .git is read-only but for what
 * git writes, so the agent can neither change nor create what sends git elsewhere or makes it run a command, and
 * git still commits inside. The lists are pinned literally. Every target is the test's own: throwaway directories
 * and repositories, and a marker file that a planted fsmonitor command would create.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers.ts';
import { loadProfile } from '../../sandbox/profile.ts';
import { GIT_SEQUENCER_STATE } from '../../sandbox/git-state.ts';
import { GIT_MASKED, GIT_WRITABLE } from '../../sandbox/protect.ts';
import { gateAs, latticeAs, mkdirOwned, ownedDir, runners, type Runner, type SandboxHome } from './harness.ts';

describe('what is protected', () => {
  it('pins the default profile\'s protect list, what stays writable in .git and what is made there when absent', () => {
    assert.deepEqual(loadProfile(tempDir(), 'default').protect, [
      '.git', '.gitconfig', '.gitmodules', '.bashrc', '.bash_profile', '.bash_login', '.profile', '.zshrc', '.zprofile',
      '.zshenv', '.zlogin', '.ripgreprc', '.envrc', '.envrc.local', '.hg/hgrc', '.jj/repo/config.toml',
      '.vscode', '.idea', '.mcp.json', '.claude', '.codex', '.cursor', '.gemini', '.opencode', 'opencode.json',
      'opencode.jsonc', '.aider.conf.yml', '.lattice',
    ]);
    assert.deepEqual([...GIT_WRITABLE], [
      'objects', 'refs', 'logs', 'index', 'HEAD', 'ORIG_HEAD', 'FETCH_HEAD', 'packed-refs', 'shallow', 'COMMIT_EDITMSG',
      'TAG_EDITMSG', 'SQUASH_MSG', 'NOTES_EDITMSG', 'MERGE_HEAD', 'MERGE_MSG', 'MERGE_MODE', 'MERGE_RR', 'MERGE_AUTOSTASH',
      'AUTO_MERGE', 'CHERRY_PICK_HEAD', 'REVERT_HEAD', 'REBASE_HEAD', 'rr-cache',
      'BISECT_LOG', 'BISECT_START', 'BISECT_TERMS', 'BISECT_NAMES', 'BISECT_EXPECTED_REV', 'BISECT_ANCESTORS_OK', 'BISECT_RUN',
      'BISECT_FIRST_PARENT', 'BISECT_HEAD', 'gc.pid', 'gc.log', 'lfs',
    ]);
    assert.deepEqual([...GIT_SEQUENCER_STATE], ['sequencer', 'rebase-merge', 'rebase-apply']);
    assert.deepEqual(GIT_MASKED.map((m) => `${m.name} ${m.type} ${JSON.stringify(m.content)}`), [
      'config file ""', 'config.worktree file ""', 'commondir file ".\\n"', 'hooks dir ""', 'info dir ""', 'modules dir ""', 'worktrees dir ""',
    ]);
  });
});

/** git on the host, as the runner, reading no configuration but the repository's own. */
function hostGit(runner: Runner, cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, env, uid: runner.uid, gid: runner.gid, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A throwaway repository owned by the runner, with one commit. */
function repository(runner: Runner, dir: string): string {
  mkdirOwned(runner, dir);
  for (const args of [['init', '-q'], ['commit', '-q', '--allow-empty', '-m', 'first']]) {
    const r = hostGit(runner, dir, ...args);
    assert.equal(r.status, 0, r.stderr);
  }
  return dir;
}

for (const runner of runners()) {
  describe(`protected workspace paths, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());
    const sandbox = (ws: string, script: string) => latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/bin/sh', '-c', script]);

    it('protected-path-symlink: .git -> .. or .claude -> .. refuses the run, naming the link, and shows nothing outside the workspace', () => {
      // Beside the workspace, throwaway files where .git/config, .git/hooks and .claude/settings.json would lead.
      const base = ownedDir(runner);
      writeFileSync(join(base, 'config'), 'outside config\n');
      mkdirSync(join(base, 'hooks'));
      writeFileSync(join(base, 'hooks', 'pre-commit'), 'outside hook\n');
      writeFileSync(join(base, 'settings.json'), 'outside settings\n');
      const ws = mkdirOwned(runner, join(base, 'ws'));
      const script = 'cat .git/config .git/hooks/pre-commit .claude/settings.json > seen 2>/dev/null; touch ran';
      for (const link of ['.git', '.claude']) {
        symlinkSync('..', join(ws, link));
        const r = sandbox(ws, script);
        const seen = existsSync(join(ws, 'seen')) ? readFileSync(join(ws, 'seen'), 'utf8') : '';
        assert.doesNotMatch(seen, /outside/, `a host file outside the workspace was readable inside through ${link}`);
        assert.notEqual(r.status, 0, `the run went ahead with ${link} -> ..`);
        assert.match(r.stderr, new RegExp(`${link.replace('.', '\\.')} is a symbolic link, and lattice follows no link there`));
        assert.equal(existsSync(join(ws, 'ran')), false, 'the command ran');
        unlinkSync(join(ws, link));
      }
      // Without the link the same workspace runs, and the protected paths that are absent stay absent.
      const r = sandbox(ws, script);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(existsSync(join(ws, 'ran')), true);
      assert.deepEqual(readdirSync(ws).sort(), ['ran', 'seen']);
    });

    it('git-commondir-redirect: commondir, config.worktree, config, hooks, info, modules and worktrees cannot be written or made; git on the host runs no planted fsmonitor', () => {
      const base = ownedDir(runner);
      const ws = repository(runner, join(base, 'ws'));
      const marker = join(base, 'fsmonitor-ran');
      // The attack: a copy of the repository whose config runs a command, and .git/commondir pointing at it.
      const script = [
        'mkdir .cache-x && cp -r .git/objects .git/refs .git/HEAD .cache-x/',
        `printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch ${marker}; false"\\n' > .cache-x/config`,
        'attempt() { if (eval "$2") 2>/dev/null; then echo "WROTE $1"; else echo "denied $1"; fi; }',
        'attempt commondir "printf \'../.cache-x\\n\' > .git/commondir"',
        'attempt config.worktree "printf \'[core]\\n\\tfsmonitor = x\\n\' > .git/config.worktree"',
        'attempt config "printf \'[core]\\n\\tfsmonitor = x\\n\' >> .git/config"',
        'attempt hooks "printf \'#!/bin/sh\\n\' > .git/hooks/post-checkout"',
        'attempt info "printf \'* diff=x\\n\' > .git/info/attributes"',
        'attempt modules "mkdir -p .git/modules/x && printf \'[core]\\n\' > .git/modules/x/config"',
        'attempt worktrees "mkdir -p .git/worktrees/w && printf \'../..\\n\' > .git/worktrees/w/commondir"',
        'attempt rename "mv .git .git-old && mkdir .git"',
      ].join('\n');
      const r = sandbox(ws, script);
      assert.equal(r.status, 0, r.stderr);
      const status = hostGit(runner, ws, 'status', '--porcelain');
      assert.equal(existsSync(marker), false, 'git on the host ran the agent\'s fsmonitor command');
      assert.equal(status.status, 0, status.stderr);
      for (const name of ['commondir', 'config.worktree', 'config', 'hooks', 'info', 'modules', 'worktrees', 'rename']) assert.match(r.stdout, new RegExp(`^denied ${name}$`, 'm'), r.stdout);
      assert.equal(readFileSync(join(ws, '.git', 'commondir'), 'utf8'), '.\n');
    });

    it('protect-list-gaps: Claude Code hooks, a settings.json made later, files an .envrc sources, Cursor, Gemini, opencode, aider, Mercurial and jj settings cannot be written', () => {
      const ws = mkdirOwned(runner, join(ownedDir(runner), 'ws'));
      const existing = ['.claude/hooks/lint.sh', '.envrc.local', '.cursor/mcp.json', '.gemini/settings.json', '.opencode/plugin.js', 'opencode.json',
        'opencode.jsonc', '.aider.conf.yml', '.hg/hgrc', '.jj/repo/config.toml'];
      for (const p of existing) {
        mkdirOwned(runner, join(ws, p, '..'));
        writeFileSync(join(ws, p), 'original\n');
      }
      spawnSync('chown', ['-R', `${runner.uid}:${runner.gid}`, ws]);
      const attempts = [...existing.map((p) => `attempt ${p} "echo planted >> ${p}"`), 'attempt .claude/settings.json "echo {} > .claude/settings.json"',
        'attempt .hg/store "mkdir .hg/store && echo data > .hg/store/x"', 'attempt src "mkdir src && echo code > src/a"'];
      const r = sandbox(ws, ['attempt() { if (eval "$2") 2>/dev/null; then echo "WROTE $1"; else echo "denied $1"; fi; }', ...attempts].join('\n'));
      assert.equal(r.status, 0, r.stderr);
      for (const p of [...existing, '.claude/settings.json']) assert.match(r.stdout, new RegExp(`^denied ${p.replaceAll('.', '\\.')}$`, 'm'), r.stdout);
      for (const p of existing) assert.equal(readFileSync(join(ws, p), 'utf8'), 'original\n', p);
      // What is not configuration stays the agent's to write.
      assert.match(r.stdout, /^WROTE \.hg\/store$/m, r.stdout);
      assert.match(r.stdout, /^WROTE src$/m, r.stdout);
    });

    it('profile-without-extends: a profile that extends nothing still protects the default list (.git/config stays read-only), and the workspace stays writable', () => {
      const base = ownedDir(runner);
      const ws = repository(runner, join(base, 'ws'));
      const file = join(base, 'mine.toml');
      writeFileSync(file, '[sandbox]\ndescription = "mine"\n');
      const marker = join(base, 'fsmonitor-ran');
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--config', file, '--', '/bin/sh', '-c',
        `if git config core.fsmonitor "touch ${marker}; false" 2>/dev/null; then echo WROTE config; else echo denied config; fi; echo ok > a`]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^denied config$/m, r.stdout);
      assert.equal(readFileSync(join(ws, 'a'), 'utf8'), 'ok\n');
      hostGit(runner, ws, 'status', '--porcelain');
      assert.equal(existsSync(marker), false, 'git on the host ran the agent\'s fsmonitor command');
    });

    it('git-state-symlink: links and special files the agent leaves in .git (logs/HEAD, COMMIT_EDITMSG, a FIFO) are removed at the end, so git on the host writes through none; one found at the start refuses the run', () => {
      const base = ownedDir(runner);
      const ws = repository(runner, join(base, 'ws'));
      const branch = hostGit(runner, ws, 'rev-parse', '--abbrev-ref', 'HEAD').stdout.trim();
      const victim = join(base, 'victim-rc');
      const message = join(base, 'victim-msg');
      writeFileSync(victim, 'export PS1="$ "\n');
      writeFileSync(message, 'kept\n');
      spawnSync('chown', [`${runner.uid}:${runner.gid}`, victim, message]);
      const marker = join(base, 'branch-ran');
      const r = sandbox(ws, [
        `git checkout -q -b 'agent;touch\${IFS}${marker};#'`,
        `rm .git/logs/HEAD && ln -s ${victim} .git/logs/HEAD`,
        `ln -sf ${message} .git/COMMIT_EDITMSG`,
        'mkfifo .git/logs/refs/heads/fifo',
        'echo planted',
      ].join(' && '));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /planted/);
      // The user, on the host, goes back to the branch and commits.
      assert.equal(hostGit(runner, ws, 'checkout', '-q', branch).status, 0);
      assert.equal(hostGit(runner, ws, 'commit', '-q', '--allow-empty', '-m', 'host').status, 0);
      assert.equal(readFileSync(victim, 'utf8'), 'export PS1="$ "\n', 'git on the host wrote through the planted logs/HEAD');
      assert.equal(readFileSync(message, 'utf8'), 'kept\n', 'git on the host wrote through the planted COMMIT_EDITMSG');
      assert.equal(hostGit(runner, ws, 'log', '-g', '--format=%gs', '-1').stdout, 'commit: host\n', 'the reflog works again');
      assert.match(r.stderr, /removed .*\.git\/logs\/HEAD, a symbolic link to /);
      assert.match(r.stderr, /removed .*\.git\/COMMIT_EDITMSG, a symbolic link to /);
      assert.match(r.stderr, /removed .*\.git\/logs\/refs\/heads\/fifo, a special file/);

      // A link left there by a session that never ended (or made on the host meanwhile) refuses the next start.
      symlinkSync(victim, join(ws, '.git', 'logs', 'HEAD.old'));
      unlinkSync(join(ws, '.git', 'logs', 'HEAD'));
      symlinkSync(victim, join(ws, '.git', 'logs', 'HEAD'));
      const refused = sandbox(ws, 'touch ran');
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /\.git\/logs\/HEAD is a symbolic link to .*victim-rc.*remove it/);
      assert.equal(existsSync(join(ws, 'ran')), false, 'the command ran');
      assert.equal(existsSync(marker), false);
    });

    it('git-sequencer-strategy: a cherry-pick the agent leaves in progress with a strategy of its own is set aside at the end, so --continue on the host runs nothing; state there at the start is read-only', () => {
      const base = ownedDir(runner);
      const ws = repository(runner, join(base, 'ws'));
      const marker = join(base, 'strategy-ran');
      const r = sandbox(ws, [
        'echo b > g && git add g && git -c user.email=a@b -c user.name=u commit -qm B && B=$(git rev-parse HEAD) && git reset -q --hard HEAD~1 && H=$(git rev-parse HEAD)',
        `mkdir -p .git/sequencer "git-merge-." && printf '#!/bin/sh\ntouch ${marker}\nexit 1\n' > "git-merge-./x" && chmod +x "git-merge-./x"`,
        'echo $H > .git/sequencer/head && echo $H > .git/sequencer/abort-safety',
        'printf "pick $B B\npick $B B\n" > .git/sequencer/todo && printf "[options]\n\tstrategy = ./x\n" > .git/sequencer/opts && echo planted',
      ].join(' && '));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /planted/);
      hostGit(runner, ws, 'cherry-pick', '--continue');
      assert.equal(existsSync(marker), false, 'git cherry-pick --continue on the host ran the agent\'s strategy');
      assert.match(r.stderr, /moved .*\.git\/sequencer to sequencer\.from-sandbox-/);
      assert.doesNotMatch(hostGit(runner, ws, 'status').stdout, /cherry-pick/i);

      // A rebase in progress on the host when the session starts is yours: the agent cannot change its todo list.
      mkdirSync(join(ws, '.git', 'rebase-merge'));
      writeFileSync(join(ws, '.git', 'rebase-merge', 'git-rebase-todo'), 'pick 0000000 mine\n');
      spawnSync('chown', ['-R', `${runner.uid}:${runner.gid}`, join(ws, '.git', 'rebase-merge')]);
      const held = sandbox(ws, 'if (echo "exec touch x" >> .git/rebase-merge/git-rebase-todo) 2>/dev/null; then echo WROTE; else echo denied; fi');
      assert.equal(held.status, 0, held.stderr);
      assert.match(held.stdout, /^denied$/m);
      assert.equal(readFileSync(join(ws, '.git', 'rebase-merge', 'git-rebase-todo'), 'utf8'), 'pick 0000000 mine\n');
      assert.equal(existsSync(join(ws, '.git', 'rebase-merge')), true, 'the user\'s own rebase state was moved');
    });

    it('a cherry-pick of several commits and a rebase still work inside, and leave nothing to set aside', () => {
      const ws = repository(runner, join(ownedDir(runner), 'ws'));
      const r = sandbox(ws, [
        'c() { git -c user.name=t -c user.email=t@example.com "$@"; }',
        'git checkout -q -b side && echo 1 > a && git add a && c commit -qm one && echo 2 > b && git add b && c commit -qm two',
        'git checkout -q - && echo 3 > c && git add c && c commit -qm three',
        'c cherry-pick side~1 side >/dev/null && git checkout -q side && c rebase -q - && git log --format=%s',
      ].join('\n'));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'two\none\nthree\nfirst\n');
      assert.doesNotMatch(r.stderr, /moved|removed/);
    });

    it('nested-repository: a nested repository, one two levels down and the bare repository a .git file names (gitdir: ./.bare) are protected like .git; git on the host runs no planted fsmonitor, and commits still work in each', () => {
      const base = ownedDir(runner);
      const ws = repository(runner, join(base, 'ws'));
      repository(runner, join(ws, 'app'));
      repository(runner, join(ws, 'vendor', 'lib'));
      const layout = mkdirOwned(runner, join(ws, 'layout'));
      assert.equal(hostGit(runner, layout, 'init', '-q', '--bare', '.bare').status, 0);
      writeFileSync(join(layout, '.git'), 'gitdir: ./.bare\n');
      spawnSync('chown', [`${runner.uid}:${runner.gid}`, join(layout, '.git')]);
      for (const args of [['config', 'core.bare', 'false'], ['commit', '-q', '--allow-empty', '-m', 'first']]) assert.equal(hostGit(runner, layout, ...args).status, 0);
      const marker = join(base, 'fsmonitor-ran');
      const r = sandbox(ws, [
        'attempt() { if (eval "$2") 2>/dev/null; then echo "WROTE $1"; else echo "denied $1"; fi; }',
        `plant() { printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' >> "$1"; }`,
        'attempt app "plant app/.git/config"',
        'attempt vendor/lib "plant vendor/lib/.git/config"',
        'attempt layout/.bare "plant layout/.bare/config"',
        'attempt layout/.git "echo gitdir: ../app/.git > layout/.git"',
        'attempt app-hook "printf \'#!/bin/sh\\n\' > app/.git/hooks/post-checkout"',
        'c() { git -c user.name=t -c user.email=t@example.com "$@"; }',
        '(cd app && echo a > a && git add a && c commit -qm inside) && (cd layout && echo b > b && git add b && c commit -qm inside) && echo committed',
      ].join('\n'));
      assert.equal(r.status, 0, r.stderr);
      for (const dir of ['app', join('vendor', 'lib'), 'layout']) hostGit(runner, join(ws, dir), 'status', '--porcelain');
      assert.equal(existsSync(marker), false, 'git on the host ran the agent\'s fsmonitor command');
      for (const name of ['app', 'vendor/lib', 'layout/.bare', 'layout/.git', 'app-hook']) assert.match(r.stdout, new RegExp(`^denied ${name.replaceAll('.', '\\.')}$`, 'm'), r.stdout);
      assert.match(r.stdout, /^committed$/m, r.stderr);
      assert.equal(hostGit(runner, join(ws, 'app'), 'log', '--format=%s', '-1').stdout, 'inside\n');
      assert.equal(hostGit(runner, layout, 'log', '--format=%s', '-1').stdout, 'inside\n');
    });

    it('nested-repository: a .git file naming a repository the agent could change through a --rw-mount refuses the run, saying what to do', () => {
      const base = ownedDir(runner);
      const ws = mkdirOwned(runner, join(base, 'ws'));
      const other = repository(runner, join(base, 'other'));
      writeFileSync(join(ws, '.git'), `gitdir: ${other}/.git\n`);
      const r = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--rw-mount', other, '--', '/bin/sh', '-c', 'touch ran']);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /names the repository .*other\/\.git, which the agent could change through .*other.*do not mount .* writable/);
      assert.equal(existsSync(join(ws, 'ran')), false, 'the command ran');
      // Without that mount, the same workspace runs.
      const ok = latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, '--', '/bin/sh', '-c', 'touch ran']);
      assert.equal(ok.status, 0, ok.stderr);
    });

    it('a repository still works inside: git commit writes objects, refs, the index and logs, and git on the host sees the commit', () => {
      const ws = repository(runner, join(ownedDir(runner), 'ws'));
      const r = sandbox(ws, 'echo hello > a && git add a && git -c user.name=t -c user.email=t@example.com commit -q -m inside && git checkout -q -b topic && git log --oneline');
      assert.equal(r.status, 0, r.stderr);
      const log = hostGit(runner, ws, 'log', '--format=%s', 'topic');
      assert.equal(log.stdout, 'inside\nfirst\n', log.stderr);
      assert.equal(hostGit(runner, ws, 'status', '--porcelain').stdout, '');
      assert.equal(hostGit(runner, ws, 'rev-parse', '--abbrev-ref', 'HEAD').stdout, 'topic\n');
    });
  });
}
