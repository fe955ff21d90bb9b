/**
 * `lattice providers list|add|inspect`: the WebAssembly components this home can run. `add` prints the hash and
 * the imports a component asks for, refuses one that imports beyond lattice:provider, requires a trusted
 * publisher's signature unless `--allow-unsigned`, and records the installation (hash and trust) in the ledger.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ActionRegistry, registryOptions } from '../../core/actions/registry.ts';
import type { ActionManifest } from '../../core/actions/manifest.ts';
import { loadConfig } from '../../core/config/config.ts';
import { resolveHome, type HomePaths } from '../../core/home.ts';
import { readPublishers } from '../../core/trust/publishers.ts';
import { findComponent, installComponent, listComponents, type ComponentEntry, type SignatureStatus } from '../../providers/catalog.ts';
import { describeComponent } from '../../providers/runner/transpile.ts';
import { HOME_HELP, example, readInput, signatureOf } from '../common.ts';
import { recordEvent, recordingRefusal } from '../record.ts';
import { printJson, printable, table } from '../output.ts';
import { providerLocations } from '../providers.ts';

interface HomeOptions {
  home?: string;
  config?: string;
  json?: boolean;
}

export function registerProviders(program: Command): void {
  const providers = program.command('providers').description('the WebAssembly provider components this home can run');

  const list = providers
    .command('list')
    .description('list the built-in and installed components: hash, size, signer, and the actions using each')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action((opts: HomeOptions) => {
      const paths = resolveHome(opts.home);
      const entries = listComponents(paths, providerLocations().builtinDir, readPublishers(paths));
      const users = actionsByComponent(paths, opts.config);
      const rows = entries.map((e) => ({ ...e, actions: users(e) }));
      if (opts.json === true) return printJson({ components: rows });
      const shown = rows.map((e) => [e.name, e.source, e.sha256.slice(0, 16), String(e.size), signer(e.signature), e.actions.join(', ') || '-']);
      process.stdout.write(`${table(['COMPONENT', 'SOURCE', 'SHA256', 'BYTES', 'SIGNED BY', 'ACTIONS'], shown, 60)}\n`);
    });
  example(list, 'lattice providers list', 'lattice providers list --json');

  const add = providers
    .command('add <file>')
    .description('check a component (imports, signature) and install it into <home>/providers')
    .option('--name <file.wasm>', 'install under this name (default: the file name)')
    .option('--signature <file>', "the publisher's signature (default: <file>.sig)")
    .option('--allow-unsigned', 'install without a trusted signature (recorded in the ledger)')
    .option('--replace', 'replace an installed component of the same name')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { name?: string; signature?: string; allowUnsigned?: boolean; replace?: boolean; home?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const signature = signatureOf(file, opts.signature);
      const request = { file, name: opts.name, signature, allowUnsigned: opts.allowUnsigned === true, replace: opts.replace === true };
      const installed = await recordingRefusal((draft) => recordEvent(paths, draft), 'provider', file, () => readInput(file, 'bytes'), () => installComponent(paths, request, readPublishers(paths)));
      const { trust } = installed;
      const event = recordEvent(paths, {
        type: 'provider.installed',
        payload: {
          component: installed.name,
          sha256: installed.sha256,
          size: installed.size,
          imports: [...installed.imports],
          publisher: trust.publisher === null ? null : trust.publisher.keyId,
          publisherName: trust.publisher === null ? null : trust.publisher.name,
          allowUnsigned: trust.allowUnsigned,
          replaced: installed.replaced,
        },
      });
      const result = { component: installed.name, path: installed.path, sha256: installed.sha256, size: installed.size, imports: installed.imports, exports: installed.exports, publisher: trust.publisher, allowUnsigned: trust.allowUnsigned, seq: event.seq };
      if (opts.json === true) return printJson(result);
      process.stdout.write(
        `installed ${installed.name} (${installed.size} bytes; recorded as event ${event.seq})\n` +
          `  sha256   ${installed.sha256}\n  imports  ${installed.imports.join(', ') || 'none'}\n  exports  ${installed.exports.join(', ')}\n` +
          `  signed   ${trust.publisher === null ? 'no (installed with --allow-unsigned)' : `${trust.publisher.name} (${trust.publisher.keyId})`}\n` +
          `a manifest runs it with:\n  [provider]\n  component = ${JSON.stringify(installed.name)}\n  sha256 = "${installed.sha256}"\n  effects = ["http"]   # the effect kinds it plans\n`,
      );
    });
  example(add, 'lattice providers add ./jira.wasm', 'lattice providers add ./my-tool.wasm --allow-unsigned');

  const inspect = providers
    .command('inspect <id>')
    .description('show one component (by built-in name, file name or sha256 prefix): hash, signer, imports, exports, WIT')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: HomeOptions) => {
      const paths = resolveHome(opts.home);
      const found = findComponent(listComponents(paths, providerLocations().builtinDir, readPublishers(paths)), id);
      const description = await describeComponent(readFileSync(found.path));
      const view = { ...found, ...description, actions: actionsByComponent(paths, opts.config)(found) };
      if (opts.json === true) return printJson(view);
      process.stdout.write(
        `${view.name} (${view.source}, ${view.size} bytes)\n  path     ${view.path}\n  sha256   ${view.sha256}\n  signed   ${signer(view.signature)}` +
          `${view.signature.state === 'invalid' ? ` — ${view.signature.reason}` : ''}\n  imports  ${view.imports.join(', ') || 'none'}\n` +
          `  exports  ${view.exports.join(', ')}\n  actions  ${view.actions.join(', ') || '-'}\n\n${view.wit.trimEnd().split('\n').map(printable).join('\n')}\n`,
      );
    });
  example(inspect, 'lattice providers inspect http.template', 'lattice providers inspect jira.wasm --json');
}

function signer(status: SignatureStatus): string {
  return status.state === 'signed' ? status.publisher : status.state === 'unsigned' ? 'unsigned' : 'INVALID';
}

/** The ids of the actions whose manifests run a component (a home component only when the pin matches). */
function actionsByComponent(paths: HomePaths, configFile: string | undefined): (entry: ComponentEntry) => string[] {
  const { config } = loadConfig(paths, configFile);
  const manifests = ActionRegistry.load(paths, registryOptions(config, paths))
    .list()
    .map((a) => a.manifest);
  const runs = (m: ActionManifest, e: ComponentEntry) => ('builtin' in m.provider ? e.source === 'builtin' && m.provider.builtin === e.name : e.source === 'home' && m.provider.component === e.name && m.provider.sha256 === e.sha256);
  return (entry) => manifests.filter((m) => runs(m, entry)).map((m) => m.id);
}
