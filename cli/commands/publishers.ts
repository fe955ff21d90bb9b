/**
 * `lattice publishers add|list|rm` keeps the publisher keys this home trusts; `keygen` and `sign` are the
 * publisher's side: make a key, sign a component or manifest (`<file>.sig`). Trust changes are ledger events.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { generateEd25519 } from '../../core/crypto/index.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import { writeFileAtomic, writeFileExclusive } from '../../core/fs-atomic.ts';
import { resolveHome } from '../../core/home.ts';
import { addPublisher, parsePublicKeyInput, readPublishers, removePublisher } from '../../core/trust/publishers.ts';
import { signBytes, type SignedKind } from '../../core/trust/signature.ts';
import { HOME_HELP, example, readInput } from '../common.ts';
import { recordEvent } from '../record.ts';
import { printJson, table } from '../output.ts';

export function registerPublishers(program: Command): void {
  const publishers = program.command('publishers').description('the publisher keys whose signed providers and action manifests this home accepts');

  const list = publishers
    .command('list')
    .description('list the trusted publishers (lattice release is always trusted)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const all = readPublishers(resolveHome(opts.home));
      if (opts.json === true) return printJson({ publishers: all });
      process.stdout.write(`${table(['NAME', 'KEY ID', 'SOURCE', 'ADDED'], all.map((p) => [p.name, p.keyId, p.source, p.addedAt || '-']), 64)}\n`);
    });
  example(list, 'lattice publishers list');

  const add = publishers
    .command('add <name> <key>')
    .description("trust a publisher's Ed25519 public key (base64url, a file holding it, or one of its .sig files)")
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action((name: string, key: string, opts: { home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const publisher = addPublisher(paths, name, parsePublicKeyInput(existsSync(key) ? readInput(key) : key));
      const event = recordEvent(paths, { type: 'publisher.added', payload: { name: publisher.name, keyId: publisher.keyId, publicKey: publisher.publicKey } });
      if (opts.json === true) return printJson({ ...publisher, seq: event.seq });
      process.stdout.write(`trusted ${publisher.name}: key id ${publisher.keyId} (recorded as event ${event.seq})\ncompare the key id with the one the publisher gave you\n`);
    });
  example(add, 'lattice publishers add acme -- AsULZl2Qw5W9suPTDrFelF5_McgQgFm2hxfkQ7JFoQY   # `--`: a key may begin with -', 'lattice publishers add acme ./acme.pub');

  const rm = publishers
    .command('rm <name-or-key-id>')
    .description('stop trusting a publisher (components and manifests already installed stay installed)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action((which: string, opts: { home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const removed = removePublisher(paths, which);
      const event = recordEvent(paths, { type: 'publisher.removed', payload: { name: removed.name, keyId: removed.keyId } });
      if (opts.json === true) return printJson({ name: removed.name, keyId: removed.keyId, seq: event.seq });
      process.stdout.write(`no longer trusted: ${removed.name} (${removed.keyId}; recorded as event ${event.seq})\n`);
    });
  example(rm, 'lattice publishers rm acme', 'lattice publishers rm -- -Xk3…   # a key id beginning with -');

  const keygen = publishers
    .command('keygen')
    .description('make a publisher signing key (a private PEM file, 0600); prints the public key to give operators')
    .requiredOption('--out <file>', 'where to write the private key (must not exist)')
    .option('--json', 'print as JSON')
    .action((opts: { out: string; json?: boolean }) => {
      const pair = generateEd25519();
      try {
        writeFileExclusive(opts.out, pair.privateKeyPem, 0o600);
      } catch (error) {
        throw new LatticeError('IO_ERROR', `cannot write ${opts.out}: ${describeError(error)}`, { cause: error });
      }
      if (opts.json === true) return printJson({ file: opts.out, keyId: pair.keyId, publicKey: pair.publicKey });
      process.stdout.write(`wrote ${opts.out}\n  public key  ${pair.publicKey}\n  key id      ${pair.keyId}\noperators trust it with: lattice publishers add <name> -- ${pair.publicKey}\n`);
    });
  example(keygen, 'lattice publishers keygen --out acme.pem');

  const sign = publishers
    .command('sign <file>')
    .description('sign a provider component (.wasm) or action manifest (.toml) as a publisher; writes <file>.sig')
    .requiredOption('--key <pem>', 'the private key `keygen` wrote')
    .option('--kind <kind>', 'component or manifest (default: from the file extension)')
    .option('--json', 'print as JSON')
    .action((file: string, opts: { key: string; kind?: string; json?: boolean }) => {
      const kind = signedKind(file, opts.kind);
      const bytes = readInput(file, 'bytes');
      const pem = readInput(opts.key);
      let doc;
      try {
        doc = signBytes(bytes, kind, pem);
      } catch (error) {
        throw new LatticeError('KEY_INVALID', `${opts.key} is not an Ed25519 private key: ${describeError(error)}`, { cause: error });
      }
      writeFileAtomic(`${file}.sig`, `${JSON.stringify(doc, null, 2)}\n`, 0o644);
      if (opts.json === true) return printJson({ file: `${file}.sig`, ...doc });
      process.stdout.write(`wrote ${file}.sig (${kind}, sha256 ${doc.sha256}, publisher ${doc.publisher})\n`);
    });
  example(sign, 'lattice publishers sign ./jira.wasm --key acme.pem', 'lattice publishers sign ./jira.issue.create.toml --key acme.pem');
}

function signedKind(file: string, flag: string | undefined): SignedKind {
  const kind = flag ?? ({ '.wasm': 'component', '.toml': 'manifest' } as Record<string, string>)[extname(file)];
  if (kind === 'component' || kind === 'manifest') return kind;
  throw new LatticeError('INVALID_ARGUMENT', `--kind must be component or manifest${flag === undefined ? ` (cannot tell from the name ${file})` : ''}`);
}
