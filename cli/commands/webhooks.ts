/** `lattice webhooks retry NAME`: send a webhook's dead messages again (`lattice status` shows them). */
import type { Command } from 'commander';
import { HOME_HELP, example } from '../common.ts';
import { admin } from '../gate-client.ts';
import { printJson } from '../output.ts';

export function registerWebhooks(program: Command): void {
  const webhooks = program.command('webhooks').description('webhook delivery (each webhook\'s state is in `lattice status`)');
  const retry = webhooks
    .command('retry <name>')
    .description('send every dead message of a webhook again, with a fresh set of attempts (recorded as webhook.retried)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { home?: string; json?: boolean }) => {
      const result = await admin<{ name: string; retried: number }>(opts.home, 'POST', `/api/v1/admin/webhooks/${encodeURIComponent(name)}/retry`);
      if (opts.json === true) return printJson(result);
      process.stdout.write(result.retried === 0 ? `${name} has no dead messages\n` : `${result.retried} dead messages of ${name} are pending again\n`);
    });
  example(retry, 'lattice webhooks retry alerts');
}
