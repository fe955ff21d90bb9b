/** The ledger library: group commit, durability, append-only storage, checkpoints, schema versions, file modes. */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../core/crypto/index.ts';
import { LatticeError } from '../../core/errors.ts';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { openReadOnly } from '../../core/ledger/database.ts';
import type { JsonValue } from '../../core/canonical.ts';
import { DECISIONS, GENESIS_HASH, PREIMAGE_SQL, canonicalEventText, type LedgerEvent } from '../../core/ledger/event.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { databaseSource } from '../../core/ledger/sources.ts';
import { verifyLedger } from '../../core/ledger/verify.ts';
import { tempDir } from '../helpers.ts';

function freshHome(): HomePaths {
  return homePaths(join(tempDir(), 'home'));
}

async function verifyHome(paths: HomePaths) {
  const db = openReadOnly(paths.db);
  try {
    return await verifyLedger(databaseSource(db, readKeySet(paths.keyset)));
  } finally {
    db.close();
  }
}

const countEvents = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM events').pluck().get() as number;
  } finally {
    db.close();
  }
};

describe('ledger', () => {
  it('creates a private home: directories 0700, database, WAL and keys 0600, whatever the umask', () => {
    const paths = freshHome();
    const previous = process.umask(0o022);
    try {
      const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
      for (const dir of [paths.root, paths.keys]) assert.equal(statSync(dir).mode & 0o777, 0o700, dir);
      const keyFile = join(paths.keys, `${readKeySet(paths.keyset).activeKeyId}.pem`);
      for (const file of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`, paths.keyset, keyFile]) {
        assert.equal(statSync(file).mode & 0o777, 0o600, file);
      }
      ledger.close();
    } finally {
      process.umask(previous);
    }
  });

  it('runs with WAL and synchronous=FULL', () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    assert.equal(ledger.database.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(ledger.database.pragma('synchronous', { simple: true }), 2);
    ledger.close();
  });

  it('starts the chain with a genesis event that names the first key', () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const first = ledger.database.prepare('SELECT * FROM events WHERE seq = 1').get() as { type: string; prev_hash: string; payload: string };
    assert.equal(first.type, 'ledger.created');
    assert.equal(first.prev_hash, GENESIS_HASH);
    assert.equal((JSON.parse(first.payload) as { keyId: string }).keyId, ledger.keys.active.keyId);
    ledger.close();
  });

  it('tells commit observers what became durable, in seq order, and nothing that was rolled back', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const seen: { seq: number; type: string; durable: number }[] = [];
    const reader = new Database(paths.db, { readonly: true });
    const stop = ledger.onCommit((events) => {
      for (const e of events) seen.push({ seq: e.seq, type: e.type, durable: reader.prepare('SELECT count(*) FROM events WHERE seq = ?').pluck().get(e.seq) as number });
    });
    const failing = ledger.append({ type: 'test.rolled-back' }, { write: () => { throw new Error('no'); } });
    await Promise.all([ledger.append({ type: 'test.one' }), assert.rejects(failing), ledger.append({ type: 'test.two' })]);
    assert.deepEqual(seen.map((e) => e.type), ['test.one', 'test.two']);
    assert.ok(seen.every((e) => e.durable === 1), 'observers run after the commit');
    assert.ok(seen[0]!.seq < seen[1]!.seq);
    stop();
    await ledger.append({ type: 'test.three' });
    assert.equal(seen.length, 2, 'a removed observer hears nothing');
    reader.close();
    ledger.close();
  });

  it('commits concurrent appends in one shared transaction and resolves each only once durable', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const observer = new Database(paths.db, { readonly: true });
    const seenByOthers: number[] = [];
    const appends = Array.from({ length: 32 }, (_, i) =>
      ledger.append(
        { type: 'test.concurrent', payload: { i } },
        // While each event is written, a second connection still sees only the genesis event:
        // the whole batch is one uncommitted transaction.
        { write: () => void seenByOthers.push(observer.prepare('SELECT count(*) FROM events').pluck().get() as number) },
      ),
    );
    const results = await Promise.all(appends);
    assert.deepEqual(seenByOthers, Array.from({ length: 32 }, () => 1));
    assert.deepEqual(results.map((r) => r.event.seq), Array.from({ length: 32 }, (_, i) => i + 2));
    // Resolved means committed: another connection sees all of them.
    assert.equal(observer.prepare('SELECT count(*) FROM events').pluck().get(), 33);
    observer.close();
    ledger.close();
  });

  it('rolls back only the event whose extra write failed; the rest of the batch commits', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    ledger.database.exec('CREATE TABLE side_effects (id TEXT PRIMARY KEY)');
    const ok1 = ledger.append({ type: 'test.ok' }, { write: (db) => void db.prepare(`INSERT INTO side_effects VALUES ('a')`).run() });
    const bad = ledger.append(
      { type: 'test.bad' },
      {
        write: (db) => {
          db.prepare(`INSERT INTO side_effects VALUES ('b')`).run();
          throw new Error('grant already consumed');
        },
      },
    );
    const ok2 = ledger.append({ type: 'test.ok' });
    await assert.rejects(bad, /grant already consumed/);
    const [a, b] = await Promise.all([ok1, ok2]);
    assert.equal(a.event.seq, 2);
    assert.equal(b.event.seq, 3);
    assert.deepEqual(ledger.database.prepare('SELECT id FROM side_effects').pluck().all(), ['a']);
    ledger.close();
    assert.equal((await verifyHome(paths)).ok, true);
  });

  it('commits a write without an event with the next group commit, no later than events appended after it', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    ledger.database.exec('CREATE TABLE side_effects (id TEXT PRIMARY KEY)');
    const observer = new Database(paths.db, { readonly: true });
    const sides = (db: Database.Database) => db.prepare('SELECT id FROM side_effects ORDER BY id').pluck().all();
    const first = ledger.alongside((db) => void db.prepare(`INSERT INTO side_effects VALUES ('a')`).run());
    const failing = ledger.alongside((db) => {
      db.prepare(`INSERT INTO side_effects VALUES ('b')`).run();
      throw new Error('no room');
    });
    assert.deepEqual(sides(observer), [], 'nothing is written before the commit');
    const seen: unknown[] = [];
    const event = ledger.append({ type: 'test.after' }, { write: () => void seen.push(...sides(observer)) });
    await first;
    await assert.rejects(failing, /no room/);
    assert.equal((await event).event.seq, 2);
    assert.deepEqual(seen, [], 'the side write and the event are one transaction');
    assert.deepEqual(sides(observer), ['a'], 'the failed write rolled back alone');
    // On its own, with no event queued, it still commits.
    await ledger.alongside((db) => void db.prepare(`INSERT INTO side_effects VALUES ('c')`).run());
    assert.deepEqual(sides(observer), ['a', 'c']);
    observer.close();
    ledger.close();
  });

  it('rejects invalid events before they reach the chain', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const invalid = [
      { type: 'Bad Type' },
      { type: 'x'.repeat(65) },
      { type: 'ok', principal: 'evil\u001b[2Jname' },
      { type: 'ok', action: '' },
      { type: 'ok', payload: { n: Number.NaN } },
      { type: 'ok', payload: { big: 'x'.repeat(1024 * 1024 + 1) } },
      { type: 'ok', payload: { receipt: { id: 'forged', sha256: '0'.repeat(64) } } },
    ];
    for (const draft of invalid) {
      await assert.rejects(ledger.append(draft), (e: unknown) => e instanceof LatticeError && e.code === 'LEDGER_INVALID_EVENT', JSON.stringify(draft).slice(0, 80));
    }
    assert.equal(ledger.head().seq, 1);
    ledger.close();
  });

  it('refuses UPDATE and DELETE on events, checkpoints and receipts', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    await ledger.append({ type: 'test.event' }, { receipt: receipt() });
    ledger.checkpoint();
    const db = ledger.database;
    for (const sql of [
      `UPDATE events SET payload = '{}' WHERE seq = 1`,
      'DELETE FROM events WHERE seq = 2',
      `UPDATE checkpoints SET signature = 'x'`,
      'DELETE FROM checkpoints',
      `UPDATE receipts SET body = '{}'`,
      'DELETE FROM receipts',
    ]) {
      assert.throws(() => db.prepare(sql).run(), /append-only/, sql);
    }
    ledger.close();
  });

  it('issues a signed receipt bound to its event', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const { event, receipt: stored } = await ledger.append({ type: 'action.executed', principal: 'agent-1', action: 'echo', decision: 'allow' }, { receipt: receipt() });
    assert.ok(stored !== null);
    const body = JSON.parse(stored.body) as Record<string, unknown>;
    assert.equal(body['eventSeq'], event.seq);
    assert.equal(body['keyId'], ledger.keys.active.keyId);
    for (const field of ['requestHash', 'action', 'principal', 'policyHash', 'policyVersion', 'approvalId', 'planSha256', 'providerSha256', 'effectsHash', 'outputHash', 'startedAt', 'finishedAt', 'status']) {
      assert.ok(Object.hasOwn(body, field), `receipt body has ${field}`);
    }
    assert.deepEqual((JSON.parse(event.payload) as { receipt: unknown }).receipt, { id: stored.id, sha256: sha256Hex(stored.body) });
    await assert.rejects(ledger.append({ type: 'x' }, { receipt: { ...receipt(), requestHash: 'not-a-hash' } }), /requestHash/);
    ledger.close();
    assert.equal((await verifyHome(paths)).receipts, 1);
  });

  it('writes a checkpoint every N events and a final one on close', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointEvery: 10, checkpointIntervalMs: 0 });
    for (let i = 0; i < 24; i++) await ledger.append({ type: 'test.event', payload: { i } });
    const seqs = () => ledger.database.prepare('SELECT seq FROM checkpoints ORDER BY seq').pluck().all();
    assert.deepEqual(seqs(), [10, 20]);
    ledger.close();
    const db = openReadOnly(paths.db);
    assert.deepEqual(db.prepare('SELECT seq FROM checkpoints ORDER BY seq').pluck().all(), [10, 20, 25]);
    db.close();
  });

  it('writes a checkpoint every T milliseconds when events arrived', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointEvery: 1_000_000, checkpointIntervalMs: 50 });
    await ledger.append({ type: 'test.event' });
    const deadline = Date.now() + 5000;
    while (ledger.database.prepare('SELECT count(*) FROM checkpoints').pluck().get() === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(ledger.database.prepare('SELECT max(seq) FROM checkpoints').pluck().get(), 2);
    ledger.close();
  });

  it('continues one chain when two writers share the file', async () => {
    const paths = freshHome();
    const a = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const b = Ledger.open(paths, { checkpointIntervalMs: 0 });
    for (let i = 0; i < 20; i++) await (i % 2 === 0 ? a : b).append({ type: 'test.event', payload: { i } });
    a.close();
    b.close();
    const report = await verifyHome(paths);
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.events, 21);
  });

  it('rejects appends after close', async () => {
    const ledger = Ledger.open(freshHome(), { checkpointIntervalMs: 0 });
    ledger.close();
    await assert.rejects(ledger.append({ type: 'test.event' }), (e: unknown) => e instanceof LatticeError && e.code === 'LEDGER_CLOSED');
  });

  it('refuses to open a ledger whose schema is newer than it knows, for writing and for reading', () => {
    const paths = freshHome();
    Ledger.open(paths, { checkpointIntervalMs: 0 }).close();
    const raw = new Database(paths.db);
    raw.pragma('user_version = 99');
    raw.close();
    const tooNew = (e: unknown) => e instanceof LatticeError && e.code === 'LEDGER_SCHEMA_TOO_NEW';
    assert.throws(() => Ledger.open(paths, { checkpointIntervalMs: 0 }), tooNew);
    assert.throws(() => openReadOnly(paths.db), tooNew);
    assert.equal(countEvents(paths.db), 1);
  });
});

function receipt() {
  return {
    action: 'echo',
    principal: 'agent-1',
    requestHash: sha256Hex('{}'),
    planSha256: sha256Hex('plan'),
    policyHash: sha256Hex('policy'),
    policyVersion: '1',
    approvalId: null,
    providerSha256: sha256Hex('provider'),
    effectsHash: null,
    outputHash: sha256Hex('output'),
    status: 'executed' as const,
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
  };
}

describe('audit index', () => {
  it('copies events in bulk every indexEvery events and at every checkpoint(), and is append-only', async () => {
    const paths = freshHome();
    const ledger = Ledger.open(paths, { indexEvery: 10, checkpointIntervalMs: 0 });
    for (let i = 0; i < 14; i++) await ledger.append({ type: 'test.event', principal: `agent-${i % 3}`, payload: { i } });
    const indexed = () => ledger.database.prepare('SELECT seq FROM event_index ORDER BY seq').pluck().all();
    assert.deepEqual(indexed(), Array.from({ length: 10 }, (_, i) => i + 1));
    ledger.checkpoint();
    assert.deepEqual(indexed(), Array.from({ length: 15 }, (_, i) => i + 1));
    assert.throws(() => ledger.database.prepare('DELETE FROM event_index WHERE seq = 3').run(), /append-only/);
    ledger.close();
  });
});

describe('event preimage', () => {
  it('is the same whether SQLite or JavaScript assembles it, for any event the ledger accepts', async () => {
    // eslint-disable-next-line no-control-regex -- the alphabet the ledger accepts excludes control characters
    const printable = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter((s) => !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(s));
    const draft = fc.record({
      type: fc.constantFrom('test.event', 'action.executed', 'keys.rotated'),
      principal: fc.option(printable, { nil: null }),
      action: fc.option(printable, { nil: null }),
      decision: fc.option(fc.constantFrom(...DECISIONS), { nil: null }),
      payload: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>, { maxKeys: 4 }),
    });
    const paths = freshHome();
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const samples = fc.sample(draft, 300);
    await Promise.all(samples.map((d) => ledger.append(d)));
    const rows = ledger.database.prepare(`SELECT ${PREIMAGE_SQL} AS preimage, seq, ts, type, principal, action, decision, payload, prev_hash AS prevHash, hash FROM events ORDER BY seq`).all() as (LedgerEvent & { preimage: string })[];
    assert.equal(rows.length, 301);
    for (const row of rows) {
      assert.equal(row.preimage, row.prevHash + canonicalEventText(row, row.seq, row.ts), `seq ${row.seq}`);
      assert.equal(sha256Hex(row.preimage), row.hash, `seq ${row.seq}`);
    }
    ledger.close();
    assert.equal((await verifyHome(paths)).ok, true);
  });

  it('refuses fields that are not well-formed UTF-16, which storage would silently alter', async () => {
    const ledger = Ledger.open(freshHome(), { checkpointIntervalMs: 0 });
    for (const draft of [{ type: 'ok', principal: 'agent-\ud800' }, { type: 'ok', action: '\udc00x' }]) {
      await assert.rejects(ledger.append(draft), (e: unknown) => e instanceof LatticeError && e.code === 'LEDGER_INVALID_EVENT');
    }
    ledger.close();
  });
});
