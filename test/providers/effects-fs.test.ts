/**
 * The fs effect executor: reads and writes beneath the root, never through a symlink (final, intermediate or
 * dangling, even one swapped in mid-read or mid-write), never a hard-linked file, never into a non-regular file,
 * never a path the sink's deny globs refuse, never with content that does not match its declared hash, and never
 * leaving a temp file behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs, { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parseManifest, type ActionManifest } from '../../core/actions/manifest.ts';
import { sha256Hex } from '../../core/crypto/index.ts';
import type { EffectResult, FsReadEffect, FsWriteEffect } from '../../core/pipeline/effects.ts';
import { HostEffects } from '../../providers/effects/index.ts';
import { rejectsWithCode, tempDir } from '../helpers.ts';

interface Fixture {
  readonly root: string;
  /** A directory outside the root holding `secret.txt`, which nothing may change. */
  readonly outside: string;
  readonly manifest: ActionManifest;
}

const ORIGINAL = 'outside the root, must not change\n';

function fixture(sinkLines = ''): Fixture {
  const root = tempDir();
  const outside = tempDir();
  writeFileSync(join(outside, 'secret.txt'), ORIGINAL);
  const toml = `
id = "test.fs"
version = "1.0.0"
description = "test"
risk = "low"
[provider]
builtin = "fs.write"
[request.schema]
type = "object"
[sinks.fs]
root = ${JSON.stringify(root)}
${sinkLines}
`;
  return { root, outside, manifest: parseManifest(toml, 'test') };
}

function write(path: string, content: string): FsWriteEffect {
  return { kind: 'fs.write', path, content, bytes: Buffer.byteLength(content), sha256: sha256Hex(content) };
}

function read(path: string): FsReadEffect {
  return { kind: 'fs.read', path };
}

async function perform(f: Fixture, effect: FsReadEffect | FsWriteEffect, host = new HostEffects()): Promise<EffectResult> {
  return await host.perform(effect, { manifest: f.manifest, secret: () => assert.fail('fs effects use no secrets'), signal: AbortSignal.timeout(5000) });
}

async function refused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await rejectsWithCode(promise, code, message);
}

function assertOutsideUnchanged(f: Fixture): void {
  assert.equal(readFileSync(join(f.outside, 'secret.txt'), 'utf8'), ORIGINAL);
  assert.deepEqual(readdirSync(f.outside), ['secret.txt']);
}

/** Every temp file the executor could have left anywhere beneath `dir`. */
function leftovers(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => /(^|\/)\.lattice-[^/]*\.tmp$/.test(name));
}

