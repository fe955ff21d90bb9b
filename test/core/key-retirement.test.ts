/**
 * A retired signing key signs nothing from its retirement on. The key set records the seq at which each key was
 * retired; `lattice verify` refuses a checkpoint or receipt signed by a key at or after that seq (with the key set
 * beside the ledger, a pinned one, and offline on a bundle); rotation deletes the retired private key and keeps
 * its public half. Key sets written before retirement points existed keep verifying, and the next rotation
 * records one for them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canonicalize, type JsonObject } from '../../core/canonical.ts';
import { loadEd25519PrivateKey, sha256Hex, signEd25519 } from '../../core/crypto/index.ts';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { checkpointMessage } from '../../core/ledger/checkpoint.ts';
import { sealEvent, type LedgerEvent } from '../../core/ledger/event.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import type { ReceiptFields } from '../../core/ledger/receipt.ts';
import { attackerOpen, lattice, latticeJson, tempDir } from '../helpers.ts';

interface Report {
  ok: boolean;
  events: number;
  keyIds: string[];
  unboundedKeys: string[];
  failure: { code: string; seq: number; message: string } | null;
}

type Db = ReturnType<typeof attackerOpen>;

const receiptFields = (n: number): ReceiptFields => ({
  action: 'echo',
  principal: 'agent-1',
  requestHash: sha256Hex(`request ${n}`),
  planSha256: null,
  policyHash: null,
  policyVersion: null,
  approvalId: null,
  providerSha256: null,
  effectsHash: null,
  outputHash: sha256Hex(`output ${n}`),
  status: 'executed',
  startedAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
});

/**
 * A ledger with 12 events, a rotation, and 12 more (a receipt on every 4th), checkpoints every 5. Returns the
 * retired key's private half as an attacker who copied it before the rotation holds it.
 */
async function rotatedLedger(): Promise<{ paths: HomePaths; stolenPem: string; oldKeyId: string; newKeyId: string; rotatedAt: number }> {
  const paths = homePaths(join(tempDir(), 'home'));
  const ledger = Ledger.open(paths, { checkpointEvery: 5, checkpointIntervalMs: 0 });
  const oldKeyId = ledger.keys.active.keyId;
  const stolenPem = readFileSync(join(paths.keys, `${oldKeyId}.pem`), 'utf8');
  for (let i = 0; i < 12; i++) await ledger.append({ type: 'test.before', payload: { i } });
  const { key, event } = ledger.rotateKeys();
  for (let i = 0; i < 12; i++) await ledger.append({ type: 'test.after', payload: { i } }, i % 4 === 3 ? { receipt: receiptFields(i) } : undefined);
  ledger.close();
  return { paths, stolenPem, oldKeyId, newKeyId: key.keyId, rotatedAt: event.seq };
}

function readEvent(db: Db, seq: number): LedgerEvent {
  return db.prepare('SELECT seq, ts, type, principal, action, decision, payload, prev_hash AS prevHash, hash FROM events WHERE seq = ?').get(seq) as LedgerEvent;
}

/** Rewrites events from `from` on so every hash chains again, as an attacker who knows the algorithm would. */
function rehashFrom(db: Db, from: number): void {
  let prev = readEvent(db, from - 1).hash;
  const last = db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
  for (let seq = from; seq <= last; seq++) {
    const e = readEvent(db, seq);
    const sealed = sealEvent(e, seq, e.ts, prev);
    db.prepare('UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?').run(sealed.prevHash, sealed.hash, seq);
    prev = sealed.hash;
  }
}

