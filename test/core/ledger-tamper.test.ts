/**
 * Tampering with a real ledger file, as an attacker with write access would (raw SQLite, triggers dropped), must
 * be caught by `lattice verify` with exit 1 and the first broken seq. Each attack runs on its own copy of one
 * freshly built ledger: 100 events, a checkpoint every 25, a receipt on every 10th event. Every attack is checked
 * twice, on one thread and split across three (ranges 1–34, 35–68, 69–100), and both must agree.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { canonicalize, type JsonObject } from '../../core/canonical.ts';
import { generateEd25519, loadEd25519PrivateKey, sha256Hex, signEd25519 } from '../../core/crypto/index.ts';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { checkpointMessage } from '../../core/ledger/checkpoint.ts';
import { sealEvent, type LedgerEvent } from '../../core/ledger/event.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import type { ReceiptFields } from '../../core/ledger/receipt.ts';
import { attackerOpen, lattice, latticeJson, tempDir } from '../helpers.ts';

interface Report {
  ok: boolean;
  events: number;
  checkpoints: number;
  receipts: number;
  failure: { code: string; seq: number; message: string } | null;
}

const receiptFields = (n: number): ReceiptFields => ({
  action: 'echo',
  principal: 'agent-1',
  requestHash: sha256Hex(`request ${n}`),
  planSha256: sha256Hex(`plan ${n}`),
  policyHash: sha256Hex('policy'),
  policyVersion: 'v1',
  approvalId: null,
  providerSha256: null,
  effectsHash: sha256Hex(`effects ${n}`),
  outputHash: sha256Hex(`output ${n}`),
  status: 'executed',
  startedAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
});

let pristine: HomePaths;

/** 100 events (genesis + 99), a checkpoint every 25, a receipt on every 10th event. */
async function buildLedger(): Promise<HomePaths> {
  const paths = homePaths(join(tempDir(), 'home'));
  const ledger = Ledger.open(paths, { checkpointEvery: 25, checkpointIntervalMs: 0 });
  for (let n = 2; n <= 100; n++) {
    const options = n % 10 === 0 ? { receipt: receiptFields(n) } : undefined;
    await ledger.append({ type: 'test.event', principal: 'agent-1', action: 'echo', decision: 'allow', payload: { n } }, options);
  }
  ledger.close();
  return paths;
}

before(async () => {
  pristine = await buildLedger();
});

/** A private copy of the pristine ledger for one attack. */
function copy(): HomePaths {
  const paths = homePaths(join(tempDir(), 'home'));
  cpSync(pristine.root, paths.root, { recursive: true });
  return paths;
}

function verify(paths: HomePaths, ...extra: string[]): { status: number; report: Report } {
  const { status, json } = latticeJson<Report>(['verify', '--home', paths.root, ...extra]);
  return { status, report: json };
}

function assertTampered(paths: HomePaths, code: string, seq: number): void {
  for (const workers of ['1', '3']) {
    const { status, report } = verify(paths, '--workers', workers);
    const where = `--workers ${workers}: ${report.failure?.message}`;
    assert.equal(report.ok, false, `verify must report the ledger as tampered (--workers ${workers})`);
    assert.equal(report.failure?.code, code, where);
    assert.equal(report.failure?.seq, seq, where);
    assert.equal(status, 1, 'a tampered ledger exits 1');
  }
}

function readEvent(db: ReturnType<typeof attackerOpen>, seq: number): LedgerEvent {
  return db.prepare('SELECT seq, ts, type, principal, action, decision, payload, prev_hash AS prevHash, hash FROM events WHERE seq = ?').get(seq) as LedgerEvent;
}

/** Rewrites events from `from` on so every hash chains again, as an attacker who knows the algorithm would. */
function rehashFrom(db: ReturnType<typeof attackerOpen>, from: number): void {
  let prev = readEvent(db, from - 1).hash;
  const last = db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
  const update = db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?');
  for (let seq = from; seq <= last; seq++) {
    const e = readEvent(db, seq);
    const sealed = sealEvent(e, seq, e.ts, prev);
    update.run(sealed.prevHash, sealed.hash, seq);
    prev = sealed.hash;
  }
}

