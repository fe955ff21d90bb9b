/** `lattice export`: write a portable bundle that `lattice verify --bundle` checks offline (for CI artifacts). */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { LatticeError } from '../../core/errors.ts';
import { resolveHome } from '../../core/home.ts';
import { writeBundle } from '../../core/ledger/bundle.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { checkpointsIn, countEvents, eventChunks } from '../../core/ledger/sources.ts';
import { HOME_HELP, ONE_SHOT, example, positiveInt } from '../common.ts';
import { printJson, progress } from '../output.ts';

export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('write events, checkpoints, receipts and the public key set to a bundle file (the head is signed first)')
    .requiredOption('--out <file>', 'where to write the bundle (JSON Lines)')
    .option('--since <seq>', 'export events from this seq on (default: all)', positiveInt('--since'))
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print a summary as JSON')
    .action((opts: { out: string; since?: number; home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      if (!existsSync(paths.db)) throw new LatticeError('LEDGER_NOT_FOUND', `no ledger at ${paths.db}; run \`lattice init\` first`);
      const ledger = Ledger.open(paths, ONE_SHOT);
      const db = ledger.database;
      try {
        ledger.checkpoint(); // so every exported event is vouched for by a signature
        db.exec('BEGIN');
        const since = opts.since ?? 1;
        const bar = progress('exporting');
        const checkpoints = checkpointsIn(db, since);
        // Read once the snapshot is taken: a rotation writes the key set before it commits, so this set knows
        // every key that signed what the snapshot holds.
        ledger.keys.refresh();
        const contents = {
          keyset: ledger.keys.publicKeys.document,
          since,
          checkpoints,
          events: countEvents(db, since),
          chunks: eventChunks(db, since),
        };
        const summary = writeBundle(contents, opts.out, bar.update);
        bar.done();
        db.exec('COMMIT');
        if (opts.json === true) return printJson(summary);
        process.stdout.write(
          `exported ${summary.events} events (seq ${summary.since}–${summary.head.seq}), ${summary.checkpoints} checkpoints, ` +
            `${summary.receipts} receipts to ${summary.file}\ncheck it with: lattice verify --bundle ${summary.file}\n`,
        );
      } finally {
        if (db.inTransaction) db.exec('ROLLBACK');
        ledger.close();
      }
    });
  example(cmd, 'lattice export --out ledger.jsonl', 'lattice export --out recent.jsonl --since 5000 --json');
}
