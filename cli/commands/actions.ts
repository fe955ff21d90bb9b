/**
 * `lattice actions [ID]` lists or shows the actions a gate on this home offers (read from the built-ins and
 * `<home>/actions`, so it works without a running gate); `lattice actions add FILE` validates a manifest and
 * installs it: through the running gate (registered at once, recorded in the ledger), or as a file the next
 * `lattice up` registers.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ActionRegistry, describeAction, registryOptions } from '../../core/actions/registry.ts';
import { parseManifest } from '../../core/actions/manifest.ts';
import { loadConfig } from '../../core/config/config.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import { resolveHome } from '../../core/home.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

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
    .description('validate a manifest and install it; a running gate registers it at once')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action(async (file: string, opts: { home?: string; config?: string; json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new LatticeError('IO_ERROR', `cannot read ${file}: ${describeError(error)}`, { cause: error });
      }
      const manifest = parseManifest(text, file); // refuse before anything is installed
      const paths = resolveHome(opts.home);
      let registered: boolean;
      try {
        await admin(opts.home, 'POST', '/api/v1/actions', { manifest: text });
        registered = true;
      } catch (error) {
        if (!(error instanceof LatticeError) || error.code !== 'GATE_NOT_RUNNING') throw error;
        ActionRegistry.load(paths, registryOptions(loadConfig(paths, opts.config).config, paths)).add(text, file);
        registered = false;
      }
      const result = { id: manifest.id, version: manifest.version, digest: manifest.digest, registered };
      if (opts.json === true) return printJson(result);
      process.stdout.write(`installed ${manifest.id} ${manifest.version} (digest ${manifest.digest.slice(0, 16)}…)${registered ? '; the gate registered it' : '; it is registered when the gate starts'}\n`);
    });
  example(add, 'lattice actions add ./jira.issue.create.toml');
}
