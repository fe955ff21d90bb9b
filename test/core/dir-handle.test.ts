/**
 * core/dir-handle.ts, the descriptor-held directory that host-side code uses in trees an agent writes: every
 * component is looked up through its parent's descriptor, a symlink is refused where it would be followed, a directory
 * swapped for a link after it was opened changes nothing, and what is read or written is only the entry it names.
 * Victims are this test's own temporary files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DirHandle } from '../../core/dir-handle.ts';
import { LatticeError } from '../../core/errors.ts';
import { tempDir } from '../helpers.ts';

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof LatticeError && error.code === 'UNSAFE_PATH' && message.test(error.message));
}

describe('DirHandle', () => {
  it('symlink-component: a link at any component is refused, naming it, and nothing is made where it points', () => {
    const root = tempDir();
    const victim = tempDir();
    mkdirSync(join(root, 'a'));
    symlinkSync(victim, join(root, 'a', 'b'));
    const dir = DirHandle.open(root, 'refuse');
    try {
      refused(() => dir.dir('a/b/c', { create: true }), new RegExp(`${join(root, 'a', 'b')} is a symbolic link`));
      refused(() => dir.dir('a/b', { create: false }), /is a symbolic link/);
      assert.deepEqual(readdirSync(victim), []);
      // The same walk without the link makes every directory, 0700.
      const made = dir.dir('x/y/z', { create: true });
      made.close();
      assert.equal(lstatSync(join(root, 'x', 'y', 'z')).mode & 0o777, 0o700);
      assert.equal(dir.dir('nope/deeper', { create: false }), null);
    } finally {
      dir.close();
    }
  });

  it('symlink-swap: a directory renamed and replaced by a link after it was opened is still the one written to', () => {
    const root = tempDir();
    const victim = tempDir();
    mkdirSync(join(root, 'conf'));
    const base = DirHandle.open(root, 'refuse');
    const conf = base.dir('conf', { create: false });
    assert.ok(conf !== null);
    try {
      // What an agent running at the same time would do between lattice's open and its write.
      renameSync(join(root, 'conf'), join(root, 'moved'));
      symlinkSync(victim, join(root, 'conf'));
      conf.replace('mcp.json', '{"lattice":true}\n');
      assert.equal(conf.read('mcp.json', 1024)?.toString('utf8'), '{"lattice":true}\n');
      assert.deepEqual(readdirSync(victim), []);
      assert.equal(readFileSync(join(root, 'moved', 'mcp.json'), 'utf8'), '{"lattice":true}\n');
    } finally {
      conf.close();
      base.close();
    }
  });

  it('reads only a regular file with one link, capped; a link, a FIFO (without hanging) or a hard link is refused', () => {
    const root = tempDir();
    const secret = join(tempDir(), 'secret.json');
    writeFileSync(secret, '{"token":"host"}');
    symlinkSync(secret, join(root, 'link.json'));
    linkSync(secret, join(root, 'hard.json'));
    execFileSync('mkfifo', [join(root, 'fifo.json')]);
    writeFileSync(join(root, 'big.json'), 'x'.repeat(2048));
    writeFileSync(join(root, 'ok.json'), '{}');
    const dir = DirHandle.open(root, 'refuse');
    try {
      refused(() => dir.read('link.json', 1024), /link\.json is a symbolic link/);
      refused(() => dir.read('hard.json', 1024), /has other hard links/);
      refused(() => dir.read('fifo.json', 1024), /is not a regular file/);
      refused(() => dir.read('big.json', 1024), /is larger than 1024 bytes/);
      assert.equal(dir.read('ok.json', 1024)?.toString('utf8'), '{}');
      assert.equal(dir.read('missing.json', 1024), null);
      assert.throws(() => dir.read('../escape', 1024), /is not a single file name/);
    } finally {
      dir.close();
    }
  });

  it('tmp-symlink: replace writes through no link and leaves no temp file; a link at the name is replaced, not followed', () => {
    const root = tempDir();
    const victim = join(tempDir(), 'victim');
    writeFileSync(victim, 'host');
    symlinkSync(victim, join(root, 'config.json'));
    const dir = DirHandle.open(root, 'refuse');
    try {
      dir.replace('config.json', 'new');
      assert.equal(readFileSync(victim, 'utf8'), 'host');
      assert.ok(lstatSync(join(root, 'config.json')).isFile());
      assert.deepEqual(readdirSync(root), ['config.json']);
    } finally {
      dir.close();
    }
  });

  it('follow: in a tree whose links are its owner\'s own (a user\'s home), links are followed', () => {
    const home = tempDir();
    const dotfiles = tempDir();
    symlinkSync(dotfiles, join(home, '.config'));
    const dir = DirHandle.open(home, 'follow');
    try {
      const sub = dir.dir('.config/tool', { create: true });
      sub.replace('settings.json', '{}');
      sub.close();
      assert.ok(existsSync(join(dotfiles, 'tool', 'settings.json')));
    } finally {
      dir.close();
    }
  });

  it('gives a file it writes and a directory it makes exactly the mode asked, under lattice\'s umask 077; a directory already there keeps its own', () => {
    const root = tempDir();
    mkdirSync(join(root, 'kept'), { mode: 0o700 });
    const previous = process.umask(0o077); // what cli/main.ts sets for every command
    const dir = DirHandle.open(root, 'refuse');
    try {
      const shared = dir.dir('shared', { create: true, mode: 0o755 });
      shared.replace('team.json', '{}', 0o644);
      assert.equal(shared.permissions('team.json'), 0o644);
      assert.equal(shared.permissions('absent.json'), null);
      shared.close();
      dir.dir('kept', { create: true, mode: 0o755 }).close();
      dir.replace('private.json', '{}');
    } finally {
      dir.close();
      process.umask(previous);
    }
    assert.equal(lstatSync(join(root, 'shared')).mode & 0o777, 0o755);
    assert.equal(lstatSync(join(root, 'shared', 'team.json')).mode & 0o777, 0o644);
    assert.equal(lstatSync(join(root, 'kept')).mode & 0o777, 0o700, 'a directory lattice did not make keeps its mode');
    assert.equal(lstatSync(join(root, 'private.json')).mode & 0o777, 0o600);
  });
});
