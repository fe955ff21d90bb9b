/** An untouched ledger of 100,000 events verifies through the CLI, and an edit deep inside it is found. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { homePaths, type HomePaths } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { attackerOpen, latticeJson, tempDir } from '../helpers.ts';

const EVENTS = 100_000;
let home: HomePaths;

before(async () => {
  home = homePaths(join(tempDir(), 'home'));
  const ledger = Ledger.open(home, { checkpointIntervalMs: 0 });
  const producers = Array.from({ length: 16 }, async (_, p) => {
    for (let i = p; i < EVENTS - 1; i += 16) {
      await ledger.append({ type: 'test.event', principal: `agent-${p}`, action: 'echo', decision: 'allow', payload: { i, message: 'hello' } });
    }
  });
  await Promise.all(producers);
  ledger.close();
});

describe('lattice verify on a large ledger', () => {
  it('accepts 100,000 untouched events', () => {
    const { status, json } = latticeJson<{ ok: boolean; events: number; checkpoints: number; unsignedTail: number }>(['verify', '--home', home.root]);
    assert.equal(status, 0);
    assert.equal(json.ok, true);
    assert.equal(json.events, EVENTS);
    assert.ok(json.checkpoints >= 99, `checkpoints: ${json.checkpoints}`);
    assert.equal(json.unsignedTail, 0);
  });

  it('finds one edited event among them', () => {
    attackerOpen(home.db).prepare(`UPDATE events SET decision = 'deny' WHERE seq = 77777`).run();
    const { status, json } = latticeJson<{ failure: { code: string; seq: number } }>(['verify', '--home', home.root]);
    assert.equal(status, 1);
    assert.deepEqual([json.failure.code, json.failure.seq], ['HASH_MISMATCH', 77777]);
  });
});
