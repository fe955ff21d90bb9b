/**
 * `lattice policy show` prints the policy set a gate on this home decides with (the files in <home>/policies, or
 * the built-in preset defaults while there are none) and its hash; `lattice policy check FILE…` validates files
 * against a Cedar schema generated from the registered actions, so a policy that names a missing action or params
 * field is refused before it is ever applied. Exit 1 when check finds an error.
 */
import type { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ActionRegistry, registryOptions } from '../../core/actions/registry.ts';
import { loadConfig } from '../../core/config/config.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import { resolveHome } from '../../core/home.ts';
import { checkPolicies } from '../../core/policy/check.ts';
import { Ledger } from '../../core/ledger/ledger.ts';
import { KeyRing } from '../../core/keys/keyring.ts';
import { parseCases, runCase } from '../../core/policy/cases.ts';
import { PolicyEngine, formatProblems } from '../../core/policy/engine.ts';
import { PolicyStore, activePolicies } from '../../core/policy/store.ts';
import { providerRunner } from '../../providers/index.ts';
import { providerLocations } from '../providers.ts';
import { admin } from '../gate-client.ts';
import { policyHash, type PolicyFile } from '../../core/policy/hash.ts';
import { actionSchema } from '../../core/policy/schema.ts';
import { HOME_HELP, example, readInput } from '../common.ts';
import { EXIT, printJson, printable } from '../output.ts';

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
      const { config } = loadConfig(home, opts.config);
      const registry = ActionRegistry.load(home, registryOptions(config, home));
      const schema = actionSchema(registry);
      const files = readFiles(paths);
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

  const apply = policy
    .command('apply <files...>')
    .description('make these Cedar files the whole active policy set (validated first; a running gate uses it at once)')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file (when no gate is running)')
    .option('--json', 'print as JSON')
    .action(async (paths: string[], opts: { home?: string; config?: string; json?: boolean }) => {
      const files = readFiles(paths);
      let result: { hash: string; version: string; through: 'gate' | 'home' };
      try {
        result = { ...(await admin<{ hash: string; version: string }>(opts.home, 'POST', '/api/v1/policies', { files })), through: 'gate' };
      } catch (error) {
        if (!(error instanceof LatticeError) || error.code !== 'GATE_NOT_RUNNING') throw error;
        result = { ...(await applyWithoutGate(opts.home, opts.config, files)), through: 'home' };
      }
      if (opts.json === true) return printJson({ ...result, files: files.map((f) => f.name) });
      process.stdout.write(`applied ${files.length} file(s) as policy version ${result.version}, hash ${result.hash}${result.through === 'gate' ? '; the gate uses it now' : ''}\n`);
    });
  example(apply, 'lattice policy apply ./policies/*.cedar');

  const test = policy
    .command('test <dir>')
    .description('run the table-driven cases in DIR/*.toml against DIR/*.cedar (or the active set): exit 1 when one fails')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file')
    .option('--json', 'print as JSON')
    .action(async (dir: string, opts: { home?: string; config?: string; json?: boolean }) => {
      const home = resolveHome(opts.home);
      const { config } = loadConfig(home, opts.config);
      const registry = ActionRegistry.load(home, registryOptions(config, home));
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (error) {
        throw new LatticeError('IO_ERROR', `cannot read ${dir}: ${describeError(error)}`, { cause: error });
      }
      const own = readFiles(names.filter((n) => n.endsWith('.cedar')).map((n) => join(dir, n)));
      const policies = own.length > 0 ? own : activePolicies(home).files;
      const engine = PolicyEngine.load(policies);
      const cases = names.filter((n) => n.endsWith('.toml')).flatMap((n) => parseCases(readFiles([join(dir, n)])[0]?.text ?? '', join(dir, n)));
      if (cases.length === 0) throw new LatticeError('INVALID_ARGUMENT', `${dir} has no *.toml files with [[case]] entries`);
      const results = [];
      // Providers plan each case exactly as the gate would; without an initialised home nothing is cached.
      const runner = providerRunner(providerLocations(), { paths: home, keys: existsSync(home.keyset) ? KeyRing.open(home, { create: false }) : null, config });
      try {
        for (const c of cases) results.push(await runCase(c, engine, registry, runner.resolve));
      } finally {
        await runner.close();
      }
      const failed = results.filter((r) => !r.passed);
      process.exitCode = failed.length > 0 ? EXIT.failed : EXIT.ok;
      if (opts.json === true) return printJson({ passed: results.length - failed.length, failed: failed.length, policyHash: engine.hash, results });
      for (const r of results) {
        const got = `${r.decision}${r.denialReason === null ? '' : ` ${r.denialReason}`}${r.policies.length > 0 ? ` by ${r.policies.join(', ')}` : ''}`;
        process.stdout.write(`${r.passed ? 'ok  ' : 'FAIL'} ${printable(r.case.name)}${r.passed ? '' : `: expected ${r.case.expect}${r.case.denialReason === undefined ? '' : ` ${r.case.denialReason}`}, got ${printable(got)}`}\n`);
      }
      process.stdout.write(`${results.length - failed.length} passed, ${failed.length} failed (policy hash ${engine.hash.slice(0, 16)}…)\n`);
    });
  example(test, 'lattice policy test ./policy-tests');
}

function readFiles(paths: readonly string[]): PolicyFile[] {
  return paths.map((path) => ({ name: basename(path), text: readInput(path) }));
}

/** Applies through the home's ledger directly when no gate is running (the next `lattice up` uses the set). */
async function applyWithoutGate(home: string | undefined, configFile: string | undefined, files: PolicyFile[]): Promise<{ hash: string; version: string }> {
  const paths = resolveHome(home);
  const registry = ActionRegistry.load(paths, registryOptions(loadConfig(paths, configFile).config, paths));
  const errors = checkPolicies(files, actionSchema(registry)).filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new LatticeError('POLICY_INVALID', `policy refused:\n${formatProblems(errors)}`);
  const ledger = Ledger.open(paths);
  try {
    const store = await PolicyStore.open(ledger, paths);
    return await store.apply(files, 'operator');
  } finally {
    ledger.close();
  }
}
