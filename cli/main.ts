/**
 * The `lattice` command line: builds the command tree and maps every failure to an exit code (cli/output.ts).
 * Commands are thin: parse flags, call core, print a table or JSON.
 */
import { Command, CommanderError } from 'commander';
import { LatticeError } from '../core/errors.ts';
import { registerActions } from './commands/actions.ts';
import { registerApprovals } from './commands/approvals.ts';
import { registerAudit } from './commands/audit.ts';
import { registerBudgets } from './commands/budgets.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerExec } from './commands/exec.ts';
import { registerExport } from './commands/export.ts';
import { registerGate } from './commands/gate.ts';
import { registerIdentity } from './commands/identity.ts';
import { registerInit } from './commands/init.ts';
import { registerKeys } from './commands/keys.ts';
import { registerMcp } from './commands/mcp.ts';
import { registerObserve } from './commands/observe.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerProviders } from './commands/providers.ts';
import { registerPublishers } from './commands/publishers.ts';
import { registerSandbox } from './commands/sandbox.ts';
import { registerVerify } from './commands/verify.ts';
import { registerWebhooks } from './commands/webhooks.ts';
import { EXIT, reportError } from './output.ts';
import { VERSION } from './version.ts';

export function buildProgram(): Command {
  const program = new Command('lattice')
    .description('A fail-closed boundary between AI agents and their side effects, with a tamper-evident evidence ledger.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    // Options after a subcommand belong to it (`lattice actions add FILE --home X`), not to its parent.
    .enablePositionalOptions()
    .exitOverride();
  registerInit(program);
  registerGate(program);
  registerIdentity(program);
  registerActions(program);
  registerExec(program);
  registerPolicy(program);
  registerApprovals(program);
  registerBudgets(program);
  registerVerify(program);
  registerExport(program);
  registerAudit(program);
  registerKeys(program);
  registerPublishers(program);
  registerProviders(program);
  registerSandbox(program);
  registerMcp(program);
  registerObserve(program);
  registerDoctor(program);
  registerCompletion(program);
  registerWebhooks(program);
  for (const cmd of program.commands) applyToTree(cmd);
  return program;
}

function applyToTree(cmd: Command): void {
  cmd.exitOverride().showHelpAfterError('(run with --help for usage)');
  for (const sub of cmd.commands) applyToTree(sub);
}

export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json') || argv.some((arg, i) => arg === '--format' && argv[i + 1] === 'json');
  process.umask(0o077); // anything lattice creates is private to the user unless a primitive says otherwise
  try {
    await buildProgram().parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; every other commander failure is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof LatticeError || error instanceof Error) return reportError(error, json);
    return reportError(new Error(String(error)), json);
  }
}
