/**
 * Durations and points in time given by people and agents: `90s`, `30m`, `1h`, `7d`, or ISO 8601 timestamps.
 * Anything else is rejected with a message that shows the accepted forms; nothing is guessed.
 */
import { LatticeError } from './errors.ts';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;

/** Parses `90s`, `30m`, `1h`, `7d` (and `ms`) into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const match = DURATION.exec(text.trim());
  if (match === null) {
    throw new LatticeError('INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not a duration like 90s, 30m, 1h or 7d`);
  }
  const [, amount, unit] = match;
  return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
}

/**
 * Parses a point in time: an ISO 8601 timestamp, or a duration meaning "that long ago" (`15m`, `2d`).
 * Returns the canonical ISO form the ledger stores, so string comparison orders correctly.
 */
export function parseTimeArg(text: string, what: string, now: Date = new Date()): string {
  if (DURATION.test(text.trim())) return new Date(now.getTime() - parseDuration(text, what)).toISOString();
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const date = new Date(text);
    if (!Number.isNaN(date.getTime())) return date.toISOString();
  }
  throw new LatticeError('INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not an ISO 8601 time (2026-01-31T12:00:00Z) or an age like 15m or 2d`);
}
