/**
 * `lattice exec ACTION` acts as the agent of a credential file: makes the DPoP proofs, asks the gate to run the
 * action and, when the request is held for approval, waits for the decision (unless --no-wait); interrupted while
 * it waits (Ctrl-C, SIGTERM), it withdraws the request, since nobody would be left to receive its result.
 * Exit codes: 0 executed, 3 denied, 4 pending (--no-wait), 5 approval expired, 1 anything else.
 * `lattice can-i ACTION` asks the same question with nothing run and nothing recorded (exit 0 allowed, 3 denied,
 * 4 needs approval). `lattice withdraw APPROVAL` takes back a held request of the agent's own (exit 0 withdrawn).
 */
import type { Command } from 'commander';
import { LatticeError } from '../../core/errors.ts';
import type { Lattice } from '../../sdk/lattice.ts';
import type { ActionResult } from '../../sdk/types.ts';
import { CREDENTIAL_HELP, agentClient, asGate } from '../agent.ts';
import { example, readInput } from '../common.ts';
import { EXIT, printJson, printable } from '../output.ts';

export const EXEC_EXIT = { executed: 0, denied: 3, pending: 4, expired: 5 } as const;

interface ExecOptions {
  params?: string;
  credential?: string;
  eventId?: string;
  wait: boolean;
  json?: boolean;
}

/** `--params '{"a":1}'` or `--params @file.json`; an object or nothing. */
function readParams(value: string | undefined): Record<string, unknown> {
  if (value === undefined) return {};
  const text = value.startsWith('@') ? readInput(value.slice(1)) : value;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LatticeError('INVALID_ARGUMENT', '--params must be a JSON object (or @FILE holding one)');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new LatticeError('INVALID_ARGUMENT', '--params must be a JSON object');
  return parsed as Record<string, unknown>;
}

function exitFor(result: ActionResult): number {
  switch (result.status) {
    case 'executed':
      return EXEC_EXIT.executed;
    case 'denied':
      return EXEC_EXIT.denied;
    case 'requested':
      return EXEC_EXIT.pending;
    case 'expired':
      return EXEC_EXIT.expired;
    case 'cancelled':
    case 'withdrawn':
    case 'failed':
    case 'interrupted':
      return EXIT.failed;
  }
}

function describe(result: ActionResult): string {
  switch (result.status) {
    case 'executed':
      return `executed (receipt ${result.receiptId}, ledger event ${result.auditEventId})\n${JSON.stringify(result.output, null, 2)}\n`;
    case 'denied': {
      const conditions = result.conditions.map((c) => `  ${printable(JSON.stringify(c))}`).join('\n');
      return `denied: ${result.denialReason}${result.policy === null ? '' : ` by ${printable(result.policy)}`}\n  ${printable(result.message)}\n${conditions === '' ? '' : `${conditions}\n`}`;
    }
    case 'requested':
      return `held for approval ${result.approvalId} until ${result.timeoutAt}\n  plan sha256 ${result.planSha256}\n  an operator runs: lattice approvals approve ${result.approvalId} --plan-sha256 ${result.planSha256}\n`;
    case 'expired':
    case 'cancelled':
    case 'withdrawn':
      return `${result.status}: ${printable(result.message)}\n`;
    case 'failed':
      return `failed: ${result.error.code}: ${printable(result.error.message)} (receipt ${result.receiptId})\n`;
    case 'interrupted':
      return `interrupted: ${printable(result.message)}\n`;
  }
}

