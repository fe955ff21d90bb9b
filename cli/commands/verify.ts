/** `lattice verify`: recompute the chain and check every signature; read-only, exit 0 valid / 1 tampered / 2 error. */
import { Option, type Command } from 'commander';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolveHome } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { openReadOnly } from '../../core/ledger/database.ts';
import { bundleSource } from '../../core/ledger/sources.ts';
import { verifyDatabase } from '../../core/ledger/verify-parallel.ts';
import { verifyLedger, type VerifyReport } from '../../core/ledger/verify.ts';
import { shippedFile } from '../../core/runtime.ts';
import { HOME_HELP, example, positiveInt } from '../common.ts';
import { EXIT, printJson, printable, progress } from '../output.ts';

interface VerifyOptions {
  home?: string;
  db?: string;
  bundle?: string;
  keyset?: string;
  workers?: number;
  json?: boolean;
}

/** The verification worker, built beside this bundle by scripts/build.mjs. */
export function verifyWorkerUrl(): URL {
  return pathToFileURL(shippedFile('verify-worker'));
}

export function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .description('check the whole ledger: hash chain, checkpoints, receipts and their signatures (never modifies it)')
    .addOption(new Option('--home <dir>', HOME_HELP).conflicts(['db', 'bundle']))
    .addOption(new Option('--db <file>', 'a ledger database file (key set from <dir of file>/keys/keyset.json)').conflicts(['bundle']))
    .option('--bundle <file>', 'an exported bundle (from `lattice export`), checked offline')
    .option('--keyset <file>', 'check signatures against this key set instead of the one beside the ledger or inside the bundle')
    .option('--workers <n>', 'threads for a large ledger database (default: CPU cores, at most 8)', positiveInt('--workers', 64))
    .option('--json', 'print the report as JSON')
    .action(async (opts: VerifyOptions) => {
      const trusted = opts.keyset === undefined ? undefined : readKeySet(opts.keyset);
      const bar = progress('verifying');
      let report: VerifyReport;
      let label: string;
      if (opts.bundle !== undefined) {
        label = opts.bundle;
        report = await verifyLedger(await bundleSource(opts.bundle, trusted), { onProgress: bar.update });
      } else {
        const file = opts.db ?? resolveHome(opts.home).db;
        label = file;
        const keys = trusted ?? readKeySetBeside(file);
        const workers = opts.workers ?? Math.min(8, availableParallelism());
        report = await verifyDatabase(file, keys, {
          workers,
          workerUrl: verifyWorkerUrl(),
          // An explicit --workers is honoured even for a small ledger.
          ...(opts.workers !== undefined && { forceParallel: true }),
          onProgress: bar.update,
        });
      }
      bar.done();
      process.exitCode = report.ok ? EXIT.ok : EXIT.failed;
      if (opts.json === true) return printJson({ ...report, ledger: label });
      process.stdout.write(describe(report, label));
    });
  example(cmd, 'lattice verify', 'lattice verify --bundle ledger.jsonl --keyset trusted-keyset.json --json');
}

/** The key set beside a ledger file; a missing ledger is reported before a missing key set. */
function readKeySetBeside(file: string) {
  openReadOnly(file).close();
  return readKeySet(join(dirname(file), 'keys', 'keyset.json'));
}

function describe(r: VerifyReport, label: string): string {
  const n = (value: number) => value.toLocaleString('en-US');
  if (r.failure !== null) {
    return (
      `TAMPERED at seq ${n(r.failure.seq)} (${r.failure.code}): ${printable(label)}\n` +
      `  ${printable(r.failure.message)}\n` +
      `  events verified before the break: ${n(r.events)}\n`
    );
  }
  const signed =
    r.lastCheckpointSeq === null
      ? 'none (no event is vouched for by a signature yet)'
      : `${n(r.checkpoints)} verified, last at seq ${n(r.lastCheckpointSeq)}` +
        (r.unsignedTail > 0 ? ` (${n(r.unsignedTail)} newer events chained but not yet signed)` : '');
  return (
    `VALID: ${printable(label)} (${r.source})\n` +
    `  events       ${n(r.events)}${r.events > 0 ? ` (seq ${n(r.firstSeq)}–${n(r.lastSeq)})` : ''}\n` +
    `  head         ${r.headHash ?? '-'}\n` +
    `  checkpoints  ${signed}\n` +
    `  receipts     ${n(r.receipts)} verified\n` +
    `  signed by    ${r.keyIds.length > 0 ? r.keyIds.join(', ') : '-'}\n` +
    (r.anchored ? '' : `  note         this partial bundle starts at seq ${n(r.firstSeq)} and no checkpoint in it vouches for that start\n`) +
    r.unboundedKeys
      .map((keyId) => `  note         retired key ${keyId} has no retirement seq in this key set (written before lattice recorded one): its signatures count at any seq until \`lattice keys rotate\` records one\n`)
      .join('')
  );
}
