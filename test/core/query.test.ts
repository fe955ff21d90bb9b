/** Audit queries: newest first, filters, and cursors that stay stable while the ledger grows. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { LatticeError } from '../../core/errors.ts';
import { homePaths } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { decodeCursor, encodeCursor, queryEvents } from '../../core/ledger/query.ts';
import { tempDir } from '../helpers.ts';

let ledger: Ledger;

// An index copy every 7 events: most events are in the audit index, the newest few only in the unindexed tail,
// so every query below crosses from one to the other.
before(async () => {
  ledger = Ledger.open(homePaths(join(tempDir(), 'home')), { indexEvery: 7, checkpointIntervalMs: 0 });
  for (let i = 0; i < 30; i++) {
    await ledger.append({ type: i % 3 === 0 ? 'action.denied' : 'action.executed', principal: `agent-${i % 2}`, action: 'echo', decision: i % 3 === 0 ? 'deny' : 'allow', payload: { i } });
  }
});

describe('audit query', () => {
  it('pages newest first without repeats or gaps, even while events are appended', async () => {
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = queryEvents(ledger.database, {}, { limit: 7, ...(cursor !== undefined && { cursor }) });
      seen.push(...page.events.map((e) => e.seq));
      cursor = page.nextCursor ?? undefined;
      if (pages++ === 0) await ledger.append({ type: 'test.late' }); // must not shift later pages
    } while (cursor !== undefined);
    assert.deepEqual(seen, Array.from({ length: 31 }, (_, i) => 31 - i));
  });

  it('reads the audit index and the unindexed tail as one sequence', () => {
    const indexed = ledger.database.prepare('SELECT max(seq) FROM event_index').pluck().get() as number;
    assert.ok(indexed > 0 && indexed < ledger.head().seq, `indexed through ${indexed} of ${ledger.head().seq}`);
    const allows = queryEvents(ledger.database, { decision: 'allow' }, { limit: 100 }).events.map((e) => e.seq);
    const expected = ledger.database.prepare(`SELECT seq FROM events WHERE decision = 'allow' ORDER BY seq DESC`).pluck().all();
    assert.deepEqual(allows, expected);
    const pages: number[] = [];
    for (let cursor: string | null | undefined; cursor !== null; ) {
      const page = queryEvents(ledger.database, { action: 'echo' }, { limit: 4, ...(cursor !== undefined && { cursor }) });
      pages.push(...page.events.map((e) => e.seq));
      cursor = page.nextCursor;
    }
    assert.deepEqual(pages, ledger.database.prepare(`SELECT seq FROM events WHERE action = 'echo' ORDER BY seq DESC`).pluck().all());
  });

  it('filters by type, principal, decision and time', () => {
    const denied = queryEvents(ledger.database, { type: 'action.denied', principal: 'agent-0' }, { limit: 100 });
    assert.ok(denied.events.length > 0);
    assert.ok(denied.events.every((e) => e.type === 'action.denied' && e.principal === 'agent-0'));
    assert.equal(queryEvents(ledger.database, { decision: 'deny' }, { limit: 100 }).events.length, 10);
    assert.equal(queryEvents(ledger.database, { until: '2000-01-01T00:00:00.000Z' }, { limit: 100 }).events.length, 0);
    assert.equal(queryEvents(ledger.database, { since: '2000-01-01T00:00:00.000Z', action: 'echo' }, { limit: 100 }).events.length, 30);
  });

  it('rejects cursors it did not make and out-of-range limits', () => {
    assert.equal(decodeCursor(encodeCursor(12)), 12);
    const invalid = (e: unknown) => e instanceof LatticeError && e.code === 'INVALID_ARGUMENT';
    for (const bad of ['', 'abc', "1' OR 1=1 --", Buffer.from('{"v":1,"before":-1}').toString('base64url'), Buffer.from('{"v":2,"before":5}').toString('base64url'), 'x'.repeat(100)]) {
      assert.throws(() => queryEvents(ledger.database, {}, { limit: 5, cursor: bad }), invalid, bad);
    }
    for (const limit of [0, -1, 10_001, 1.5]) assert.throws(() => queryEvents(ledger.database, {}, { limit }), invalid, String(limit));
  });
});
