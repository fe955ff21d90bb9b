/**
 * `lattice actions [ID]` lists or shows the actions a gate on this home offers (read from the built-ins and
 * `<home>/actions`, so it works without a running gate); `lattice actions add FILE` validates a manifest, checks
 * its signature (core/actions/install.ts) and installs it: through the running gate (registered at once), or
 * directly on the home, where the next `lattice up` registers it. Either way the installation is in the ledger.
 */
import type { Command } from 'commander';
import { ActionRegistry, describeAction, registryOptions } from '../../core/actions/registry.ts';
import { parseManifest } from '../../core/actions/manifest.ts';
import { loadConfig } from '../../core/config/config.ts';
import { LatticeError } from '../../core/errors.ts';
import { installManifest } from '../../core/actions/install.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import type { Trust } from '../../core/trust/publishers.ts';
import { resolveHome } from '../../core/home.ts';
import { HOME_HELP, ONE_SHOT, example, readInput, signatureOf } from '../common.ts';
import { recordingRefusal } from '../record.ts';
import { admin } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

/** What `actions add` reports, from the gate's answer or from installing directly. */
interface Installed {
  readonly id: string;
  readonly version: string;
  readonly digest: string;
  readonly publisher: Trust['publisher'];
  readonly allowUnsigned: boolean;
  readonly seq: number;
}

export function registerActions(program: Command): void {
  const actions = program
    .command('actions [id]')
    .description('list the actions this home offers, or show one manifest')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .passThroughOptions()
    .action((id: string | undefined, opts: { home?: string; config?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const { config } = loadConfig(paths, opts.config);
      const registry = ActionRegistry.load(paths, registryOptions(config, paths));
      if (id !== undefined) {
        const manifest = registry.get(id);
        const view = describeAction(manifest, registry.list().find((a) => a.manifest.id === id)?.source ?? 'file');
        if (opts.json === true) return printJson(view);
        process.stdout.write(
          `${view.id} ${view.version} (${view.risk} risk, ${view.source})\n  ${view.description}\n` +
            `  provider  ${JSON.stringify(view.provider)}\n  digest    ${view.digest}\n` +
            `  sinks     ${JSON.stringify(view.sinks)}\n  secrets   ${view.secrets.map((s) => `${s.secret} → ${s.header}`).join(', ') || '-'}\n` +
            `  params    ${JSON.stringify(view.requestSchema)}\n`,
        );
        return;
      }
      const list = registry.list().map((a) => describeAction(a.manifest, a.source));
      if (opts.json === true) return printJson({ actions: list });
      process.stdout.write(`${table(['ACTION', 'VERSION', 'RISK', 'SOURCE', 'DESCRIPTION'], list.map((a) => [a.id, a.version, a.risk, a.source, a.description]), 60)}\n`);
    });
  example(actions, 'lattice actions', 'lattice actions github.pr.merge --json');

  const add = actions
    .command('add <file>')
    .description("validate a manifest, check its publisher's signature (<file>.sig) and install it; a running gate registers it at once")
    .option('--signature <file>', "the publisher's signature (default: <file>.sig)")
    .option('--allow-unsigned', 'install without a trusted signature (recorded in the ledger)')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { signature?: string; allowUnsigned?: boolean; home?: string; config?: string; json?: boolean }) => {
      const text = readInput(file);
      parseManifest(text, file); // refuse before anything is installed
      const request = { text, signature: signatureOf(file, opts.signature), allowUnsigned: opts.allowUnsigned === true, source: file };
      const paths = resolveHome(opts.home);
      let installed: Installed & { registered: boolean };
      try {
        const reply = await admin<Installed>(opts.home, 'POST', '/api/v1/actions', {
          manifest: text,
          ...(request.signature === null ? {} : { signature: request.signature }),
          allowUnsigned: request.allowUnsigned,
          file,
        });
        installed = { id: reply.id, version: reply.version, digest: reply.digest, publisher: reply.publisher, allowUnsigned: reply.allowUnsigned, seq: reply.seq, registered: true };
      } catch (error) {
        if (!(error instanceof LatticeError) || error.code !== 'GATE_NOT_RUNNING') throw error;
        const registry = ActionRegistry.load(paths, registryOptions(loadConfig(paths, opts.config).config, paths));
        const ledger = Ledger.open(paths, ONE_SHOT);
        try {
          const { manifest, trust, seq } = await recordingRefusal((draft) => ledger.appendNow(draft), 'action', file, () => Buffer.from(text, 'utf8'), () => installManifest(registry, ledger, paths, request));
          installed = { id: manifest.id, version: manifest.version, digest: manifest.digest, publisher: trust.publisher, allowUnsigned: trust.allowUnsigned, seq, registered: false };
        } finally {
          ledger.close();
        }
      }
      if (opts.json === true) return printJson(installed);
      const signed = installed.publisher === null ? 'unsigned (--allow-unsigned)' : `signed by ${installed.publisher.name}`;
      process.stdout.write(
        `installed ${installed.id} ${installed.version} (digest ${installed.digest.slice(0, 16)}…, ${signed}; recorded as event ${installed.seq})` +
          `${installed.registered ? '; the gate registered it' : '; it is registered when the gate starts'}\n`,
      );
    });
  example(add, 'lattice actions add ./jira.issue.create.toml', 'lattice actions add ./my-action.toml --allow-unsigned');
}
