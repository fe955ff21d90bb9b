/**
 * How commands print, and the one place that maps failures to exit codes:
 *   0  success (for `verify`: the ledger is valid)
 *   1  the operation failed (for `verify`: the ledger was tampered with)
 *   2  usage, input or I/O error (bad flags, a missing or unreadable file or key, a ledger newer than this lattice)
 *
 * Everything printed for people passes through `printable`, because ledger fields are partly written by agents:
 * control characters are escaped so an event cannot move the cursor, recolour or rewrite the operator's terminal.
 */
import { isLatticeError, type ErrorCode } from '../core/errors.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'IO_ERROR',
  'HOME_UNUSABLE',
  'UNSAFE_PATH',
  'LEDGER_NOT_FOUND',
  'LEDGER_OPEN_FAILED',
  'LEDGER_SCHEMA_TOO_NEW',
  'KEYSET_NOT_FOUND',
  'KEYSET_INVALID',
  'KEY_INVALID',
  'BUNDLE_INVALID',
  'CONFIG_INVALID',
  'CONFIG_UNREADABLE',
  'GATE_ALREADY_RUNNING',
  'GATE_NOT_RUNNING',
  'SECRET_INVALID_NAME',
  'SECRET_TOO_LARGE',
  'MASTER_KEY_INVALID',
  'VALIDATION_FAILED',
  'TTL_TOO_LONG',
  'PEER_NOT_FOUND',
  'NOT_FOUND',
  'SECRET_NOT_FOUND',
  'MANIFEST_INVALID',
  'POLICY_INVALID',
  'ACTION_NOT_FOUND',
  'ACTION_CONFLICT',
  'COMPONENT_INVALID',
  'COMPONENT_NOT_FOUND',
  'PUBLISHER_INVALID',
  'PUBLISHER_NOT_FOUND',
  'PROFILE_INVALID',
  'PROFILE_NOT_FOUND',
]);

export function exitCodeFor(error: unknown): number {
  return isLatticeError(error) && USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.failed;
}

/** Prints an error as `lattice: <message>` (or a JSON error object) and returns the exit code to use. */
export function reportError(error: unknown, json: boolean): number {
  const code = isLatticeError(error) ? error.code : 'INTERNAL';
  const message = isLatticeError(error) ? error.message : `internal error: ${error instanceof Error ? error.message : String(error)}`;
  if (json) process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else process.stderr.write(`lattice: ${printableLines(message)}\n`);
  return exitCodeFor(error);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// Bidirectional controls too: U+202E in a path can make `notes.txt` display as something else.
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(CONTROL, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * A message of several lines for a terminal: the line breaks it means stay line breaks (continuation lines
 * indented, so nothing in them can pass for a line of its own), every other control character is escaped.
 */
export function printableLines(text: string): string {
  return text.split(/\r?\n/).map(printable).join('\n  ');
}

/** A plain-text table with a header row; every cell is made printable and long cells are cut. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number | null)[])[], maxWidth = 48): string {
  const cells = rows.map((row) => row.map((cell) => clip(printable(cell === null ? '-' : String(cell)), maxWidth)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: readonly string[]) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/**
 * RFC 4180 CSV. Cells that a spreadsheet would run as a formula (=, +, -, @, tab, CR) are prefixed with a
 * single quote (OWASP "CSV injection"), since agents choose some of the text.
 */
export function csvRow(cells: readonly (string | number | null)[]): string {
  return cells
    .map((cell) => {
      let text = cell === null ? '' : String(cell);
      if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
      return /[",\r\n']/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    })
    .join(',');
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** A progress line on stderr, only when stderr is a terminal; throttled, and erased by `done`. */
export function progress(label: string): { update: (done: number, total: number | undefined) => void; done: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      const pct = total !== undefined && total > 0 ? ` ${Math.floor((done / total) * 100)}%` : '';
      const of = total !== undefined ? ` / ${total.toLocaleString('en-US')}` : '';
      process.stderr.write(`\r${label}${pct} (${done.toLocaleString('en-US')}${of} events)\u001b[K`);
    },
    done() {
      if (shown) process.stderr.write('\r\u001b[K');
    },
  };
}
