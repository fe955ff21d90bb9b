/** Options and parsing shared by several commands. */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { sha256Hex } from '../core/crypto/index.ts';
import { LatticeError, describeError, isLatticeError } from '../core/errors.ts';
import type { HomePaths } from '../core/home.ts';
import type { EventDraft, LedgerEvent } from '../core/ledger/event.ts';
import { Ledger } from '../core/ledger/ledger.ts';

/**
 * Ledger options for a command that opens the ledger briefly: no background checkpoint timer (close() writes the
 * final checkpoint), so nothing starts a write transaction while the command holds a read snapshot.
 */
export const ONE_SHOT = { checkpointIntervalMs: 0 } as const;

export const HOME_HELP = 'state directory (default: $LATTICE_HOME, else ~/.lattice)';

export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/** Parses a positive integer flag value, naming the flag in the error. */
export function positiveInt(flag: string, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new LatticeError('INVALID_ARGUMENT', `${flag} must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
    }
    return Number(value);
  };
}

/** Records one operator event in the home's ledger (safe beside a running gate: commits are serialised by SQLite). */
export function recordEvent(paths: HomePaths, draft: EventDraft): LedgerEvent {
  const ledger = Ledger.open(paths, ONE_SHOT);
  try {
    return ledger.appendNow({ principal: 'operator', ...draft }).event;
  } finally {
    ledger.close();
  }
}

/** Reads a file the operator named, as text or bytes; a failure is an IO_ERROR naming the file. */
export function readInput(file: string): string;
export function readInput(file: string, as: 'bytes'): Buffer;
export function readInput(file: string, as: 'text' | 'bytes' = 'text'): string | Buffer {
  try {
    return as === 'text' ? readFileSync(file, 'utf8') : readFileSync(file);
  } catch (error) {
    throw new LatticeError('IO_ERROR', `cannot read ${file}: ${describeError(error)}`, { cause: error });
  }
}

/** The publisher's signature of `file`: the `--signature` file, else `<file>.sig` if present, else null. */
export function signatureOf(file: string, explicit: string | undefined): string | null {
  if (explicit !== undefined) return readInput(explicit);
  return existsSync(`${file}.sig`) ? readInput(`${file}.sig`) : null;
}

/** Codes that mean "refused to install this file" (as opposed to a usage or I/O problem). */
const INSTALL_REFUSALS: ReadonlySet<string> = new Set(['COMPONENT_INVALID', 'SIGNATURE_MISSING', 'SIGNATURE_INVALID']);

/**
 * Runs an installation; when it is refused for what the file is or who signed it, `record`s `<kind>.refused` with
 * the hash of the refused bytes (read only then) before the error reaches the operator. A refused install through
 * a running gate is recorded by the gate as `request.refused`.
 */
export async function recordingRefusal<T>(record: (draft: EventDraft) => unknown, kind: 'provider' | 'action', file: string, bytes: () => Uint8Array, install: () => Promise<T>): Promise<T> {
  try {
    return await install();
  } catch (error) {
    if (isLatticeError(error) && INSTALL_REFUSALS.has(error.code)) {
      record({ type: `${kind}.refused`, principal: 'operator', decision: 'deny', payload: { file: basename(file), sha256: sha256Hex(bytes()), code: error.code, message: error.message.slice(0, 1024) } });
    }
    throw error;
  }
}
