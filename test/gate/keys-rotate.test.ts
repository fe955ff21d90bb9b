/**
 * `lattice keys rotate` beside a running gate goes through the gate's admin socket, so the process that signs
 * switches keys in the transaction that retires the old one: every receipt and checkpoint from the rotation's seq on
 * is the new key's, the retired private key file is gone, and the ledger verifies against the key set pinned right
 * after the rotation. With no gate, the command rotates on the ledger file itself.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { latticeJson, tempDir } from '../helpers.ts';
import { asAgent, asOperator, exited, gate, newAgent, type Agent, type Reply, type TestGate } from './harness.ts';

interface Rotated {
  via: string;
  previousKeyId: string;
  keyId: string;
  seq: number;
  deletedKeyFiles: string[];
}

function echo(g: TestGate, agent: Agent, message: string): Promise<Reply> {
  return asAgent(g.gate, agent, 'POST', '/api/v1/actions/echo/execute', JSON.stringify({ params: { message } }));
}

/** The key ids of every checkpoint and receipt signed at or after `seq`. */
function signersFrom(home: string, seq: number): { checkpoints: string[]; receipts: string[] } {
  const db = new Database(join(home, 'lattice.db'), { readonly: true });
  try {
    return {
      checkpoints: db.prepare('SELECT key_id FROM checkpoints WHERE seq >= ? ORDER BY seq').pluck().all(seq) as string[],
      receipts: db.prepare('SELECT key_id FROM receipts WHERE event_seq >= ? ORDER BY event_seq').pluck().all(seq) as string[],
    };
  } finally {
    db.close();
  }
}

function activeKey(home: string): string {
  return latticeJson<{ active: string }>(['keys', 'list', '--home', home]).json.active;
}

describe('lattice keys rotate', () => {
  it('retired-key-in-running-gate: the running gate rotates and signs nothing more with the retired key', async () => {
    const g = await gate();
    const agent = await newAgent(g.admin);
    assert.equal((await echo(g, agent, 'before')).status, 200);
    const oldKeyId = activeKey(g.home);

    const rotated = latticeJson<Rotated>(['keys', 'rotate', '--home', g.home]);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.equal(rotated.json.via, 'gate');
    assert.equal(rotated.json.previousKeyId, oldKeyId);
    assert.deepEqual(rotated.json.deletedKeyFiles, [join(g.home, 'keys', `${oldKeyId}.pem`)]);
    assert.equal(existsSync(join(g.home, 'keys', `${oldKeyId}.pem`)), false, 'the retired private key is deleted');
    const pinned = join(tempDir(), 'pinned-keyset.json');
    copyFileSync(join(g.home, 'keys', 'keyset.json'), pinned);

    const status = await asOperator(g, 'GET', '/api/v1/admin/status');
    assert.equal((status.body['health'] as Record<string, { detail: string }>)['signingKey']?.detail, rotated.json.keyId, 'the gate signs with the new key at once');
    const after = await echo(g, agent, 'after');
    assert.equal(after.status, 200, JSON.stringify(after.body));
    g.child.kill('SIGTERM'); // its final checkpoint is signed as it stops
    await exited(g.child);

    const signers = signersFrom(g.home, rotated.json.seq);
    assert.ok(signers.checkpoints.length >= 2, 'the rotation and the stop were checkpointed');
    assert.ok(signers.receipts.length >= 1, 'the echo after the rotation has a receipt');
    assert.deepEqual([...new Set([...signers.checkpoints, ...signers.receipts])], [rotated.json.keyId]);
    const verified = latticeJson<{ ok: boolean; failure: { message: string } | null }>(['verify', '--home', g.home, '--keyset', pinned]);
    assert.equal(verified.status, 0, verified.json.failure?.message);
  });

  it('rotates on the ledger file when no gate runs', () => {
    const home = join(tempDir(), 'home');
    assert.equal(latticeJson(['init', '--home', home]).status, 0);
    const oldKeyId = activeKey(home);
    const rotated = latticeJson<Rotated>(['keys', 'rotate', '--home', home]);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.equal(rotated.json.via, 'offline');
    assert.equal(rotated.json.previousKeyId, oldKeyId);
    assert.equal(activeKey(home), rotated.json.keyId);
    assert.equal(existsSync(join(home, 'keys', `${oldKeyId}.pem`)), false);
    assert.equal(latticeJson(['verify', '--home', home]).status, 0);
  });
});
