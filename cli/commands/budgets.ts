/** `lattice budgets list|set|remove`: operator limits on calls and cost per agent, workspace or preset. */
import type { Command } from 'commander';
import { LatticeError } from '../../core/errors.ts';
import type { Budget, BudgetScope } from '../../core/pipeline/budgets.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin } from '../gate-client.ts';
import { printJson, table } from '../output.ts';

interface SetOptions {
  agent?: string;
  workspace?: string;
  preset?: string;
  calls?: string;
  cost?: string;
  window: string;
  home?: string;
  json?: boolean;
}

function subjectOf(opts: { agent?: string; workspace?: string; preset?: string }): { scope: BudgetScope; subject: string } {
  const given = (['agent', 'workspace', 'preset'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) throw new LatticeError('INVALID_ARGUMENT', 'name exactly one of --agent ID, --workspace ID or --preset NAME');
  const scope = given[0]!;
  return { scope, subject: opts[scope] ?? '' };
}

function number(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new LatticeError('INVALID_ARGUMENT', `${flag} must be a number ≥ 0`);
  return n;
}

export function registerBudgets(program: Command): void {
  const budgets = program.command('budgets').description('limits on how much agents may do per window');

  const list = budgets
    .command('list')
    .description('list the budgets in force (from the configuration and set by an operator)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const { budgets: rows } = await admin<{ budgets: Budget[] }>(opts.home, 'GET', '/api/v1/budgets');
      if (opts.json === true) return printJson({ budgets: rows });
      if (rows.length === 0) return void process.stdout.write('no budgets: agents are limited by policy only\n');
      process.stdout.write(`${table(['SCOPE', 'SUBJECT', 'CALLS', 'COST', 'WINDOW', 'SOURCE'], rows.map((b) => [b.scope, b.subject, b.calls ?? '-', b.cost ?? '-', `${b.windowMs / 1000}s`, b.source]))}\n`);
    });
  example(list, 'lattice budgets list');

  const set = budgets
    .command('set')
    .description('set (or replace) a budget for one agent, workspace or preset')
    .option('--agent <peerId>', 'an enrolled agent')
    .option('--workspace <id>', 'every agent of a workspace')
    .option('--preset <name>', 'every agent of a preset')
    .option('--calls <n>', 'actions per window')
    .option('--cost <n>', 'total declared cost (manifest `cost`) per window')
    .requiredOption('--window <duration>', 'the window, e.g. 1h or 1d')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: SetOptions) => {
      const calls = number(opts.calls, '--calls');
      const cost = number(opts.cost, '--cost');
      if (calls === undefined && cost === undefined) throw new LatticeError('INVALID_ARGUMENT', 'give --calls, --cost or both');
      if (calls !== undefined && !Number.isSafeInteger(calls)) throw new LatticeError('INVALID_ARGUMENT', '--calls must be a whole number');
      const body = { ...subjectOf(opts), window: opts.window, ...(calls !== undefined && { calls }), ...(cost !== undefined && { cost }) };
      const result = await admin<Budget>(opts.home, 'POST', '/api/v1/budgets', body);
      if (opts.json === true) return printJson(result);
      process.stdout.write(`budget set: ${result.scope} ${result.subject}: ${result.calls ?? '∞'} call(s), cost ${result.cost ?? '∞'} per ${result.windowMs / 1000}s\n`);
    });
  example(set, 'lattice budgets set --preset sandboxed --calls 100 --window 1h', 'lattice budgets set --agent peer_… --cost 20 --window 1d');

  const remove = budgets
    .command('remove')
    .description('remove an operator-set budget')
    .option('--agent <peerId>', 'an enrolled agent')
    .option('--workspace <id>', 'a workspace')
    .option('--preset <name>', 'a preset')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { agent?: string; workspace?: string; preset?: string; home?: string; json?: boolean }) => {
      const { scope, subject } = subjectOf(opts);
      const result = await admin<unknown>(opts.home, 'DELETE', `/api/v1/budgets/${scope}/${encodeURIComponent(subject)}`);
      if (opts.json === true) return printJson(result);
      process.stdout.write(`budget removed: ${scope} ${subject}\n`);
    });
  example(remove, 'lattice budgets remove --preset sandboxed');
}
