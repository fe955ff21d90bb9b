/**
 * `lattice approvals list|show|approve|deny`: the reviewer's side of held requests, on the admin socket.
 * `show` prints the plan exactly as it will run and its SHA-256; `approve` needs that hash back (--plan-sha256) and
 * the gate refuses any other; the plan then runs as approved and the command prints the result.
 */
import type { Command } from 'commander';
import type { ApprovalView } from '../../core/pipeline/approvals.ts';
import { HOME_HELP, example } from '../common.ts';
import { LatticeError, type ErrorCode } from '../../core/errors.ts';
import { resolveHome, runPaths } from '../../core/home.ts';
import { admin, callSocket } from '../gate-client.ts';
import { printJson, printable, printableLines, table } from '../output.ts';

type Answer = { status: string; receiptId?: string; output?: unknown; denialReason?: string; message?: string; error?: { code: string; message: string } };

function printAnswer(answer: Answer): void {
  const detail = answer.status === 'executed' ? `receipt ${answer.receiptId ?? '-'}` : answer.status === 'failed' ? `${answer.error?.code ?? ''}: ${answer.error?.message ?? ''}` : (answer.message ?? '');
  process.stdout.write(`${answer.status}${answer.denialReason === undefined ? '' : ` (${answer.denialReason})`}: ${printable(detail)}\n`);
  if (answer.status === 'executed') process.stdout.write(`${JSON.stringify(answer.output, null, 2)}\n`);
}

/** A decision's answer: the request's outcome (executed, denied, failed …) is a result, whatever its HTTP status. */
async function decide(home: string | undefined, id: string, verb: 'approve' | 'deny', body: unknown): Promise<Answer> {
  const reply = await callSocket<Answer & { error?: { code: string; message: string } }>(runPaths(resolveHome(home)).adminSocket, 'POST', `/api/v1/approvals/${encodeURIComponent(id)}/${verb}`, body, 120_000);
  if (typeof reply.body.status === 'string') return reply.body;
  throw new LatticeError((reply.body.error?.code ?? 'INTERNAL') as ErrorCode, reply.body.error?.message ?? `the gate answered ${reply.status}`);
}

export function registerApprovals(program: Command): void {
  const approvals = program.command('approvals').description('review and decide requests held for a human');

  const list = approvals
    .command('list')
    .description('list held requests (or --state all|executed|denied|expired|cancelled|…)')
    .option('--state <state>', 'which requests to list', 'held')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (opts: { state: string; home?: string; json?: boolean }) => {
      const { approvals: rows } = await admin<{ approvals: ApprovalView[] }>(opts.home, 'GET', `/api/v1/approvals?state=${encodeURIComponent(opts.state)}`);
      if (opts.json === true) return printJson({ approvals: rows });
      if (rows.length === 0) return void process.stdout.write(`no ${opts.state === 'held' ? 'pending' : opts.state} approvals\n`);
      process.stdout.write(`${table(['APPROVAL', 'STATE', 'ACTION', 'PEER', 'EXPIRES', 'PLAN SHA-256'], rows.map((a) => [a.approvalId, a.state, a.action, a.peerId, a.expiresAt, a.planSha256]), 72)}\n`);
    });
  example(list, 'lattice approvals list', 'lattice approvals list --state all --json');

  const show = approvals
    .command('show <id>')
    .description('print a held request: who asked, the plan exactly as it will run, and its SHA-256')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { home?: string; json?: boolean }) => {
      const a = await admin<ApprovalView & { answer: Answer | null }>(opts.home, 'GET', `/api/v1/approvals/${encodeURIComponent(id)}`);
      if (opts.json === true) return printJson(a);
      process.stdout.write(
        `${a.approvalId} (${a.state})  ${a.action} for ${a.peerId} (workspace ${printable(a.workspace)}, preset ${a.preset})\n` +
          `  held by   ${a.policies.map(printable).join(', ') || '-'}${a.reason === null ? '' : `: ${printable(a.reason)}`}\n` +
          `  created   ${a.createdAt}, expires ${a.expiresAt ?? '-'}\n  request   sha256 ${a.requestHash}\n` +
          `  plan      sha256 ${a.planSha256 ?? '-'}\n  ${printableLines(JSON.stringify(a.plan, null, 2))}\n`,
      );
      if (a.state === 'held') process.stdout.write(`\napprove with: lattice approvals approve ${a.approvalId} --plan-sha256 ${a.planSha256 ?? ''}\n`);
    });
  example(show, 'lattice approvals show apr_…');

  const approve = approvals
    .command('approve <id>')
    .description('approve a held request; it runs at once, exactly as planned (exit 0 when it executed)')
    .requiredOption('--plan-sha256 <hex>', 'the SHA-256 of the plan you reviewed (from `lattice approvals show`)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { planSha256: string; home?: string; json?: boolean }) => {
      const answer = await decide(opts.home, id, 'approve', { planSha256: opts.planSha256 });
      process.exitCode = answer.status === 'executed' ? 0 : 1;
      if (opts.json === true) return printJson(answer);
      printAnswer(answer);
    });
  example(approve, 'lattice approvals approve apr_… --plan-sha256 3f2a…');

  const deny = approvals
    .command('deny <id>')
    .description('deny a held request; the agent is told DENIED_BY_REVIEWER with your reason')
    .requiredOption('--reason <text>', 'why (returned to the agent)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { reason: string; home?: string; json?: boolean }) => {
      const answer = await decide(opts.home, id, 'deny', { reason: opts.reason });
      if (opts.json === true) return printJson(answer);
      printAnswer(answer);
    });
  example(deny, `lattice approvals deny apr_… --reason "not on a Friday"`);
}