describe('lattice verify', () => {
  it('accepts the untouched ledger, on one thread and on several', () => {
    const paths = copy();
    for (const workers of ['1', '3']) {
      const { status, report } = verify(paths, '--workers', workers);
      assert.equal(status, 0);
      assert.equal(report.ok, true);
      assert.equal(report.events, 100);
      assert.equal(report.checkpoints, 4);
      assert.equal(report.receipts, 10);
    }
  });

  it('detects a break exactly where one verification range ends and the next begins', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const e = readEvent(db, 34);
    const forged = sealEvent({ ...e, payload: '{"n":9999}' }, 34, e.ts, e.prevHash);
    db.prepare('UPDATE events SET payload = ?, hash = ? WHERE seq = 34').run(forged.payload, forged.hash);
    assertTampered(paths, 'PREV_HASH_MISMATCH', 35);
  });

  it('detects an edited event', () => {
    const paths = copy();
    attackerOpen(paths.db).prepare(`UPDATE events SET payload = '{"n":9999}' WHERE seq = 37`).run();
    assertTampered(paths, 'HASH_MISMATCH', 37);
  });

  it('detects an edited event whose own hash was recomputed', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const e = readEvent(db, 37);
    const forged = sealEvent({ ...e, payload: '{"n":9999}' }, 37, e.ts, e.prevHash);
    db.prepare('UPDATE events SET payload = ?, hash = ? WHERE seq = 37').run(forged.payload, forged.hash);
    assertTampered(paths, 'PREV_HASH_MISMATCH', 38);
  });

  it('detects a deleted event', () => {
    const paths = copy();
    attackerOpen(paths.db).prepare('DELETE FROM events WHERE seq = 37').run();
    assertTampered(paths, 'EVENT_MISSING', 37);
  });

  it('detects reordered events', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const a = readEvent(db, 37);
    const b = readEvent(db, 38);
    const put = db.prepare('UPDATE events SET ts = ?, type = ?, principal = ?, action = ?, decision = ?, payload = ?, prev_hash = ?, hash = ? WHERE seq = ?');
    put.run(b.ts, b.type, b.principal, b.action, b.decision, b.payload, b.prevHash, b.hash, 37);
    put.run(a.ts, a.type, a.principal, a.action, a.decision, a.payload, a.prevHash, a.hash, 38);
    assertTampered(paths, 'PREV_HASH_MISMATCH', 37);
  });

  it('detects a truncated tail (fewer events than the last signed checkpoint claims)', () => {
    const paths = copy();
    attackerOpen(paths.db).prepare('DELETE FROM events WHERE seq > 80').run();
    assertTampered(paths, 'TRUNCATED', 81);
  });

  it('detects a chain that was edited and re-hashed to be consistent again', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    db.prepare(`UPDATE events SET payload = '{"n":9999}' WHERE seq = 37`).run();
    rehashFrom(db, 37);
    assertTampered(paths, 'CHECKPOINT_MISMATCH', 50);
  });

  it('documented limit (SECURITY.md): a rewritten middle with every checkpoint deleted verifies, and says none of it is signed', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    db.prepare(`UPDATE events SET payload = '{"n":9999}' WHERE seq = 37`).run();
    rehashFrom(db, 37);
    db.prepare('DELETE FROM checkpoints').run();
    db.close();
    for (const workers of ['1', '3']) {
      const { status, report } = verify(paths, '--workers', workers);
      assert.equal(status, 0, 'verify cannot know of checkpoints it is not shown');
      assert.equal(report.checkpoints, 0);
      assert.equal((report as Report & { unsignedTail: number }).unsignedTail, 100, 'every event is reported as not vouched for');
    }
    assert.match(lattice(['verify', '--home', paths.root]).stdout, /checkpoints {2}none \(no event is vouched for by a signature yet\)/);
  });

  it('detects a checkpoint signed by a key not in the key set', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const foreign = generateEd25519();
    const key = loadEd25519PrivateKey(foreign.privateKeyPem).key;
    const c = db.prepare('SELECT seq, head_hash AS headHash, ts FROM checkpoints WHERE seq = 50').get() as { seq: number; headHash: string; ts: string };
    const signature = signEd25519(key, checkpointMessage({ ...c, keyId: foreign.keyId }));
    db.prepare('UPDATE checkpoints SET key_id = ?, signature = ? WHERE seq = 50').run(foreign.keyId, signature);
    assertTampered(paths, 'UNKNOWN_KEY', 50);
  });

  it('detects a checkpoint re-signed with a foreign key under a trusted key id', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const key = loadEd25519PrivateKey(generateEd25519().privateKeyPem).key;
    const c = db.prepare('SELECT seq, head_hash AS headHash, ts, key_id AS keyId FROM checkpoints WHERE seq = 75').get() as { seq: number; headHash: string; ts: string; keyId: string };
    db.prepare('UPDATE checkpoints SET signature = ? WHERE seq = 75').run(signEd25519(key, checkpointMessage(c)));
    assertTampered(paths, 'BAD_SIGNATURE', 75);
  });

  it('detects a receipt re-signed by a key not in the key set, even with the chain re-hashed to match', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const foreign = generateEd25519();
    const key = loadEd25519PrivateKey(foreign.privateKeyPem).key;
    const r = db.prepare('SELECT id, body FROM receipts WHERE event_seq = 40').get() as { id: string; body: string };
    const body = canonicalize({ ...(JSON.parse(r.body) as JsonObject), keyId: foreign.keyId });
    db.prepare('UPDATE receipts SET key_id = ?, body = ?, signature = ? WHERE id = ?').run(foreign.keyId, body, signEd25519(key, body), r.id);
    const e = readEvent(db, 40);
    const payload = canonicalize({ ...(JSON.parse(e.payload) as JsonObject), receipt: { id: r.id, sha256: sha256Hex(body) } });
    db.prepare('UPDATE events SET payload = ? WHERE seq = 40').run(payload);
    rehashFrom(db, 40);
    assertTampered(paths, 'UNKNOWN_KEY', 40);
  });

  it('detects an altered receipt', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const r = db.prepare('SELECT id, body FROM receipts WHERE event_seq = 60').get() as { id: string; body: string };
    db.prepare('UPDATE receipts SET body = ? WHERE id = ?').run(r.body.replace('"executed"', '"failed"'), r.id);
    assertTampered(paths, 'RECEIPT_MISMATCH', 60);
  });

  it('detects a deleted receipt', () => {
    const paths = copy();
    attackerOpen(paths.db).prepare('DELETE FROM receipts WHERE event_seq = 30').run();
    assertTampered(paths, 'RECEIPT_MISSING', 30);
  });

  it('detects a planted receipt', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const r = db.prepare('SELECT * FROM receipts WHERE event_seq = 30').get() as Record<string, string | number>;
    db.prepare('INSERT INTO receipts (id, event_seq, key_id, body, signature) VALUES (?, ?, ?, ?, ?)').run('rcpt_planted', 31, r['key_id'] ?? '', r['body'] ?? '', r['signature'] ?? '');
    assertTampered(paths, 'RECEIPT_ORPHAN', 31);
  });

  it('detects a planted event before the first one', () => {
    const paths = copy();
    const db = attackerOpen(paths.db);
    const e = readEvent(db, 1);
    db.prepare('INSERT INTO events (seq, ts, type, principal, action, decision, payload, prev_hash, hash) VALUES (0, ?, ?, NULL, NULL, NULL, ?, ?, ?)').run(e.ts, 'test.event', '{}', e.prevHash, e.hash);
    assertTampered(paths, 'EVENT_OUT_OF_ORDER', 0);
  });

  it('never modifies the database it checks', () => {
    const paths = copy();
    const before = sha256Hex(readFileSync(paths.db));
    assert.equal(verify(paths).status, 0);
    attackerOpen(paths.db).close(); // dropping triggers changes the file; take the baseline after that
    const tampered = sha256Hex(readFileSync(paths.db));
    verify(paths);
    assert.equal(sha256Hex(readFileSync(paths.db)), tampered);
    assert.notEqual(before, '');
  });

  it('exits 2, not 1, when the ledger does not exist or the key set is unreadable', () => {
    const missing = lattice(['verify', '--home', join(tempDir(), 'nothing-here')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no ledger at/);
    const paths = copy();
    writeFileSync(paths.keyset, '{"version": 1, "keys": []}');
    const bad = lattice(['verify', '--home', paths.root]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /keys/);
  });
});