/** Signs a checkpoint over the current head with `pem`, as the attacker does with the stolen key. */
function signHead(db: Db, pem: string, keyId: string): number {
  const head = db.prepare('SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string };
  const body = { seq: head.seq, headHash: head.hash, ts: new Date().toISOString(), keyId };
  const signature = signEd25519(loadEd25519PrivateKey(pem).key, checkpointMessage(body));
  db.prepare('INSERT INTO checkpoints (seq, head_hash, ts, key_id, signature) VALUES (?, ?, ?, ?, ?)').run(body.seq, body.headHash, body.ts, keyId, signature);
  return head.seq;
}

function verify(args: readonly string[]): { status: number; report: Report } {
  const { status, json } = latticeJson<Report>(['verify', ...args]);
  return { status, report: json };
}

function assertRetired(args: readonly string[], seq: number): void {
  const { status, report } = verify(args);
  assert.equal(report.ok, false, `a signature by a retired key must not verify (${args.join(' ')})`);
  assert.equal(report.failure?.code, 'KEY_RETIRED', report.failure?.message);
  assert.equal(report.failure?.seq, seq);
  assert.match(report.failure?.message ?? '', /retired at seq \d+/);
  assert.equal(status, 1);
}

describe('retired signing keys', () => {
  it('retired-key-forges-head: a head re-signed with a stolen retired key is refused, with a pinned key set, on one thread and several, and offline', async () => {
    const { paths, stolenPem, oldKeyId, rotatedAt } = await rotatedLedger();
    const pinned = join(tempDir(), 'pinned-keyset.json');
    copyFileSync(paths.keyset, pinned);
    // The attacker edits an event after the rotation, re-hashes to the head, drops the checkpoints that covered
    // it (signed by the new key, which they do not hold) and signs the new head with the key they stole.
    const target = rotatedAt + 3;
    const db = attackerOpen(paths.db);
    db.prepare(`UPDATE events SET payload = '{"i":9999}' WHERE seq = ?`).run(target);
    rehashFrom(db, target);
    db.prepare('DELETE FROM checkpoints WHERE seq >= ?').run(target);
    const head = signHead(db, stolenPem, oldKeyId);
    db.close();

    for (const workers of ['1', '3']) assertRetired(['--home', paths.root, '--keyset', pinned, '--workers', workers], head);
    assertRetired(['--home', paths.root, '--workers', '1'], head); // the key set beside the ledger records it too
    const bundle = join(tempDir(), 'ledger.jsonl');
    assert.equal(lattice(['export', '--home', paths.root, '--out', bundle]).status, 0);
    assertRetired(['--bundle', bundle, '--keyset', pinned], head);
  });

  it('retired-key-signs-receipt: a receipt re-signed with a stolen retired key after its retirement is refused', async () => {
    const { paths, stolenPem, oldKeyId, rotatedAt } = await rotatedLedger();
    const pinned = join(tempDir(), 'pinned-keyset.json');
    copyFileSync(paths.keyset, pinned);
    const db = attackerOpen(paths.db);
    const r = db.prepare('SELECT id, event_seq AS seq, body FROM receipts WHERE event_seq > ? ORDER BY event_seq LIMIT 1').get(rotatedAt) as { id: string; seq: number; body: string };
    const body = canonicalize({ ...(JSON.parse(r.body) as JsonObject), keyId: oldKeyId, status: 'failed' });
    db.prepare('UPDATE receipts SET key_id = ?, body = ?, signature = ? WHERE id = ?').run(oldKeyId, body, signEd25519(loadEd25519PrivateKey(stolenPem).key, body), r.id);
    const e = readEvent(db, r.seq);
    db.prepare('UPDATE events SET payload = ? WHERE seq = ?').run(canonicalize({ ...(JSON.parse(e.payload) as JsonObject), receipt: { id: r.id, sha256: sha256Hex(body) } }), r.seq);
    rehashFrom(db, r.seq);
    db.prepare('DELETE FROM checkpoints WHERE seq >= ?').run(r.seq);
    db.close();
    assertRetired(['--home', paths.root, '--keyset', pinned], r.seq);
  });

  it('accepts what the retired key signed before its retirement, and the new key after it', async () => {
    const { paths, oldKeyId, newKeyId, rotatedAt } = await rotatedLedger();
    const { status, report } = verify(['--home', paths.root]);
    assert.equal(status, 0, report.failure?.message);
    assert.equal(report.events, 26); // genesis, 12, keys.rotated, 12
    assert.deepEqual([...report.keyIds].sort(), [oldKeyId, newKeyId].sort());
    assert.deepEqual(report.unboundedKeys, []);
    const db = attackerOpen(paths.db);
    const byOld = db.prepare('SELECT max(seq) FROM checkpoints WHERE key_id = ?').pluck().get(oldKeyId) as number;
    db.close();
    assert.ok(byOld < rotatedAt, 'the old key vouched for the chain up to the rotation');
    const record = readKeySet(paths.keyset).document.keys.find((k) => k.keyId === oldKeyId);
    assert.equal(record?.retiredAtSeq, rotatedAt);
  });

  it('retired-key-file: rotation deletes the retired private key and keeps its public half', async () => {
    const { paths, oldKeyId, newKeyId } = await rotatedLedger();
    assert.equal(existsSync(join(paths.keys, `${oldKeyId}.pem`)), false, 'the retired private key is gone');
    assert.equal(existsSync(join(paths.keys, `${newKeyId}.pem`)), true);
    const keySet = readKeySet(paths.keyset);
    assert.ok(keySet.key(oldKeyId) !== undefined, 'its public key still verifies old signatures');
  });
});

describe('key sets written before retirement points', () => {
  /** Rewrites the key set as an earlier lattice wrote it: version 1, retirement times but no retirement seqs. */
  function asLegacy(paths: HomePaths): void {
    const doc = JSON.parse(readFileSync(paths.keyset, 'utf8')) as { keys: Record<string, unknown>[] };
    const keys = doc.keys.map(({ retiredAtSeq: _dropped, ...rest }) => rest);
    writeFileSync(paths.keyset, JSON.stringify({ ...doc, version: 1, keys }, null, 2));
  }

  it('keeps verifying, names the keys without a retirement point, and the next rotation records one for them', async () => {
    const { paths, stolenPem, oldKeyId, newKeyId } = await rotatedLedger();
    asLegacy(paths);
    // A legacy key set cannot say when the old key was retired: its signatures are accepted wherever they are, and
    // the report says which keys that applies to.
    const legacy = verify(['--home', paths.root]);
    assert.equal(legacy.status, 0, legacy.report.failure?.message);
    assert.deepEqual(legacy.report.unboundedKeys, [oldKeyId]);
    assert.match(lattice(['verify', '--home', paths.root]).stdout, new RegExp(`${oldKeyId}.*no retirement seq`));

    // An earlier lattice kept retired private keys; the next rotation deletes them.
    const lingering = join(paths.keys, `${oldKeyId}.pem`);
    writeFileSync(lingering, stolenPem, { mode: 0o600 });
    const ledger = Ledger.open(paths, { checkpointEvery: 5, checkpointIntervalMs: 0 });
    const { event, deletedKeyFiles } = ledger.rotateKeys();
    await ledger.append({ type: 'test.later', payload: {} });
    ledger.close();
    assert.ok(deletedKeyFiles.includes(lingering));
    assert.equal(existsSync(lingering), false);
    const keys = readKeySet(paths.keyset).document.keys;
    assert.equal(keys.find((k) => k.keyId === oldKeyId)?.retiredAtSeq, event.seq, 'the legacy key is retired at the migration');
    assert.equal(keys.find((k) => k.keyId === newKeyId)?.retiredAtSeq, event.seq);
    assert.deepEqual(verify(['--home', paths.root]).report.unboundedKeys, []);
    assert.equal(verify(['--home', paths.root]).status, 0);

    // From there on the stolen legacy key signs nothing.
    const db = attackerOpen(paths.db);
    db.prepare(`UPDATE events SET payload = '{"forged":true}' WHERE seq = ?`).run(event.seq + 1);
    rehashFrom(db, event.seq + 1);
    db.prepare('DELETE FROM checkpoints WHERE seq > ?').run(event.seq);
    const head = signHead(db, stolenPem, oldKeyId);
    db.close();
    assertRetired(['--home', paths.root], head);
  });
});

describe('signing beside a rotation', () => {
  it('stale-signer: a process that loaded the key before another process rotated it signs with the new key', async () => {
    const paths = homePaths(join(tempDir(), 'home'));
    const long = Ledger.open(paths, { checkpointEvery: 1000, checkpointIntervalMs: 0 }); // e.g. a gate
    const oldKeyId = long.keys.active.keyId;
    await long.append({ type: 'test.before', payload: {} });
    const other = Ledger.open(paths, { checkpointIntervalMs: 0 }); // e.g. `lattice keys rotate`
    const { key, event } = other.rotateKeys();
    other.close();
    await long.append({ type: 'test.after', payload: {} }, { receipt: receiptFields(1) });
    long.close();
    const db = attackerOpen(paths.db);
    const after = db.prepare('SELECT key_id FROM checkpoints WHERE seq >= ? UNION ALL SELECT key_id FROM receipts WHERE event_seq >= ?').pluck().all(event.seq, event.seq) as string[];
    db.close();
    assert.ok(after.length >= 3, 'the rotation checkpoint, the receipt and the closing checkpoint');
    assert.deepEqual([...new Set(after)], [key.keyId], `nothing after seq ${event.seq} is signed by the retired ${oldKeyId}`);
    assert.equal(verify(['--home', paths.root]).status, 0);
  });
});
