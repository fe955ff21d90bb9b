/** `lattice init`: create the state directory, the ledger and the first signing key (idempotent). */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { resolveHome } from '../../core/home.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { HOME_HELP, ONE_SHOT, example } from '../common.ts';
import { printJson } from '../output.ts';

export function registerInit(program: Command): void {
  const cmd = program
    .command('init')
    .description('create the state directory, the evidence ledger and the first signing key (safe to re-run)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const created = !existsSync(paths.db);
      const ledger = Ledger.open(paths, ONE_SHOT);
      const head = ledger.head();
      const keyId = ledger.keys.active.keyId;
      ledger.close();
      const result = { home: paths.root, db: paths.db, created, keyId, head };
      if (opts.json === true) return printJson(result);
      process.stdout.write(
        `${created ? 'created' : 'already initialised'}: ${paths.root}\n` +
          `  ledger       ${paths.db} (${head.seq} event${head.seq === 1 ? '' : 's'})\n` +
          `  signing key  ${keyId}\n` +
          `next: lattice audit    lattice verify\n`,
      );
    });
  example(cmd, 'lattice init', 'LATTICE_HOME=/srv/lattice lattice init --json');
}
