/** The DPoP replay cache: a proof id is refused again at once, after it is committed, and after a restart. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { homePaths } from '../../core/home.ts';
import { SqliteReplayStore } from '../../core/identity/replay.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { tempDir } from '../helpers.ts';

const stored = (ledger: Ledger) => ledger.database.prepare('SELECT jti FROM dpop_jti ORDER BY jti').pluck().all();

describe('DPoP replay cache', () => {
  it('refuses a jti it has seen, before and after the commit and across a restart; accepts new ones', async () => {
    const paths = homePaths(join(tempDir(), 'home'));
    const ledger = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const replay = new SqliteReplayStore(ledger);
    const expires = Date.now() + 60_000;
    assert.equal(replay.remember('jti-1', expires), true);
    assert.equal(replay.remember('jti-1', expires), false, 'refused from memory before the commit');
    assert.deepEqual(stored(ledger), []);
    await ledger.append({ type: 'test.request' }); // the request's evidence commits the jti with it
    assert.deepEqual(stored(ledger), ['jti-1']);
    assert.equal(replay.remember('jti-1', expires), false, 'refused from the table after the commit');
    assert.equal(replay.remember('jti-2', expires), true);
    ledger.close(); // close commits what is queued

    const reopened = Ledger.open(paths, { checkpointIntervalMs: 0 });
    const after = new SqliteReplayStore(reopened);
    assert.equal(after.remember('jti-1', expires), false);
    assert.equal(after.remember('jti-2', expires), false);
    assert.equal(after.remember('jti-3', expires), true);
    reopened.close();
  });

  it('purges proof ids whose proofs can no longer be accepted, from memory and from the table', async () => {
    const ledger = Ledger.open(homePaths(join(tempDir(), 'home')), { checkpointIntervalMs: 0 });
    const replay = new SqliteReplayStore(ledger);
    const now = Date.now();
    assert.equal(replay.remember('old-committed', now - 1), true);
    await ledger.append({ type: 'test.request' });
    assert.equal(replay.remember('old-unsaved', now - 1), true);
    assert.equal(replay.remember('fresh', now + 60_000), true);
    assert.equal(replay.purge(now), 1); // the committed one; the unsaved one leaves memory
    assert.equal(replay.remember('old-unsaved', now + 60_000), true, 'purged from memory');
    assert.equal(replay.remember('fresh', now + 60_000), false);
    ledger.close();
  });
});