describe('fs effects: reading and writing', () => {
  it('writes a new file, creating missing directories, then reads it back', async () => {
    const f = fixture();
    const effect = write('a/b/c.txt', 'héllo\n');
    assert.deepEqual(await perform(f, effect), { kind: 'fs.write', path: 'a/b/c.txt', bytes: 7, sha256: effect.sha256, created: true });
    assert.equal(readFileSync(join(f.root, 'a/b/c.txt'), 'utf8'), 'héllo\n');
    assert.ok(statSync(join(f.root, 'a/b')).isDirectory());
    assert.deepEqual(await perform(f, read('a/b/c.txt')), { kind: 'fs.read', path: 'a/b/c.txt', bytes: 7, sha256: effect.sha256, content: 'héllo\n', encoding: 'utf8' });
    assert.deepEqual(leftovers(f.root), []);
  });

  it('replaces an existing file (created false), keeping its permissions', async () => {
    const f = fixture();
    writeFileSync(join(f.root, 'notes.txt'), 'old', { mode: 0o600 });
    chmodSync(join(f.root, 'notes.txt'), 0o600);
    const result = await perform(f, write('notes.txt', 'new'));
    assert.equal(result.kind === 'fs.write' && result.created, false);
    assert.equal(readFileSync(join(f.root, 'notes.txt'), 'utf8'), 'new');
    assert.equal(statSync(join(f.root, 'notes.txt')).mode & 0o777, 0o600);
    assert.deepEqual(leftovers(f.root), []);
  });

  it('returns bytes that are not UTF-8 as base64, and keeps a byte-order mark', async () => {
    const f = fixture();
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0xc3]);
    writeFileSync(join(f.root, 'blob'), binary);
    writeFileSync(join(f.root, 'bom.txt'), '\uFEFFtext');
    assert.deepEqual(await perform(f, read('blob')), { kind: 'fs.read', path: 'blob', bytes: 4, sha256: sha256Hex(binary), content: binary.toString('base64'), encoding: 'base64' });
    const bom = await perform(f, read('bom.txt'));
    assert.equal(bom.kind === 'fs.read' && bom.content, '\uFEFFtext');
  });

  it('refuses to read a missing file, a directory or one over maxReadBytes; one at the limit is read', async () => {
    const f = fixture();
    const host = new HostEffects({ maxReadBytes: 10 });
    writeFileSync(join(f.root, 'ten'), '0123456789');
    writeFileSync(join(f.root, 'eleven'), '0123456789a');
    mkdirSync(join(f.root, 'dir'));
    await refused(perform(f, read('missing'), host), 'EFFECT_FAILED', /no such file/);
    await refused(perform(f, read('nodir/missing'), host), 'EFFECT_FAILED', /no such file/);
    await refused(perform(f, read('dir'), host), 'EFFECT_FAILED', /not a regular file/);
    await refused(perform(f, read('eleven'), host), 'EFFECT_FAILED', /larger than the 10 bytes/);
    const ten = await perform(f, read('ten'), host);
    assert.equal(ten.kind === 'fs.read' && ten.content, '0123456789');
  });
});

