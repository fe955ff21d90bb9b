/**
 * `lattice policy show` prints the policy set a gate on this home decides with (the files in <home>/policies, or
 * the built-in preset defaults while there are none) and its hash; `lattice policy check FILE…` validates files
 * against a Cedar schema generated from the registered actions, so a policy that names a missing action or params
 * field is refused before it is ever applied. Exit 1 when check finds an error.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ActionRegistry, registryOptions } from '../../core/actions/registry.ts';
import { loadConfig } from '../../core/config/config.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import { resolveHome, type HomePaths } from '../../core/home.ts';
import { checkPolicies } from '../../core/policy/check.ts';
import { DEFAULT_POLICIES } from '../../core/policy/defaults.ts';
import { policyHash, type PolicyFile } from '../../core/policy/hash.ts';
import { generateSchema } from '../../core/policy/schema.ts';
import { HOME_HELP, example } from '../common.ts';
import { EXIT, printJson, printable } from '../output.ts';

/** The active set: the home's policy files, or the built-in defaults while the home has none. */
export function activePolicies(paths: HomePaths): { files: PolicyFile[]; source: 'home' | 'defaults' } {
  const dir = join(paths.root, 'policies');
  const names = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cedar')).sort() : [];
  if (names.length === 0) return { files: [...DEFAULT_POLICIES], source: 'defaults' };
  return { files: names.map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') })), source: 'home' };
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('the Cedar policies that decide which actions agents may run');

  const show = policy
    .command('show')
    .description('print the active policy set and its hash')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action((opts: { home?: string; json?: boolean }) => {
      const { files, source } = activePolicies(resolveHome(opts.home));
      const hash = policyHash(files);
      if (opts.json === true) return printJson({ source, hash, files });
      process.stdout.write(`# ${source === 'defaults' ? 'built-in preset defaults' : 'policies in the home'}, hash ${hash}\n`);
      for (const file of files) process.stdout.write(`\n// file: ${printable(file.name)}\n${file.text}`);
    });
  example(show, 'lattice policy show', 'lattice policy show --json');

  const check = policy
    .command('check <files...>')
    .description('validate Cedar policy files against the registered actions (exit 1 when one has an error)')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action((paths: string[], opts: { home?: string; config?: string; json?: boolean }) => {
      const home = resolveHome(opts.home);
      const registry = ActionRegistry.load(home, registryOptions(loadConfig(home, opts.config).config, home));
      const schema = generateSchema(registry.list().map(({ manifest }) => ({ id: manifest.id, paramsJsonSchema: manifest.requestSchema })));
      const files = paths.map((path) => {
        try {
          return { name: basename(path), text: readFileSync(path, 'utf8') };
        } catch (error) {
          throw new LatticeError('IO_ERROR', `cannot read ${path}: ${describeError(error)}`, { cause: error });
        }
      });
      const problems = checkPolicies(files, schema);
      const errors = problems.filter((p) => p.severity === 'error');
      process.exitCode = errors.length > 0 ? EXIT.failed : EXIT.ok;
      if (opts.json === true) return printJson({ ok: errors.length === 0, hash: policyHash(files), problems });
      for (const p of problems) {
        const where = [p.file, p.line, p.column].filter((x) => x !== null).join(':');
        process.stdout.write(`${p.severity}: ${where === '' ? '' : `${printable(where)}: `}${p.policy === null ? '' : `${printable(p.policy)}: `}${printable(p.message)}\n`);
      }
      process.stdout.write(errors.length === 0 ? `ok: ${files.length} file(s), ${problems.length} warning(s), hash ${policyHash(files)}\n` : `${errors.length} error(s)\n`);
    });
  example(check, 'lattice policy check ./policies/*.cedar');
}