describe('lattice verify --bundle', () => {
  it('accepts an exported bundle offline and detects an edited line', () => {
    const paths = copy();
    const out = join(tempDir(), 'ledger.jsonl');
    assert.equal(lattice(['export', '--home', paths.root, '--out', out]).status, 0);
    const ok = latticeJson<Report>(['verify', '--bundle', out]);
    assert.equal(ok.status, 0);
    assert.equal(ok.json.events, 100);
    assert.equal(ok.json.receipts, 10);
    const lines = readFileSync(out, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"seq":42,'));
    lines[i] = (lines[i] ?? '').replace('{\\"n\\":42}', '{\\"n\\":43}');
    writeFileSync(out, lines.join('\n'));
    const bad = latticeJson<Report>(['verify', '--bundle', out]);
    assert.equal(bad.status, 1);
    assert.equal(bad.json.failure?.code, 'HASH_MISMATCH');
    assert.equal(bad.json.failure?.seq, 42);
  });

  it('checks a partial bundle from --since, vouched for by a later checkpoint', () => {
    const paths = copy();
    const out = join(tempDir(), 'recent.jsonl');
    assert.equal(lattice(['export', '--home', paths.root, '--out', out, '--since', '60']).status, 0);
    const { status, json } = latticeJson<Report & { firstSeq: number; anchored: boolean }>(['verify', '--bundle', out]);
    assert.equal(status, 0);
    assert.equal(json.firstSeq, 60);
    assert.equal(json.events, 41);
    assert.equal(json.anchored, true);
  });

  it('with --keyset, refuses a whole ledger forged under someone else\'s keys', async () => {
    // The forger builds a consistent ledger of their own and ships their key set inside the bundle.
    const forged = await buildLedger();
    const out = join(tempDir(), 'forged.jsonl');
    assert.equal(lattice(['export', '--home', forged.root, '--out', out]).status, 0);
    // Without a pinned key set, verify can only vouch for integrity, and does.
    assert.equal(latticeJson<Report>(['verify', '--bundle', out]).status, 0);
    // Pinned to the real key set, the first forged signature (the receipt of event 10) is refused.
    const pinned = latticeJson<Report>(['verify', '--bundle', out, '--keyset', pristine.keyset]);
    assert.equal(pinned.status, 1);
    assert.equal(pinned.json.failure?.code, 'UNKNOWN_KEY');
    assert.equal(pinned.json.failure?.seq, 10);
    // And the genuine ledger passes under the same pin.
    const genuine = join(tempDir(), 'genuine.jsonl');
    assert.equal(lattice(['export', '--home', copy().root, '--out', genuine]).status, 0);
    assert.equal(latticeJson<Report>(['verify', '--bundle', genuine, '--keyset', pristine.keyset]).status, 0);
  });

  it('reports a malformed bundle line as tampering at its seq', () => {
    const paths = copy();
    const out = join(tempDir(), 'ledger.jsonl');
    assert.equal(lattice(['export', '--home', paths.root, '--out', out]).status, 0);
    const lines = readFileSync(out, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"seq":70,'));
    lines[i] = (lines[i] ?? '').slice(0, 40);
    writeFileSync(out, lines.join('\n'));
    const { status, json } = latticeJson<Report>(['verify', '--bundle', out]);
    assert.equal(status, 1);
    assert.equal(json.failure?.code, 'BUNDLE_MALFORMED');
    assert.equal(json.failure?.seq, 70);
  });

  it('exits 2 for a file that is not a bundle', () => {
    const file = join(tempDir(), 'not-a-bundle.jsonl');
    writeFileSync(file, '{"hello": "world"}\n');
    const result = lattice(['verify', '--bundle', file]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /not a lattice bundle/);
  });
});
