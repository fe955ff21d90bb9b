/**
 * The secrets store and its master key: values round-trip and stay encrypted on disk, rows that were altered,
 * moved or sealed under another key are refused, values never reach error messages, and the master key file is
 * created private, exactly once, and refused when it is not.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs, { chmodSync, existsSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { randomKey } from '../../core/crypto/aead.ts';
import { describeError, isLatticeError, type LatticeError } from '../../core/errors.ts';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { openWritable, type LedgerDatabase } from '../../core/ledger/database.ts';
import { loadOrCreateMasterKey, masterKeyPath } from '../../core/secrets/master-key.ts';
import { SecretStore } from '../../core/secrets/store.ts';
import { ROOT, tempDir } from '../helpers.ts';

const VALUE = 'sk-live-4f9c2e71d0b8a6-do-not-leak';

function fresh(): { db: LedgerDatabase; store: SecretStore; file: string; key: Buffer } {
  const file = join(tempDir(), 'lattice.db');
  const db = openWritable(file);
  const key = randomKey();
  return { db, store: new SecretStore(db, key), file, key };
}

/** The LatticeError `fn` throws, checked against a literal code (codes are pinned here, not imported). */
function thrown(fn: () => unknown, code: string): LatticeError {
  try {
    fn();
  } catch (error) {
    assert.ok(isLatticeError(error), `expected a LatticeError, got ${describeError(error)}`);
    assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}

/** Everything an error could print: message, stack and every cause's. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined; e = e instanceof Error ? e.cause : undefined) {
    parts.push(e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : describeError(e));
  }
  return parts.join('\n');
}

function sealedRow(db: LedgerDatabase, name: string): { nonce: Buffer; ciphertext: Buffer } {
  const row = db.prepare('SELECT nonce, ciphertext FROM secrets WHERE name = ?').get(name) as { nonce: Buffer; ciphertext: Buffer } | undefined;
  assert.ok(row !== undefined, `no row ${name}`);
  return row;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('secret store', () => {
  it('round-trips values, reporting whether the secret was created', () => {
    const { db, store } = fresh();
    const values = [VALUE, '', 'ünïcödé ✓ 🔑', '\uFEFFstarts with a byte order mark', 'line\nbreak\0nul', 'x'.repeat(64 * 1024)];
    values.forEach((value, i) => {
      assert.deepEqual(store.set(`S${i}`, value), { created: true });
      assert.equal(store.get(`S${i}`), value);
    });
    assert.deepEqual(store.set('S0', 'replaced'), { created: false });
    assert.equal(store.get('S0'), 'replaced');
    db.close();
  });

  it('keeps createdAt and advances updatedAt on update, with a fresh nonce', async () => {
    const { db, store } = fresh();
    store.set('API_TOKEN', 'one');
    const [before] = store.list();
    const sealedBefore = sealedRow(db, 'API_TOKEN');
    await sleep(5);
    store.set('API_TOKEN', 'two');
    const [after] = store.list();
    assert.ok(before !== undefined && after !== undefined);
    assert.equal(after.createdAt, before.createdAt);
    assert.ok(after.updatedAt > before.updatedAt, `${after.updatedAt} > ${before.updatedAt}`);
    assert.notDeepEqual(sealedRow(db, 'API_TOKEN').nonce, sealedBefore.nonce);
    assert.equal(store.get('API_TOKEN'), 'two');
    db.close();
  });

  it('lists names and times only, sorted, without decrypting', () => {
    const { db, store } = fresh();
    store.set('b.second', VALUE);
    store.set('A_FIRST', `${VALUE}-2`);
    const started = Date.now();
    const list = store.list();
    assert.deepEqual(list.map((s) => s.name), ['A_FIRST', 'b.second']);
    for (const entry of list) {
      assert.deepEqual(Object.keys(entry).sort(), ['createdAt', 'name', 'updatedAt']);
      assert.ok(Number.isInteger(entry.createdAt) && entry.createdAt <= started);
    }
    assert.ok(!JSON.stringify(list).includes(VALUE));
    // A row that no longer decrypts is still listed: list never opens a ciphertext.
    db.prepare("UPDATE secrets SET ciphertext = x'00000000000000000000000000000000' WHERE name = 'A_FIRST'").run();
    assert.deepEqual(store.list().map((s) => s.name), ['A_FIRST', 'b.second']);
    db.close();
  });

  it('removes a secret, and reports when there was none', () => {
    const { db, store } = fresh();
    store.set('GONE', VALUE);
    assert.equal(store.remove('GONE'), true);
    assert.equal(store.remove('GONE'), false);
    assert.deepEqual(store.list(), []);
    thrown(() => store.get('GONE'), 'SECRET_NOT_FOUND');
    db.close();
  });

  it('refuses to get a missing secret with SECRET_NOT_FOUND', () => {
    const { db, store } = fresh();
    const error = thrown(() => store.get('NEVER_SET'), 'SECRET_NOT_FOUND');
    assert.match(error.message, /NEVER_SET/);
    db.close();
  });

  it('refuses invalid names with SECRET_INVALID_NAME, for every operation', () => {
    const { db, store } = fresh();
    const invalid = ['', '1st', '-x', '.x', 'a b', 'a/b', '../x', 'a\n', '\nA', 'a\0b', 'é', 'A'.repeat(129), 'ключ'];
    for (const name of invalid) {
      thrown(() => store.set(name, VALUE), 'SECRET_INVALID_NAME');
      thrown(() => store.get(name), 'SECRET_INVALID_NAME');
      thrown(() => store.remove(name), 'SECRET_INVALID_NAME');
    }
    assert.deepEqual(store.list(), []);
    for (const name of ['_', 'a', 'Z9', 'a.b-c_d', 'GITHUB_TOKEN', `A${'b'.repeat(127)}`]) {
      store.set(name, VALUE);
      assert.equal(store.get(name), VALUE);
    }
    db.close();
  });

  it('refuses a value over 64 KiB of UTF-8 with SECRET_TOO_LARGE, and a lone surrogate', () => {
    const { db, store } = fresh();
    thrown(() => store.set('BIG', 'x'.repeat(64 * 1024 + 1)), 'SECRET_TOO_LARGE');
    // The limit counts UTF-8 bytes, not characters: 21,846 × '€' is 65,538 bytes.
    thrown(() => store.set('BIG', '€'.repeat(21_846)), 'SECRET_TOO_LARGE');
    store.set('BIG', '€'.repeat(21_845));
    thrown(() => store.set('HALF', `${VALUE}\uD800`), 'INVALID_ARGUMENT');
    assert.deepEqual(store.list().map((s) => s.name), ['BIG']);
    db.close();
  });

  it('never writes the value to the database or its WAL in plaintext', () => {
    const { db, store, file } = fresh();
    store.set('PLAINTEXT_PROBE', VALUE);
    const onDisk = () => Buffer.concat([file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
    // The name is stored in the clear, so finding it shows the search reads the bytes the value would be in.
    assert.ok(onDisk().includes('PLAINTEXT_PROBE'));
    assert.ok(!onDisk().includes(VALUE));
    db.close();
    assert.ok(onDisk().includes('PLAINTEXT_PROBE'));
    assert.ok(!onDisk().includes(VALUE));
  });

  it('refuses a ciphertext moved to another row (the name is authenticated)', () => {
    const { db, store } = fresh();
    store.set('OWNER', VALUE);
    store.set('THIEF', 'harmless');
    db.prepare(
      "UPDATE secrets SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM secrets WHERE name = 'OWNER') WHERE name = 'THIEF'",
    ).run();
    thrown(() => store.get('THIEF'), 'SECRET_CORRUPT');
    db.prepare("UPDATE secrets SET name = 'RENAMED' WHERE name = 'OWNER'").run();
    thrown(() => store.get('RENAMED'), 'SECRET_CORRUPT');
    db.close();
  });

  it('refuses a flipped byte anywhere in the nonce, ciphertext or tag', () => {
    const { db, store } = fresh();
    store.set('TARGET', 'short value');
    const original = sealedRow(db, 'TARGET');
    const restore = db.prepare("UPDATE secrets SET nonce = ?, ciphertext = ? WHERE name = 'TARGET'");
    for (const column of ['nonce', 'ciphertext'] as const) {
      for (let i = 0; i < original[column].length; i++) {
        const tampered = { ...original, [column]: Buffer.from(original[column]) };
        tampered[column][i] = (tampered[column][i] ?? 0) ^ 0x80;
        restore.run(tampered.nonce, tampered.ciphertext);
        thrown(() => store.get('TARGET'), 'SECRET_CORRUPT');
      }
    }
    const malformed: [Buffer, Buffer][] = [
      [original.nonce.subarray(1), original.ciphertext],
      [original.nonce, original.ciphertext.subarray(0, 15)],
      [original.nonce, Buffer.concat([original.ciphertext, Buffer.of(0)])],
    ];
    for (const [nonce, ciphertext] of malformed) {
      restore.run(nonce, ciphertext);
      thrown(() => store.get('TARGET'), 'SECRET_CORRUPT');
    }
    restore.run(original.nonce, original.ciphertext);
    assert.equal(store.get('TARGET'), 'short value');
    db.close();
  });

  it('refuses to decrypt under a different master key, and refuses a key of the wrong length', () => {
    const { db, store } = fresh();
    store.set('KEYED', VALUE);
    thrown(() => new SecretStore(db, randomKey()).get('KEYED'), 'SECRET_CORRUPT');
    for (const length of [0, 16, 31, 33]) thrown(() => new SecretStore(db, Buffer.alloc(length)), 'MASTER_KEY_INVALID');
    assert.equal(store.get('KEYED'), VALUE);
    db.close();
  });

  it('never puts the value in an error message', () => {
    const { db, store, key } = fresh();
    store.set('LEAK_CHECK', VALUE);
    const errors: LatticeError[] = [
      thrown(() => new SecretStore(db, randomKey()).get('LEAK_CHECK'), 'SECRET_CORRUPT'),
      thrown(() => store.set('LEAK_CHECK', VALUE.repeat(3000)), 'SECRET_TOO_LARGE'),
      thrown(() => store.set('LEAK_CHECK', `${VALUE}\uDC00`), 'INVALID_ARGUMENT'),
      // A caller that swapped name and value must not see the value echoed back.
      thrown(() => store.set(VALUE.replaceAll('-', ' '), 'LEAK_CHECK'), 'SECRET_INVALID_NAME'),
    ];
    const tampered = Buffer.from(sealedRow(db, 'LEAK_CHECK').ciphertext);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    db.prepare("UPDATE secrets SET ciphertext = ? WHERE name = 'LEAK_CHECK'").run(tampered);
    errors.push(thrown(() => new SecretStore(db, key).get('LEAK_CHECK'), 'SECRET_CORRUPT'));
    for (const error of errors) {
      const text = errorText(error);
      assert.ok(!text.includes(VALUE) && !text.includes(VALUE.replaceAll('-', ' ')), text);
    }
    db.close();
  });
});

describe('master key', () => {
  const newHome = (): HomePaths => homePaths(join(tempDir(), 'home'));

  it('is created 0600 in a 0700 home, even under umask 022, as base64 and a newline', () => {
    const paths = newHome();
    const previous = process.umask(0o022);
    let key: Buffer;
    try {
      key = loadOrCreateMasterKey(paths);
    } finally {
      process.umask(previous);
    }
    const file = masterKeyPath(paths);
    assert.equal(file, join(paths.root, 'master.key'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(paths.root).mode & 0o777, 0o700);
    assert.equal(key.length, 32);
    assert.equal(readFileSync(file, 'utf8'), `${key.toString('base64')}\n`);
    assert.deepEqual(readdirSync(paths.root), ['master.key'], 'no temporary file is left behind');
  });

  it('loads the same key again, and secrets survive a reopen', () => {
    const paths = newHome();
    const key = loadOrCreateMasterKey(paths);
    const db = openWritable(paths.db);
    new SecretStore(db, key).set('PERSISTED', VALUE);
    db.close();
    const again = loadOrCreateMasterKey(paths);
    assert.deepEqual(again, key);
    const reopened = openWritable(paths.db);
    assert.equal(new SecretStore(reopened, again).get('PERSISTED'), VALUE);
    reopened.close();
  });

  it('refuses a key file readable by group or others, saying how to fix it', () => {
    const paths = newHome();
    const key = loadOrCreateMasterKey(paths);
    const file = masterKeyPath(paths);
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
      chmodSync(file, mode);
      const error = thrown(() => loadOrCreateMasterKey(paths), 'MASTER_KEY_INVALID');
      assert.ok(error.message.includes(`chmod 600 ${file}`), error.message);
      assert.ok(!errorText(error).includes(key.toString('base64')));
    }
    chmodSync(file, 0o600);
    assert.deepEqual(loadOrCreateMasterKey(paths), key);
  });

  it('refuses a truncated, empty, over-long or mis-encoded key file and never replaces it', () => {
    const paths = newHome();
    const text = loadOrCreateMasterKey(paths).toString('base64');
    const file = masterKeyPath(paths);
    // The last character of 32 bytes in base64 carries 4 bits and 2 zero bits; setting one makes it non-canonical.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = alphabet[alphabet.indexOf(text.charAt(42)) | 1] ?? '';
    const bad = [
      text.slice(0, 20),
      `${text.slice(0, 43)}\n`,
      '',
      '\n',
      `${Buffer.alloc(33, 1).toString('base64')}\n`,
      `${Buffer.alloc(31, 1).toString('base64')}\n`,
      `${Buffer.alloc(32, 1).toString('hex')}\n`,
      `${Buffer.alloc(32, 1).toString('base64url')}\n`,
      `${text.slice(0, 42)}${last}=\n`,
      ` ${text}\n`,
      `${text}\n\n`,
      `${text}\r\n`,
      `${text}\n${text}\n`,
    ];
    for (const content of bad) {
      writeFileSync(file, content, { mode: 0o600 });
      const error = thrown(() => loadOrCreateMasterKey(paths), 'MASTER_KEY_INVALID');
      assert.ok(!errorText(error).includes(text.slice(0, 20)), 'the message does not echo the file');
      assert.equal(readFileSync(file, 'utf8'), content, 'the file is left as it was');
    }
    writeFileSync(file, text, { mode: 0o600 }); // without the trailing newline
    assert.equal(loadOrCreateMasterKey(paths).toString('base64'), text);
  });

  it('refuses a symbolic link in place of the key file', () => {
    const paths = newHome();
    const key = loadOrCreateMasterKey(paths);
    const elsewhere = join(tempDir(), 'stolen.key');
    writeFileSync(elsewhere, `${key.toString('base64')}\n`, { mode: 0o600 });
    fs.rmSync(masterKeyPath(paths));
    symlinkSync(elsewhere, masterKeyPath(paths));
    thrown(() => loadOrCreateMasterKey(paths), 'MASTER_KEY_INVALID');
  });

  it('uses the other creator\'s key when one appears between its check and its link (EEXIST)', (t) => {
    const paths = newHome();
    const winner = randomKey();
    const link = fs.linkSync;
    // The other process publishes its key just before this one tries to.
    t.mock.method(fs, 'linkSync', (existing: fs.PathLike, target: fs.PathLike) => {
      writeFileSync(target, `${winner.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      link(existing, target);
    });
    syncBuiltinESMExports();
    let key: Buffer;
    try {
      key = loadOrCreateMasterKey(paths);
    } finally {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    }
    assert.deepEqual(key, winner);
    assert.equal(readFileSync(masterKeyPath(paths), 'utf8'), `${winner.toString('base64')}\n`);
    assert.deepEqual(readdirSync(paths.root), ['master.key'], 'the loser removed its temporary file');
    assert.deepEqual(loadOrCreateMasterKey(paths), winner);
  });

  it('gives every one of several processes starting at once the same key', async () => {
    const paths = newHome();
    const go = join(tempDir(), 'go');
    const master = pathToFileURL(join(ROOT, 'core', 'secrets', 'master-key.ts')).href;
    const home = pathToFileURL(join(ROOT, 'core', 'home.ts')).href;
    const script = `
      import { existsSync } from 'node:fs';
      import { homePaths } from ${JSON.stringify(home)};
      import { loadOrCreateMasterKey } from ${JSON.stringify(master)};
      const [root, go] = process.argv.slice(1);
      process.stdout.write('ready\\n');
      const deadline = Date.now() + 20000;
      while (!existsSync(go)) if (Date.now() > deadline) process.exit(3);
      process.stdout.write(loadOrCreateMasterKey(homePaths(root)).toString('base64') + '\\n');`;
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const children = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, paths.root, go], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => (out.startsWith('ready\n') ? resolve() : undefined));
        child.on('exit', () => reject(new Error(`child exited before it was ready: ${err}`)));
      });
      const done = new Promise<string>((resolve, reject) => {
        child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
      });
      return { ready, done };
    });
    await Promise.all(children.map((c) => c.ready));
    writeFileSync(go, '');
    const outputs = await Promise.all(children.map((c) => c.done));
    const keys = new Set(outputs.map((out) => out.split('\n')[1]));
    assert.equal(keys.size, 1, [...keys].join(', '));
    assert.equal(readFileSync(masterKeyPath(paths), 'utf8'), `${[...keys][0]}\n`);
    assert.deepEqual(readdirSync(paths.root), ['master.key']);
  });
});
