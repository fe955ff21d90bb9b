/** `lattice keys list|rotate`: the Ed25519 keys that sign checkpoints and receipts. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { LatticeError, isLatticeError } from '../../core/errors.ts';
import type { RotatedKeys } from '../../core/gate/key-routes.ts';
import { resolveHome, type HomePaths } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { HOME_HELP, ONE_SHOT, example } from '../common.ts';
import { admin } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('list and rotate the keys that sign checkpoints and receipts');

  const list = keys
    .command('list')
    .description('list every signing key, active and retired (with the seq from which a retired key signs nothing)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the key set as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const keySet = readKeySet(resolveHome(opts.home).keyset).document;
      if (opts.json === true) return printJson(keySet);
      const rows = keySet.keys.map((k) => {
        const active = k.keyId === keySet.active;
        return [k.keyId, active ? 'active' : 'retired', k.createdAt, k.retiredAt, active ? null : (k.retiredAtSeq?.toString() ?? 'unknown (set by the next rotation)')];
      });
      process.stdout.write(`${table(['KEY ID', 'STATUS', 'CREATED', 'RETIRED', 'RETIRED AT SEQ'], rows, 64)}\n`);
    });
  example(list, 'lattice keys list', 'lattice keys list --json');

  const rotate = keys
    .command('rotate')
    .description('make a new signing key and retire the old one: its private key is deleted, its public key stays so what it signed still verifies; goes through the running gate if there is one')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      if (!existsSync(paths.db)) throw new LatticeError('LEDGER_NOT_FOUND', `no ledger at ${paths.db}; run \`lattice init\` first`);
      const result = await rotateKeys(paths);
      if (opts.json === true) return printJson(result);
      process.stdout.write(
        `rotated: ${result.previousKeyId} → ${result.keyId} (recorded as event ${result.seq}${result.via === 'gate' ? ', by the running gate' : ''})\n` +
          `  ${result.previousKeyId} signs nothing from seq ${result.seq} on; its public key stays in the key set\n` +
          result.deletedKeyFiles.map((file) => `  deleted ${file}\n`).join(''),
      );
    });
  example(rotate, 'lattice keys rotate', 'lattice keys rotate --json');
}

/**
 * A running gate signs checkpoints and receipts, so it rotates (and switches keys in the same transaction that
 * retires the old one); with no gate, this process does it on the ledger file.
 */
async function rotateKeys(paths: HomePaths): Promise<RotatedKeys & { via: 'gate' | 'offline' }> {
  try {
    return { ...(await admin<RotatedKeys>(paths.root, 'POST', '/api/v1/admin/keys/rotate')), via: 'gate' };
  } catch (error) {
    if (isLatticeError(error) && error.code === 'NOT_FOUND') {
      throw new LatticeError(
        'GATE_UNREACHABLE',
        'the running gate is an earlier lattice that cannot rotate keys, and rotating beside it would leave it signing with the retired key: stop it (`lattice down`), rotate, then start it again',
      );
    }
    if (!isLatticeError(error) || error.code !== 'GATE_NOT_RUNNING') throw error;
  }
  const ledger = Ledger.open(paths, ONE_SHOT);
  try {
    const { previousKeyId, key, event, deletedKeyFiles } = ledger.rotateKeys();
    return { previousKeyId, keyId: key.keyId, publicKey: key.publicKey, seq: event.seq, deletedKeyFiles, via: 'offline' };
  } finally {
    ledger.close();
  }
}
