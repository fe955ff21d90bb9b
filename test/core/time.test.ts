/** Durations and time arguments typed by people and agents. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatticeError } from '../../core/errors.ts';
import { parseDuration, parseTimeArg } from '../../core/time.ts';

const invalid = (e: unknown) => e instanceof LatticeError && e.code === 'INVALID_ARGUMENT';

describe('time arguments', () => {
  it('parses durations', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('250ms'), 250);
  });

  it('rejects anything that is not a duration', () => {
    for (const bad of ['', '1', 'h', '-5m', '1.5h', '1w', '1h30m', '9999999999s', ' 5 m']) assert.throws(() => parseDuration(bad), invalid, bad);
  });

  it('reads ISO timestamps and ages, normalised to the ledger form', () => {
    const now = new Date('2026-06-01T12:00:00.000Z');
    assert.equal(parseTimeArg('2026-01-31T12:00:00Z', '--since', now), '2026-01-31T12:00:00.000Z');
    assert.equal(parseTimeArg('2026-01-31', '--since', now), '2026-01-31T00:00:00.000Z');
    assert.equal(parseTimeArg('2h', '--since', now), '2026-06-01T10:00:00.000Z');
    for (const bad of ['yesterday', '2026-13-45', 'now']) assert.throws(() => parseTimeArg(bad, '--since', now), invalid, bad);
  });
});
