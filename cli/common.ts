/** Options and parsing shared by several commands. */
import type { Command } from 'commander';
import { LatticeError } from '../core/errors.ts';

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