describe('fs effects: what is refused', () => {
  it('reports a system call failure (a name over 255 bytes) as EFFECT_FAILED; a 255-byte name is written', async () => {
    const f = fixture();
    await refused(perform(f, write('x'.repeat(256), 'x')), 'EFFECT_FAILED', /ENAMETOOLONG/);
    await refused(perform(f, read('x'.repeat(256))), 'EFFECT_FAILED', /ENAMETOOLONG/);
    await perform(f, write('x'.repeat(255), 'x'));
    assert.deepEqual(leftovers(f.root), []);
  });

  it('refuses paths that are absolute or not normalized; a normalized one is allowed', async () => {
    const f = fixture();
    for (const path of ['../secret.txt', '/etc/passwd', 'a/../b', './a', 'a//b', 'a/', '', '.', 'a/\0b']) {
      await refused(perform(f, write(path, 'x')), 'SINK_DENIED', /not a normalized relative path/);
      await refused(perform(f, read(path)), 'SINK_DENIED', /not a normalized relative path/);
    }
    await perform(f, write('a/b', 'x'));
    assertOutsideUnchanged(f);
  });

  it('refuses a symlink as the final component, leaving its target unchanged; a regular file is written', async () => {
    const f = fixture();
    symlinkSync(join(f.outside, 'secret.txt'), join(f.root, 'link'));
    await refused(perform(f, write('link', 'pwned')), 'SINK_DENIED', /not a regular file/);
    await refused(perform(f, read('link')), 'SINK_DENIED', /symlinks are not followed/);
    assertOutsideUnchanged(f);
    await perform(f, write('real', 'fine'));
    assert.equal(readFileSync(join(f.root, 'real'), 'utf8'), 'fine');
    assert.deepEqual(leftovers(f.root), []);
  });

  it('refuses a symlinked intermediate directory; a real one is walked', async () => {
    const f = fixture();
    symlinkSync(f.outside, join(f.root, 'dir'));
    await refused(perform(f, write('dir/new.txt', 'pwned')), 'SINK_DENIED', /dir is a symlink or not a directory; symlinks are not followed/);
    await refused(perform(f, write('dir/secret.txt', 'pwned')), 'SINK_DENIED', /symlinks are not followed/);
    await refused(perform(f, read('dir/secret.txt')), 'SINK_DENIED', /symlinks are not followed/);
    assertOutsideUnchanged(f);
    mkdirSync(join(f.root, 'real'));
    await perform(f, write('real/new.txt', 'fine'));
    assert.equal(readFileSync(join(f.root, 'real/new.txt'), 'utf8'), 'fine');
  });

  it('refuses to create a directory through a dangling symlink; nothing appears at its target', async () => {
    const f = fixture();
    symlinkSync(join(f.outside, 'made'), join(f.root, 'dangling'));
    await refused(perform(f, write('dangling/new.txt', 'pwned')), 'SINK_DENIED', /dangling is a symlink/);
    assertOutsideUnchanged(f);
    await perform(f, write('fresh/new.txt', 'fine'));
    assert.equal(readFileSync(join(f.root, 'fresh/new.txt'), 'utf8'), 'fine');
  });

  it('refuses a file with another hard link; once it has one link it is written', async () => {
    const f = fixture();
    linkSync(join(f.outside, 'secret.txt'), join(f.root, 'hard'));
    await refused(perform(f, write('hard', 'pwned')), 'SINK_DENIED', /other hard links/);
    assertOutsideUnchanged(f);
    unlinkSync(join(f.outside, 'secret.txt'));
    await perform(f, write('hard', 'fine'));
    assert.equal(readFileSync(join(f.root, 'hard'), 'utf8'), 'fine');
  });

  it('fs-read-hardlink: refuses to read a file with another hard link (a .env linked as notes.txt); a single link is read', async () => {
    const f = fixture();
    writeFileSync(join(f.root, '.env'), 'API_KEY=hunter2\n');
    linkSync(join(f.root, '.env'), join(f.root, 'notes.txt'));
    await refused(perform(f, read('notes.txt')), 'SINK_DENIED', /notes\.txt has other hard links/);
    linkSync(join(f.outside, 'secret.txt'), join(f.root, 'outside.txt'));
    await refused(perform(f, read('outside.txt')), 'SINK_DENIED', /other hard links/);
    unlinkSync(join(f.root, '.env'));
    const read1 = await perform(f, read('notes.txt'));
    assert.equal(read1.kind === 'fs.read' && read1.content, 'API_KEY=hunter2\n', 'once it is the only link, it is an ordinary file');
  });

  it('sink-recheck: refuses a path the deny globs refuse, even when no planner checked it; an allowed one is read', async () => {
    const f = fixture('deny = [".env*"]');
    writeFileSync(join(f.root, 'ok.txt'), 'fine');
    mkdirSync(join(f.root, 'app'));
    writeFileSync(join(f.root, 'app', '.ENV'), 'API_KEY=hunter2\n');
    await refused(perform(f, read('app/.ENV')), 'SINK_DENIED', /denied by "\.env\*"/);
    await refused(perform(f, write('app/.env.local', 'x')), 'SINK_DENIED', /denied by/);
    assert.equal(existsSync(join(f.root, 'app', '.env.local')), false);
    const ok = await perform(f, read('ok.txt'));
    assert.equal(ok.kind === 'fs.read' && ok.content, 'fine');
  });

  it('refuses to write over a directory or a fifo; a regular file is replaced', async () => {
    const f = fixture();
    mkdirSync(join(f.root, 'dir'));
    execFileSync('mkfifo', [join(f.root, 'fifo')]);
    await refused(perform(f, write('dir', 'x')), 'SINK_DENIED', /not a regular file/);
    await refused(perform(f, write('fifo', 'x')), 'SINK_DENIED', /not a regular file/);
    await refused(perform(f, read('fifo')), 'EFFECT_FAILED', /not a regular file/);
    writeFileSync(join(f.root, 'file'), 'old');
    await perform(f, write('file', 'x'));
    assert.deepEqual(leftovers(f.root), []);
  });

  it('writes nothing, not even directories, when the content does not match its bytes or sha256', async () => {
    const f = fixture();
    const good = write('new/dir/x.txt', 'content');
    await refused(perform(f, { ...good, sha256: sha256Hex('other') }), 'EFFECT_FAILED', /does not match/);
    await refused(perform(f, { ...good, bytes: good.bytes + 1 }), 'EFFECT_FAILED', /does not match/);
    assert.equal(existsSync(join(f.root, 'new')), false);
    await perform(f, good);
    assert.equal(readFileSync(join(f.root, 'new/dir/x.txt'), 'utf8'), 'content');
  });
});

