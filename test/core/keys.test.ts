/** Signing keys: creation, rotation that keeps old keys verifiable, and a strict key set parser. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateEd25519, loadEd25519PrivateKey, signEd25519 } from '../../core/crypto/index.ts';
import { LatticeError } from '../../core/errors.ts';
import { homePaths } from '../../core/home.ts';
import { parseKeySet, readKeySet } from '../../core/keys/keyset.ts';
import { checkpointMessage } from '../../core/ledger/checkpoint.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { attackerOpen, latticeJson, tempDir } from '../helpers.ts';

interface Report {
  ok: boolean;
  events: number;
  keyIds: string[];
  failure: { code: string; seq: number } | null;
}

describe('key rotation', () => {
  it('verifies events and checkpoints from before and after a rotation', async () => {
    const paths = homePaths(join(tempDir(), 'home'));
    const ledger = Ledger.open(paths, { checkpointEvery: 5, checkpointIntervalMs: 0 });
    const first = ledger.keys.active.keyId;
    for (let i = 0; i < 12; i++) await ledger.append({ type: 'test.before', payload: { i } });
    const { previousKeyId, key, event } = ledger.rotateKeys();
    assert.equal(previousKeyId, first);
    assert.notEqual(key.keyId, first);
    assert.equal(event.type, 'keys.rotated');
    for (let i = 0; i < 12; i++) await ledger.append({ type: 'test.after', payload: { i } });
    ledger.close();

    const keySet = readKeySet(paths.keyset).document;
    assert.equal(keySet.active, key.keyId);
    assert.deepEqual(keySet.keys.map((k) => k.keyId), [first, key.keyId]);
    assert.notEqual(keySet.keys[0]?.retiredAt, null);
    assert.equal(statSync(join(paths.keys, `${key.keyId}.pem`)).mode & 0o777, 0o600);

    const { status, json } = latticeJson<Report>(['verify', '--home', paths.root]);
    assert.equal(status, 0);
    assert.equal(json.ok, true);
    assert.equal(json.events, 26);
    assert.deepEqual([...json.keyIds].sort(), [first, key.keyId].sort());
  });

  it('rejects an old checkpoint re-signed with a foreign key after rotation', async () => {
    const paths = homePaths(join(tempDir(), 'home'));
    const ledger = Ledger.open(paths, { checkpointEvery: 5, checkpointIntervalMs: 0 });
    for (let i = 0; i < 9; i++) await ledger.append({ type: 'test.event', payload: { i } });
    ledger.rotateKeys();
    ledger.close();
    const db = attackerOpen(paths.db);
    const c = db.prepare('SELECT seq, head_hash AS headHash, ts, key_id AS keyId FROM checkpoints WHERE seq = 5').get() as { seq: number; headHash: string; ts: string; keyId: string };
    const foreign = loadEd25519PrivateKey(generateEd25519().privateKeyPem).key;
    db.prepare('UPDATE checkpoints SET signature = ? WHERE seq = 5').run(signEd25519(foreign, checkpointMessage(c)));
    db.close();
    const { status, json } = latticeJson<Report>(['verify', '--home', paths.root]);
    assert.equal(status, 1);
    assert.equal(json.failure?.code, 'BAD_SIGNATURE');
    assert.equal(json.failure?.seq, 5);
  });

  it('puts the previous key set back when the rotation does not commit, and keeps signing with the old key', async () => {
    const paths = homePaths(join(tempDir(), 'home'));
    const ledger = Ledger.open(paths, { checkpointEvery: 5, checkpointIntervalMs: 0 });
    const oldKeyId = ledger.keys.active.keyId;
    await ledger.append({ type: 'test.before', payload: {} });
    const before = readFileSync(paths.keyset, 'utf8');
    const keyFiles = () => readdirSync(paths.keys).filter((f) => f.endsWith('.pem'));
    const db = attackerOpen(paths.db); // makes the keys.rotated insert fail, as a full disk would
    db.exec(`CREATE TRIGGER refuse_rotation BEFORE INSERT ON events WHEN NEW.type = 'keys.rotated' BEGIN SELECT RAISE(ABORT, 'refused'); END;`);
    db.close();
    assert.throws(() => ledger.rotateKeys(), (e: unknown) => e instanceof LatticeError && e.code === 'LEDGER_WRITE_FAILED' && /previous key stays active/.test(e.message));
    assert.equal(readFileSync(paths.keyset, 'utf8'), before, 'the key set is as it was');
    assert.deepEqual(keyFiles(), [`${oldKeyId}.pem`], 'the new private key is removed, the old one kept');
    assert.equal(ledger.keys.active.keyId, oldKeyId);
    await ledger.append({ type: 'test.after', payload: {} });
    ledger.close();
    assert.equal(latticeJson<Report>(['verify', '--home', paths.root]).status, 0);
  });

  it('keeps the previous key set intact when the active private key is unreadable', () => {
    const paths = homePaths(join(tempDir(), 'home'));
    Ledger.open(paths, { checkpointIntervalMs: 0 }).close();
    const keyFile = join(paths.keys, `${readKeySet(paths.keyset).activeKeyId}.pem`);
    writeFileSync(keyFile, 'not a key');
    const before = readFileSync(paths.keyset, 'utf8');
    assert.throws(() => Ledger.open(paths, { checkpointIntervalMs: 0 }), (e: unknown) => e instanceof LatticeError && e.code === 'KEY_INVALID');
    assert.equal(readFileSync(paths.keyset, 'utf8'), before);
  });
});

describe('key set parser', () => {
  const valid = () => {
    const k = generateEd25519();
    return { version: 1, active: k.keyId, keys: [{ keyId: k.keyId, alg: 'Ed25519', publicKey: k.publicKey, createdAt: '2026-01-01T00:00:00.000Z', retiredAt: null }] };
  };
  /** Version 2: an active key and one retired at seq 7. */
  const validV2 = () => {
    const [old, active] = [generateEd25519(), generateEd25519()];
    const record = (k: typeof old, retiredAtSeq: number | null) => ({ keyId: k.keyId, alg: 'Ed25519', publicKey: k.publicKey, createdAt: '2026-01-01T00:00:00.000Z', retiredAt: retiredAtSeq === null ? null : '2026-02-01T00:00:00.000Z', retiredAtSeq });
    return { version: 2, active: active.keyId, keys: [record(old, 7), record(active, null)] };
  };

  it('accepts a well-formed key set of either version', () => {
    const doc = valid();
    assert.equal(parseKeySet(JSON.stringify(doc), 'test').activeKeyId, doc.active);
    const v2 = validV2();
    const set = parseKeySet(JSON.stringify(v2), 'test');
    assert.equal(set.retiredAtSeq(v2.keys[0]?.keyId ?? ''), 7);
    assert.equal(set.retiredAtSeq(v2.active), null);
    assert.deepEqual(set.unboundedKeys, []);
  });

  it('refuses a version 2 set whose retirement points contradict it', () => {
    type V2 = ReturnType<typeof validV2>;
    const cases: [string, (d: V2) => unknown][] = [
      ['retired key without a seq', (d) => ({ ...d, keys: [{ ...d.keys[0], retiredAtSeq: null }, d.keys[1]] })],
      ['seq 0', (d) => ({ ...d, keys: [{ ...d.keys[0], retiredAtSeq: 0 }, d.keys[1]] })],
      ['fractional seq', (d) => ({ ...d, keys: [{ ...d.keys[0], retiredAtSeq: 7.5 }, d.keys[1]] })],
      ['seq as text', (d) => ({ ...d, keys: [{ ...d.keys[0], retiredAtSeq: '7' }, d.keys[1]] })],
      ['a seq without a time', (d) => ({ ...d, keys: [{ ...d.keys[0], retiredAt: null }, d.keys[1]] })],
      ['active key retired', (d) => ({ ...d, keys: [d.keys[0], { ...d.keys[1], retiredAt: '2026-02-01T00:00:00.000Z', retiredAtSeq: 9 }] })],
      ['a version 1 set with a seq', (d) => ({ ...d, version: 1 })],
    ];
    for (const [name, mutate] of cases) {
      assert.throws(() => parseKeySet(mutate(validV2()), 'test'), (e: unknown) => e instanceof LatticeError && e.code === 'KEYSET_INVALID', name);
    }
  });

  it('rejects a key whose id is not the thumbprint of its public key, and other malformed sets', () => {
    const other = generateEd25519();
    const cases: [string, (d: ReturnType<typeof valid>) => unknown][] = [
      ['wrong thumbprint', (d) => ({ ...d, keys: [{ ...d.keys[0], publicKey: other.publicKey }] })],
      ['unknown version', (d) => ({ ...d, version: 3 })],
      ['active not in keys', (d) => ({ ...d, active: other.keyId })],
      ['empty keys', (d) => ({ ...d, keys: [] })],
      ['wrong alg', (d) => ({ ...d, keys: [{ ...d.keys[0], alg: 'RS256' }] })],
      ['duplicate key', (d) => ({ ...d, keys: [d.keys[0], d.keys[0]] })],
      ['short public key', (d) => ({ ...d, keys: [{ ...d.keys[0], publicKey: 'AAAA', keyId: 'x' }] })],
    ];
    for (const [name, mutate] of cases) {
      assert.throws(() => parseKeySet(mutate(valid()), 'test'), (e: unknown) => e instanceof LatticeError && e.code === 'KEYSET_INVALID', name);
    }
  });
});
