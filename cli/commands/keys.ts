/** `lattice keys list|rotate`: the Ed25519 keys that sign checkpoints and receipts. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { LatticeError } from '../../core/errors.ts';
import { resolveHome } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { HOME_HELP, ONE_SHOT, example } from '../common.ts';
import { printJson, table } from '../output.ts';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('list and rotate the keys that sign checkpoints and receipts');

  const list = keys
    .command('list')
    .description('list every signing key, active and retired')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the key set as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const keySet = readKeySet(resolveHome(opts.home).keyset).document;
      if (opts.json === true) return printJson(keySet);
      const rows = keySet.keys.map((k) => [k.keyId, k.keyId === keySet.active ? 'active' : 'retired', k.createdAt, k.retiredAt]);
      process.stdout.write(`${table(['KEY ID', 'STATUS', 'CREATED', 'RETIRED'], rows, 64)}\n`);
    });
  example(list, 'lattice keys list', 'lattice keys list --json');

  const rotate = keys
    .command('rotate')
    .description('make a new signing key; old public keys stay in the key set so old signatures still verify')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      if (!existsSync(paths.db)) throw new LatticeError('LEDGER_NOT_FOUND', `no ledger at ${paths.db}; run \`lattice init\` first`);
      const ledger = Ledger.open(paths, ONE_SHOT);
      try {
        const { previousKeyId, key, event, deletedKeyFiles } = ledger.rotateKeys();
        const result = { previousKeyId, keyId: key.keyId, publicKey: key.publicKey, seq: event.seq, deletedKeyFiles };
        if (opts.json === true) return printJson(result);
        process.stdout.write(`rotated: ${previousKeyId} → ${key.keyId} (recorded as event ${event.seq})\n${deletedKeyFiles.map((f) => `  deleted ${f}\n`).join('')}`);
      } finally {
        ledger.close();
      }
    });
  example(rotate, 'lattice keys rotate');
}
