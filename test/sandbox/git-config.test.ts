/**
 * What a repository's configuration sends git to in the workspace (included files, the hooks directory) is
 * protected like the configuration itself: first where sandbox/git-config.ts finds it, then for real through
 * `lattice sandbox`, as root and as a normal user. Every target is the test's own: throwaway repositories, files
 * and directories, and marker files that a planted fsmonitor command or hook would create.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../helpers.ts';
import { MAX_INCLUDE_DEPTH, configuredPaths, settingsOf } from '../../sandbox/git-config.ts';
import { findRepositories } from '../../sandbox/repos.ts';
import { gateAs, isRoot, latticeAs, mkdirOwned, ownedDir, runners, type SandboxHome } from './harness.ts';

/** git as `uid` (the runner, or this process), reading no configuration but the repository's own. */
function git(cwd: string, args: readonly string[], uid = process.getuid?.() ?? 0): { status: number | null; stdout: string; stderr: string } {
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  const r = spawnSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, env, uid, gid: uid, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes `content` at `path` (its directory made), owned by `uid`. */
function put(path: string, content: string, uid: number, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content, { mode });
  if (isRoot) spawnSync('chown', ['-R', `${uid}:${uid}`, join(path, '..')]);
}

describe('git-config: what a repository\'s configuration names', () => {
  const repo = (): string => {
    const ws = realpathSync(tempDir());
    assert.equal(git(ws, ['init', '-q']).status, 0);
    return ws;
  };
  const paths = (ws: string, writable: readonly string[] = [], home = '/nonexistent') => configuredPaths(ws, findRepositories(ws, writable).checkouts, writable, home);

  it('git-config-include: an include, an includeIf whatever its condition, an include of an include and core.hooksPath, resolved as git resolves them', () => {
    const ws = repo();
    const home = realpathSync(tempDir());
    symlinkSync(ws, join(home, 'project'));
    for (const args of [
      ['include.path', '../.gitconfig.project'],
      ['includeIf.gitdir:/nonexistent/.path', 'conf/never.inc'], // relative to .git/config: .git/conf/never.inc
      ['--add', 'include.path', '~/project/conf/home.inc'], // ~/ from HOME, through a link outside the workspace
      ['core.hooksPath', '.husky/_'], // relative to the checkout's top
    ]) assert.equal(git(ws, ['config', ...args]).status, 0);
    writeFileSync(join(ws, '.gitconfig.project'), '[include]\n\tpath = conf/nested.inc\n');
    mkdirSync(join(ws, '.git', 'conf'));
    writeFileSync(join(ws, '.git', 'conf', 'never.inc'), '');
    mkdirSync(join(ws, 'conf'));
    writeFileSync(join(ws, 'conf', 'nested.inc'), '[pull]\n\trebase = true\n');
    writeFileSync(join(ws, 'conf', 'home.inc'), '');
    mkdirSync(join(ws, '.husky', '_'), { recursive: true });
    assert.deepEqual(paths(ws, [], home), ['.git/conf/never.inc', '.gitconfig.project', '.husky/_', 'conf/home.inc', 'conf/nested.inc']);
  });

  it('git-config-include: follows includes to git\'s depth (10) and no further (git stops there with an error)', () => {
    const ws = repo();
    assert.equal(git(ws, ['config', 'include.path', '../inc/1']).status, 0);
    mkdirSync(join(ws, 'inc'));
    for (let i = 1; i <= MAX_INCLUDE_DEPTH + 2; i++) writeFileSync(join(ws, 'inc', String(i)), `[include]\n\tpath = ${i + 1}\n`);
    assert.equal(MAX_INCLUDE_DEPTH, 10);
    assert.deepEqual(paths(ws), Array.from({ length: 10 }, (_, i) => `inc/${i + 1}`).sort());
  });

  it('git-config-include: a target outside the workspace is left alone; one there is read for includes into it', () => {
    const ws = repo();
    const outside = realpathSync(tempDir());
    writeFileSync(join(outside, 'team.inc'), `[include]\n\tpath = ${ws}/conf/back.inc\n`);
    mkdirSync(join(ws, 'conf'));
    writeFileSync(join(ws, 'conf', 'back.inc'), '');
    assert.equal(git(ws, ['config', 'include.path', join(outside, 'team.inc')]).status, 0);
    assert.deepEqual(paths(ws), ['conf/back.inc']);
    assert.equal(git(ws, ['config', 'include.path', join(outside, 'absent.inc')]).status, 0);
    assert.deepEqual(paths(ws), []);
  });

  it('git-config-include: a target in the workspace that is a link, lies through one or is absent, or one the agent could change elsewhere, refuses', () => {
    const ws = repo();
    const elsewhere = realpathSync(tempDir());
    writeFileSync(join(elsewhere, 'x.inc'), '');
    symlinkSync(join(elsewhere, 'x.inc'), join(ws, 'linked.inc'));
    symlinkSync(elsewhere, join(ws, 'dir'));
    const refuses = (value: string, pattern: RegExp, writable: readonly string[] = []) => {
      assert.equal(git(ws, ['config', 'include.path', value]).status, 0);
      assert.throws(() => paths(ws, writable), (e: Error & { code?: string }) => e.code === 'UNSAFE_PATH' && pattern.test(e.message));
    };
    refuses('../linked.inc', /include\.path = \.\.\/linked\.inc in .*\.git\/config leads through .*linked\.inc, a symbolic link in the workspace/);
    refuses('../dir/x.inc', /leads through .*\/dir, a symbolic link in the workspace/);
    refuses('../absent.inc', /names .*\/absent\.inc as a file it includes.*does not exist.*create it \(an empty file will do\) or remove the setting/);
    refuses(join(elsewhere, 'x.inc'), /could change through .*do not mount .* writable/, [elsewhere]);
    assert.equal(git(ws, ['config', '--unset', 'include.path']).status, 0);
    assert.equal(git(ws, ['config', 'core.hooksPath', '.']).status, 0);
    assert.throws(() => paths(ws), /names the workspace .* itself as its hooks directory/);
  });

  it('reads a configuration with git, only when it has an include or hooks setting', () => {
    assert.deepEqual(settingsOf(Buffer.from('[core]\n\tfsmonitor = x\n[includeIf "gitdir:~/A/"]\n\tPath = "a b"\n[CORE]\n\thooksPATH = h\n'), 'c'), [
      { key: 'includeif.gitdir:~/A/.path', value: 'a b' },
      { key: 'core.hookspath', value: 'h' },
    ]);
    assert.deepEqual(settingsOf(Buffer.from('[oops\n'), 'c'), []); // nothing git could include: not parsed
    assert.throws(() => settingsOf(Buffer.from('[include\n'), '/x/config'), /git cannot read \/x\/config .*bad config line 1/);
    const path = process.env['PATH'];
    process.env['PATH'] = '/nonexistent';
    try {
      assert.throws(() => settingsOf(Buffer.from('[include]\n\tpath = x\n'), '/x/config'), (e: Error & { code?: string }) => e.code === 'SANDBOX_UNAVAILABLE' && /\/x\/config has include or hooks settings.*git, which is not on PATH; install git/.test(e.message));
    } finally {
      process.env['PATH'] = path;
    }
  });
});