describe('fs effects: atomic writes', () => {
  /** Runs `fn` with a node:fs function replaced (named ESM imports included), restoring it afterwards. */
  async function withMock(t: TestContext, name: 'renameSync' | 'fsyncSync' | 'openSync', impl: (...args: never[]) => unknown, fn: () => Promise<void>): Promise<void> {
    t.mock.method(fs, name, impl);
    syncBuiltinESMExports();
    try {
      await fn();
    } finally {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    }
  }

  it('removes its temp file and keeps the old content when the write fails after the temp file exists', async (t) => {
    const f = fixture();
    writeFileSync(join(f.root, 'keep.txt'), 'old');
    const fail = () => {
      throw Object.assign(new Error('simulated I/O error'), { code: 'EIO' });
    };
    for (const name of ['renameSync', 'fsyncSync'] as const) {
      await withMock(t, name, fail, () => refused(perform(f, write('keep.txt', 'new')), 'EFFECT_FAILED', /keep\.txt: could not be written: EIO/));
      assert.equal(readFileSync(join(f.root, 'keep.txt'), 'utf8'), 'old');
      assert.deepEqual(leftovers(f.root), []);
    }
  });

  it('symlink-swap: a final component swapped for a symlink after the check is replaced, not written through', async (t) => {
    const f = fixture();
    writeFileSync(join(f.root, 'target'), 'old');
    const rename = fs.renameSync.bind(fs);
    await withMock(t, 'renameSync', (from: string, to: string) => {
      unlinkSync(join(f.root, 'target'));
      symlinkSync(join(f.outside, 'secret.txt'), join(f.root, 'target'));
      rename(from, to);
    }, () => perform(f, write('target', 'new')).then(() => undefined));
    assertOutsideUnchanged(f);
    assert.equal(readFileSync(join(f.root, 'target'), 'utf8'), 'new');
  });

  it('symlink-swap: a read whose directory is swapped for a symlink after it was walked reads inside the root', async (t) => {
    const f = fixture();
    mkdirSync(join(f.root, 'sub'));
    writeFileSync(join(f.root, 'sub', 'secret.txt'), 'inside');
    const open = fs.openSync.bind(fs);
    await withMock(t, 'openSync', (path: string, flags: number, mode?: number) => {
      if (path.endsWith('/secret.txt') && existsSync(join(f.root, 'sub')) && !existsSync(join(f.root, 'moved'))) {
        renameSync(join(f.root, 'sub'), join(f.root, 'moved'));
        symlinkSync(f.outside, join(f.root, 'sub'));
      }
      return open(path, flags, mode);
    }, async () => {
      const result = await perform(f, read('sub/secret.txt'));
      assert.equal(result.kind === 'fs.read' && result.content, 'inside', 'read through the walked descriptor, not the new link');
    });
    assert.ok(existsSync(join(f.root, 'moved')), 'the swap happened');
  });

  it('symlink-swap: a directory swapped for a symlink after it was walked is not followed', async (t) => {
    const f = fixture();
    mkdirSync(join(f.root, 'sub'));
    const open = fs.openSync.bind(fs);
    await withMock(t, 'openSync', (path: string, flags: number, mode?: number) => {
      if ((flags & fs.constants.O_CREAT) !== 0) {
        renameSync(join(f.root, 'sub'), join(f.root, 'moved'));
        symlinkSync(f.outside, join(f.root, 'sub'));
      }
      return open(path, flags, mode);
    }, () => perform(f, write('sub/new.txt', 'x')).then(() => undefined));
    assertOutsideUnchanged(f);
    assert.equal(readFileSync(join(f.root, 'moved/new.txt'), 'utf8'), 'x');
  });
});