export function registerExec(program: Command): void {
  const exec = program
    .command('exec <action>')
    .description('run an action as the agent of a credential file (waits for approval when the request is held)')
    .option('--params <json>', 'the params as JSON, or @FILE')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--event-id <id>', 'idempotency key: a repeat returns the first answer and runs nothing twice')
    .option('--no-wait', 'return at once when the request is held (exit 4)')
    .option('--json', 'print the gate answer as JSON')
    .action(async (action: string, opts: ExecOptions) => {
      const params = readParams(opts.params);
      const client = agentClient(opts.credential);
      let result = await asGate(() => client.execute(action, { params, ...(opts.eventId !== undefined && { eventId: opts.eventId }) }));
      if (result.status === 'requested' && opts.wait) {
        const held = result;
        result = await waitOrWithdraw(client, held, () => opts.json === true || process.stderr.write(describe(held)));
      }
      await client.close();
      process.exitCode = exitFor(result);
      if (opts.json === true) return printJson(result);
      (result.status === 'executed' ? process.stdout : process.stderr).write(describe(result));
    });
  example(exec, `lattice exec echo --params '{"message":"hi"}'`, 'lattice exec fs.write --params @write.json --event-id build-42 --no-wait --json');

  const canI = program
    .command('can-i <action>')
    .description('ask whether an action would run now (nothing is run or recorded): exit 0 yes, 4 needs approval, 3 no')
    .option('--params <json>', 'the params as JSON, or @FILE')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--json', 'print the decision as JSON')
    .action(async (action: string, opts: { params?: string; credential?: string; json?: boolean }) => {
      const params = readParams(opts.params);
      const client = agentClient(opts.credential);
      const answer = await asGate(() => client.canI(action, { params }));
      await client.close();
      process.exitCode = answer.decision === 'allow' ? EXEC_EXIT.executed : answer.decision === 'hold' ? EXEC_EXIT.pending : EXEC_EXIT.denied;
      if (opts.json === true) return printJson(answer);
      const by = answer.policy === null ? '' : ` (${printable(answer.policy)})`;
      const text = answer.decision === 'allow' ? `allowed${by}` : answer.decision === 'hold' ? `needs approval${by}` : `denied: ${answer.denialReason ?? ''}${by}\n  ${printable(answer.message ?? '')}`;
      process.stdout.write(`${text}\n`);
    });
  example(canI, `lattice can-i fs.write --params '{"path":"notes.md","content":"x"}'`);

  const withdraw = program
    .command('withdraw <approval-id>')
    .description("withdraw a held request of this agent's own so that it never runs (exit 0 withdrawn; 1 if it was decided first)")
    .option('--reason <text>', 'why, recorded in the ledger for the reviewers')
    .option('--credential <file>', CREDENTIAL_HELP)
    .option('--json', 'print the gate answer as JSON')
    .action(async (approvalId: string, opts: { reason?: string; credential?: string; json?: boolean }) => {
      const client = agentClient(opts.credential);
      const result = await asGate(() => client.withdraw(approvalId, opts.reason === undefined ? {} : { reason: opts.reason }));
      await client.close();
      process.exitCode = result.status === 'withdrawn' ? EXIT.ok : EXIT.failed; // decided first: it was not withdrawn
      if (opts.json === true) return printJson(result);
      (result.status === 'withdrawn' ? process.stdout : process.stderr).write(describe(result));
    });
  example(withdraw, 'lattice withdraw apr_… --reason "no longer needed"');
}

/**
 * Waits for a held request's decision; interrupted meanwhile (Ctrl-C, SIGTERM), withdraws it and answers that.
 * `announce` says the request is held, once the interruption is caught: whoever reads it may interrupt at once.
 */
async function waitOrWithdraw(client: Lattice, held: Extract<ActionResult, { status: 'requested' }>, announce: () => void): Promise<ActionResult> {
  const interrupted = new AbortController();
  const stop = () => interrupted.abort();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  announce();
  try {
    return await asGate(() => client.waitForDecision(held, { timeoutMs: 24 * 3_600_000, signal: interrupted.signal }));
  } catch (error) {
    if (!interrupted.signal.aborted) throw error;
    return await asGate(() => client.withdraw(held.approvalId, { reason: 'lattice exec was interrupted while it waited' }));
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}
