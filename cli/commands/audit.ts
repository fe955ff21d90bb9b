/** `lattice audit`: read the ledger newest first, with filters and stable cursor pagination. */
import { Option, type Command } from 'commander';
import { resolveHome } from '../../core/home.ts';
import { openReadOnly } from '../../core/ledger/database.ts';
import { DECISIONS, type Decision, type LedgerEvent } from '../../core/ledger/event.ts';
import { MAX_PAGE, queryEvents, type AuditFilter } from '../../core/ledger/query.ts';
import { parseTimeArg } from '../../core/time.ts';
import { HOME_HELP, example, positiveInt } from '../common.ts';
import { csvRow, printJson, printable, table } from '../output.ts';

interface AuditOptions {
  home?: string;
  db?: string;
  limit: number;
  cursor?: string;
  type?: string;
  action?: string;
  principal?: string;
  decision?: Decision;
  since?: string;
  until?: string;
  format: 'table' | 'json' | 'jsonl' | 'csv';
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const cmd = program
    .command('audit')
    .description('list ledger events, newest first')
    .addOption(new Option('--home <dir>', HOME_HELP).conflicts('db'))
    .option('--db <file>', 'a ledger database file')
    .option('--limit <n>', `events per page (1–${MAX_PAGE})`, positiveInt('--limit', MAX_PAGE), 50)
    .option('--cursor <c>', 'continue after the page that printed this cursor')
    .option('--type <type>', 'only events of this type (e.g. keys.rotated)')
    .option('--action <id>', 'only events about this action')
    .option('--principal <id>', 'only events by this principal')
    .addOption(new Option('--decision <d>', 'only events with this decision').choices(DECISIONS))
    .option('--since <time>', 'only events at or after this time (ISO 8601, or an age like 15m, 2h, 7d)')
    .option('--until <time>', 'only events before this time (ISO 8601, or an age)')
    .addOption(new Option('--format <f>', 'output format').choices(['table', 'json', 'jsonl', 'csv']).default('table'))
    .option('--json', 'same as --format json')
    .action((opts: AuditOptions) => {
      const filter: AuditFilter = {
        ...(opts.type !== undefined && { type: opts.type }),
        ...(opts.action !== undefined && { action: opts.action }),
        ...(opts.principal !== undefined && { principal: opts.principal }),
        ...(opts.decision !== undefined && { decision: opts.decision }),
        ...(opts.since !== undefined && { since: parseTimeArg(opts.since, '--since') }),
        ...(opts.until !== undefined && { until: parseTimeArg(opts.until, '--until') }),
      };
      const db = openReadOnly(opts.db ?? resolveHome(opts.home).db);
      let page;
      try {
        page = queryEvents(db, filter, { limit: opts.limit, ...(opts.cursor !== undefined && { cursor: opts.cursor }) });
      } finally {
        db.close();
      }
      const format = opts.json === true ? 'json' : opts.format;
      const events = page.events.map(present);
      switch (format) {
        case 'json':
          return printJson({ events, nextCursor: page.nextCursor });
        case 'jsonl':
          for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
          break;
        case 'csv':
          process.stdout.write(`${csvRow(['seq', 'ts', 'type', 'principal', 'action', 'decision', 'payload', 'hash'])}\n`);
          for (const e of page.events) process.stdout.write(`${csvRow([e.seq, e.ts, e.type, e.principal, e.action, e.decision, e.payload, e.hash])}\n`);
          break;
        case 'table': {
          const rows = page.events.map((e) => [e.seq, e.ts, e.type, e.principal, e.action, e.decision, e.payload]);
          process.stdout.write(`${table(['SEQ', 'TIME', 'TYPE', 'PRINCIPAL', 'ACTION', 'DECISION', 'PAYLOAD'], rows)}\n`);
          break;
        }
      }
      // The cursor goes to stderr for line formats, so stdout stays pure data.
      if (page.nextCursor !== null) process.stderr.write(`more: lattice audit --cursor ${printable(page.nextCursor)}\n`);
    });
  example(
    cmd,
    'lattice audit --limit 20',
    'lattice audit --type keys.rotated --since 7d --format jsonl',
    'lattice audit --decision deny --format csv > denials.csv',
  );
}

function present(e: LedgerEvent): Omit<LedgerEvent, 'payload'> & { payload: unknown } {
  return { ...e, payload: JSON.parse(e.payload) as unknown };
}
