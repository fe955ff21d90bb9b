/** The record of refused requests (core/server/refusals.ts) on a real ledger, with a clock the test moves. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { homePaths } from '../../core/home.ts';
import type { LedgerEvent } from '../../core/ledger/event.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { RefusalLog, type Refusal } from '../../core/server/refusals.ts';
import { tempDir } from '../helpers.ts';

function open(): { ledger: Ledger; clock: { now: number }; log: RefusalLog } {
  const ledger = Ledger.open(homePaths(join(tempDir(), 'home')), { checkpointIntervalMs: 0 });
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  return { ledger, clock, log: new RefusalLog(ledger, () => clock.now) };
}

function refused(ledger: Ledger): { type: string; principal: string | null; payload: Record<string, unknown> }[] {
  return (ledger.database.prepare(`SELECT type, principal, payload FROM events WHERE type LIKE 'request.refused%' ORDER BY seq`).all() as LedgerEvent[]).map((e) => ({
    type: e.type,
    principal: e.principal,
    payload: JSON.parse(e.payload) as Record<string, unknown>,
  }));
}

const garbage = (i: number): Refusal => ({ principal: null, source: 'gate', code: 'NOT_FOUND', payload: { code: 'NOT_FOUND', method: 'GET', route: `/nope/${i}`, listener: 'gate' } });

describe('refusal records', () => {
  it('refusal-flood: past the first 5 per source and reason in a window, refusals become one aggregate event with the count and a sample', async () => {
    const { ledger, clock, log } = open();
    const outcomes = [];
    for (let i = 0; i < 1000; i++) {
      outcomes.push(await log.record(garbage(i)));
      clock.now += 10;
    }
    assert.deepEqual(outcomes.slice(0, 6), ['written', 'written', 'written', 'written', 'written', 'counted']);
    assert.equal(refused(ledger).length, 5, 'nothing more is written while the window lasts');
    clock.now += 60_000;
    await log.flush(false);
    const events = refused(ledger);
    assert.deepEqual(events.map((e) => e.type), [...Array<string>(5).fill('request.refused'), 'request.refused.aggregate']);
    const aggregate = events[5]!.payload;
    assert.equal(aggregate['count'], 995);
    assert.equal(aggregate['code'], 'NOT_FOUND');
    assert.equal(aggregate['source'], 'gate');
    assert.deepEqual(aggregate['sample'], garbage(5).payload);
    assert.equal(aggregate['from'], new Date(Date.parse('2026-01-01T00:00:00Z') + 50).toISOString());
    // A new window records its first refusals in full again.
    assert.equal(await log.record(garbage(2000)), 'written');
    await log.close();
    ledger.close();
  });

  it('keeps each source and each reason in its own window, so a flood hides no one else\'s refusals', async () => {
    const { ledger, log } = open();
    for (let i = 0; i < 50; i++) await log.record(garbage(i));
    assert.equal(await log.record({ ...garbage(0), code: 'METHOD_NOT_ALLOWED', payload: { code: 'METHOD_NOT_ALLOWED' } }), 'written');
    assert.equal(await log.record({ principal: 'peer_a', source: 'peer_a', code: 'NOT_FOUND', payload: { code: 'NOT_FOUND' } }), 'written');
    assert.equal(await log.record({ principal: null, source: 'tcp:127.0.0.1', code: 'NOT_FOUND', payload: { code: 'NOT_FOUND' } }), 'written');
    await log.close(); // the gate stopping writes what was counted
    const events = refused(ledger);
    assert.equal(events.filter((e) => e.type === 'request.refused').length, 8);
    const aggregates = events.filter((e) => e.type === 'request.refused.aggregate');
    assert.equal(aggregates.length, 1);
    assert.equal(aggregates[0]!.payload['count'], 45);
    assert.equal(events.find((e) => e.principal === 'peer_a')?.type, 'request.refused');
    ledger.close();
  });

  it('loopback-spread: every loopback address over TCP is one source; other addresses keep their own windows', async () => {
    const { ledger, log } = open();
    const from = (address: string): Refusal => ({ principal: null, source: `tcp:${address}`, code: 'NOT_FOUND', payload: { code: 'NOT_FOUND' } });
    const loopback = ['127.0.0.1', '127.0.1.2', '127.200.3.4', '::1', '::ffff:127.0.0.9'];
    const outcomes = [];
    for (const address of loopback) for (let i = 0; i < 3; i++) outcomes.push(await log.record(from(address)));
    assert.equal(outcomes.filter((o) => o === 'written').length, 5);
    // The legitimate case: distinct non-loopback addresses are distinct sources, each written in full.
    for (const address of ['10.0.0.1', '10.0.0.2', '::ffff:10.0.0.3', '128.0.0.1']) assert.equal(await log.record(from(address)), 'written');
    await log.close();
    const aggregates = refused(ledger).filter((e) => e.type === 'request.refused.aggregate');
    assert.deepEqual(aggregates.map((e) => [e.payload['source'], e.payload['count']]), [['tcp:loopback', loopback.length * 3 - 5]]);
    ledger.close();
  });

  it('holds a bounded table of sources: past 1,024, new sources share one window per reason', async () => {
    const { ledger, log } = open();
    await Promise.all(Array.from({ length: 1024 }, (_, i) => log.record({ principal: null, source: `tcp:10.0.${i >> 8}.${i & 255}`, code: 'NOT_FOUND', payload: { code: 'NOT_FOUND' } })));
    const overflow = [];
    for (let i = 0; i < 10; i++) overflow.push(await log.record({ principal: null, source: `tcp:10.9.0.${i}`, code: 'NOT_FOUND', payload: { code: 'NOT_FOUND' } }));
    assert.deepEqual(overflow, [...Array<string>(5).fill('written'), ...Array<string>(5).fill('counted')]);
    await log.close();
    const aggregate = refused(ledger).find((e) => e.type === 'request.refused.aggregate');
    assert.equal(aggregate?.payload['source'], '*');
    assert.equal(aggregate?.payload['count'], 5);
    ledger.close();
  });
});
