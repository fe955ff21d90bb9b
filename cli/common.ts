/** Options and parsing shared by several commands (nothing here loads the ledger: see cli/record.ts). */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { LatticeError, describeError } from '../core/errors.ts';

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
