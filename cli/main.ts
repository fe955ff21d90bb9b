/**
 * The `lattice` command line: builds the command tree and maps every failure to an exit code (cli/output.ts).
 * Commands are thin: parse flags, call core, print a table or JSON.
 */
import { Command, CommanderError } from 'commander';
import { LatticeError } from '../core/errors.ts';
import { EXIT, reportError } from './output.ts';
import { VERSION } from './version.ts';

type Register = (program: Command) => void;

/**
 * Every top-level command and the module that defines it, in the order help lists them. A run loads only the
 * module of the command it runs, so `lattice exec` or `lattice --version` does not pay for the ledger, Cedar or
 * the schema compiler at start; help, completion and unknown commands load them all. test/cli/main.test.ts checks
 * this table against what each module registers.
 */
export const COMMANDS: readonly (readonly [readonly string[], () => Promise<Register>])[] = [
  [['init'], async () => (await import('./commands/init.ts')).registerInit],
  [['up', 'down', 'status'], async () => (await import('./commands/gate.ts')).registerGate],
  [['enroll', 'whoami', 'peers', 'tokens', 'revoke', 'secrets'], async () => (await import('./commands/identity.ts')).registerIdentity],
  [['actions'], async () => (await import('./commands/actions.ts')).registerActions],
  [['exec', 'can-i', 'withdraw'], async () => (await import('./commands/exec.ts')).registerExec],
  [['policy'], async () => (await import('./commands/policy.ts')).registerPolicy],
  [['approvals'], async () => (await import('./commands/approvals.ts')).registerApprovals],
  [['budgets'], async () => (await import('./commands/budgets.ts')).registerBudgets],
  [['verify'], async () => (await import('./commands/verify.ts')).registerVerify],
  [['export'], async () => (await import('./commands/export.ts')).registerExport],
  [['audit'], async () => (await import('./commands/audit.ts')).registerAudit],
  [['keys'], async () => (await import('./commands/keys.ts')).registerKeys],
  [['publishers'], async () => (await import('./commands/publishers.ts')).registerPublishers],
  [['providers'], async () => (await import('./commands/providers.ts')).registerProviders],
  [['sandbox'], async () => (await import('./commands/sandbox.ts')).registerSandbox],
  [['mcp'], async () => (await import('./commands/mcp.ts')).registerMcp],
  [['posture', 'events'], async () => (await import('./commands/observe.ts')).registerObserve],
  [['doctor'], async () => (await import('./commands/doctor.ts')).registerDoctor],
  [['completion'], async () => (await import('./commands/completion.ts')).registerCompletion],
  [['webhooks'], async () => (await import('./commands/webhooks.ts')).registerWebhooks],
];

/**
 * The command tree: with `only` a command name, just the module defining it (all of them if none does); with
 * `only` null, none (`--version`); without it, all.
 */
export async function buildProgram(only?: string | null): Promise<Command> {
  const program = new Command('lattice')
    .description('A fail-closed boundary between AI agents and their side effects, with a tamper-evident evidence ledger.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    // Options after a subcommand belong to it (`lattice actions add FILE --home X`), not to its parent.
    .enablePositionalOptions()
    .exitOverride();
  const wanted = only === null ? [] : COMMANDS.filter(([names]) => only !== undefined && names.includes(only));
  for (const [, load] of wanted.length > 0 || only === null ? wanted : COMMANDS) (await load())(program);
  for (const cmd of program.commands) applyToTree(cmd);
  return program;
}

/** The top-level command argv runs: null for `--version` alone, undefined (all) for help and completion. */
function commandOf(argv: readonly string[]): string | null | undefined {
  const first = argv.find((arg) => !arg.startsWith('-'));
  if (first === undefined) return argv.some((arg) => arg === '-V' || arg === '--version') ? null : undefined;
  return first === 'help' || first === 'completion' ? undefined : first;
}

function applyToTree(cmd: Command): void {
  cmd.exitOverride().showHelpAfterError('(run with --help for usage)');
  for (const sub of cmd.commands) applyToTree(sub);
}

export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json') || argv.some((arg, i) => arg === '--format' && argv[i + 1] === 'json');
  process.umask(0o077); // anything lattice creates is private to the user unless a primitive says otherwise
  try {
    await (await buildProgram(commandOf(argv))).parseAsync([...argv], { from: 'user' });
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