for (const runner of runners()) {
  describe(`git-config: included files and hooks directories, as ${runner.label}`, () => {
    let gate: SandboxHome;
    before(async () => (gate = await gateAs(runner)));
    after(async () => gate.stop());
    const sandbox = (ws: string, script: string, extra: readonly string[] = []) =>
      latticeAs(runner, ['sandbox', '--home', gate.home, '--workspace', ws, ...extra, '--', '/bin/sh', '-c', script]);
    const hostGit = (cwd: string, ...args: string[]) => git(cwd, args, runner.uid);
    const repository = (dir: string): string => {
      mkdirOwned(runner, dir);
      for (const args of [['init', '-q'], ['commit', '-q', '--allow-empty', '-m', 'first']]) assert.equal(hostGit(dir, ...args).status, 0);
      return dir;
    };
    /** Shell: `attempt NAME CMD` says whether CMD could write; `plant FILE` appends a fsmonitor that creates `marker`. */
    const attempts = (marker: string) => [
      'attempt() { if (eval "$2") 2>/dev/null; then echo "WROTE $1"; else echo "denied $1"; fi; }',
      `plant() { printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' >> "$1"; }`,
      `hook() { printf '#!/bin/sh\\ntouch ${marker}\\n' > "$1" && chmod +x "$1"; }`,
    ];

    it('git-config-include: a file the config includes from the worktree (include, includeIf true or false, an include of it) and a core.hooksPath there are read-only inside; git on the host then runs no planted fsmonitor or hook', () => {
      const base = ownedDir(runner);
      const ws = repository(join(base, 'ws'));
      for (const args of [
        ['include.path', '../.gitconfig.project'],
        [`includeIf.gitdir:${ws}/.path`, '../conf/cond.inc'],
        ['includeIf.gitdir:/nonexistent/.path', '../conf/never.inc'],
        ['core.hooksPath', '.husky'],
      ]) assert.equal(hostGit(ws, 'config', ...args).status, 0);
      put(join(ws, '.gitconfig.project'), '[pull]\n\trebase = true\n[include]\n\tpath = conf/nested.inc\n', runner.uid);
      for (const name of ['cond.inc', 'never.inc', 'nested.inc']) put(join(ws, 'conf', name), '', runner.uid);
      put(join(ws, '.husky', 'pre-commit'), '#!/bin/sh\nexit 0\n', runner.uid, 0o755);
      const marker = join(base, 'host-ran');
      const r = sandbox(ws, [
        ...attempts(marker),
        'attempt include "plant .gitconfig.project"',
        'attempt include-if "plant conf/cond.inc"',
        'attempt include-if-false "plant conf/never.inc"',
        'attempt nested "plant conf/nested.inc"',
        'attempt include-swap "mv .gitconfig.project moved && plant .gitconfig.project"',
        'attempt hook "hook .husky/pre-commit"',
        'attempt new-hook "hook .husky/post-checkout"',
        'attempt hooks-swap "mv .husky husky-old && mkdir .husky && hook .husky/pre-commit"',
        'echo "pull.rebase: $(git config pull.rebase)"',
        'echo a > a && echo "wrote a workspace file"',
      ].join('\n'));
      assert.equal(r.status, 0, r.stderr);
      for (const name of ['include', 'include-if', 'include-if-false', 'nested', 'include-swap', 'hook', 'new-hook', 'hooks-swap']) {
        assert.match(r.stdout, new RegExp(`^denied ${name}$`, 'm'), r.stdout);
      }
      assert.match(r.stdout, /^pull\.rebase: true$/m, 'git inside no longer reads the included file');
      assert.match(r.stdout, /^wrote a workspace file$/m);
      assert.equal(hostGit(ws, 'status', '--porcelain').status, 0);
      assert.equal(hostGit(ws, 'commit', '-q', '--allow-empty', '-m', 'after').status, 0);
      assert.equal(existsSync(marker), false, 'git on the host ran what the agent wrote');
      assert.equal(readFileSync(join(ws, '.gitconfig.project'), 'utf8'), '[pull]\n\trebase = true\n[include]\n\tpath = conf/nested.inc\n');
    });

    it('git-config-include: a linked worktree\'s hooks directory, named relative to it by a configuration outside the workspace, is read-only inside', () => {
      const base = ownedDir(runner);
      const main = repository(join(base, 'main'));
      assert.equal(hostGit(main, 'config', 'core.hooksPath', '.githooks').status, 0);
      const ws = join(base, 'ws');
      assert.equal(hostGit(main, 'worktree', 'add', '-q', ws).status, 0);
      put(join(ws, '.githooks', 'pre-commit'), '#!/bin/sh\nexit 0\n', runner.uid, 0o755);
      const marker = join(base, 'host-ran');
      const r = sandbox(ws, [...attempts(marker), 'attempt hook "hook .githooks/pre-commit"', 'attempt new-hook "hook .githooks/post-commit"'].join('\n'));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^denied hook$/m, r.stdout);
      assert.match(r.stdout, /^denied new-hook$/m, r.stdout);
      assert.equal(hostGit(ws, 'commit', '-q', '--allow-empty', '-m', 'after').status, 0);
      assert.equal(existsSync(marker), false, 'git on the host ran a hook the agent wrote');
    });

    it('git-config-include: a target that is a link or absent, or that the agent could change through a --rw-mount, refuses the run, saying what to do', () => {
      const base = ownedDir(runner);
      const ws = repository(join(base, 'ws'));
      const shared = mkdirOwned(runner, join(base, 'shared'));
      put(join(shared, 'team.inc'), '', runner.uid);
      symlinkSync(join(shared, 'team.inc'), join(ws, 'linked.inc'));
      const cases: [string, RegExp, string[]][] = [
        ['../linked.inc', /linked\.inc, a symbolic link in the workspace/, []],
        ['../absent.inc', /absent\.inc as a file it includes.*does not exist.*create it/, []],
        [join(shared, 'team.inc'), /could change through .*shared.*do not mount .* writable/, ['--rw-mount', shared]],
      ];
      for (const [value, message, extra] of cases) {
        assert.equal(hostGit(ws, 'config', 'include.path', value).status, 0);
        const r = sandbox(ws, 'touch ran', extra);
        assert.notEqual(r.status, 0, `the run went ahead with include.path = ${value}`);
        assert.match(r.stderr, message);
        assert.equal(existsSync(join(ws, 'ran')), false, 'the command ran');
      }
      // Once the file exists, the same configuration runs.
      put(join(ws, 'absent.inc'), '', runner.uid);
      assert.equal(hostGit(ws, 'config', 'include.path', '../absent.inc').status, 0);
      const ok = sandbox(ws, 'touch ran');
      assert.equal(ok.status, 0, ok.stderr);
    });

    it('a repository without includes runs as before, and one whose include lies outside the workspace is unaffected', () => {
      const base = ownedDir(runner);
      const ws = repository(join(base, 'ws'));
      // Nothing includes it: an ordinary workspace file.
      put(join(ws, '.gitconfig.project'), '', runner.uid);
      const plain = sandbox(ws, 'echo "[pull]" >> .gitconfig.project && git status --porcelain');
      assert.equal(plain.status, 0, plain.stderr);
      assert.match(plain.stdout, /\?\? \.gitconfig\.project/);
      put(join(base, 'team.inc'), '[pull]\n\trebase = true\n', runner.uid);
      assert.equal(hostGit(ws, 'config', 'include.path', join(base, 'team.inc')).status, 0);
      const outside = sandbox(ws, 'echo b > b && git status --porcelain && echo ok');
      assert.equal(outside.status, 0, outside.stderr);
      assert.match(outside.stdout, /^ok$/m);
      assert.equal(readFileSync(join(base, 'team.inc'), 'utf8'), '[pull]\n\trebase = true\n');
    });
  });
}
