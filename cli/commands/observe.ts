/** `lattice posture` and `lattice events`: the operator's view of the posture score and of events as they commit. */
import type { Command } from 'commander';
import { request, type IncomingMessage } from 'node:http';
import { LatticeError, type ErrorCode } from '../../core/errors.ts';
import { resolveHome, runPaths } from '../../core/home.ts';
import { parseEvents } from '../../sdk/events.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin, notRunning } from '../gate-client.ts';
import { printJson, printable, table } from '../output.ts';

interface Posture {
  score: number;
  components: { id: string; title: string; score: number; max: number; status: string; detail: string; fix: string | null }[];
}

export function registerObserve(program: Command): void {
  const posture = program
    .command('posture')
    .description('the posture score (0–100) of the running gate, component by component, with what to fix (exit 1 below 100)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the score as JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const p = await admin<Posture>(opts.home, 'GET', '/api/v1/posture');
      process.exitCode = p.score === 100 ? 0 : 1;
      if (opts.json === true) return printJson(p);
      process.stdout.write(`posture ${p.score}/100\n${table(['COMPONENT', 'SCORE', 'STATUS', 'DETAIL'], p.components.map((c) => [c.id, `${c.score}/${c.max}`, c.status, c.detail]))}\n`);
      for (const c of p.components) if (c.fix !== null) process.stdout.write(`fix ${c.id}: ${printable(c.fix)}\n`);
    });
  example(posture, 'lattice posture', 'lattice posture --json');

  const events = program
    .command('events')
    .description('follow events as the gate commits them (Ctrl-C stops); --since-seq replays from the ledger first')
    .option('--events <types>', 'comma-separated types, e.g. action.denied,approval.requested (default: all)')
    .option('--agent <peerId>', "only this agent's events")
    .option('--since-seq <seq>', 'start after this ledger seq instead of now')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'one JSON object per line')
    .action(async (opts: { events?: string; agent?: string; sinceSeq?: string; home?: string; json?: boolean }) => {
      if (opts.sinceSeq !== undefined && !/^\d{1,15}$/.test(opts.sinceSeq)) throw new LatticeError('INVALID_ARGUMENT', '--since-seq must be a ledger seq');
      const query = new URLSearchParams();
      if (opts.events !== undefined) query.set('events', opts.events);
      if (opts.agent !== undefined) query.set('agent', opts.agent);
      const path = `/api/v1/events${query.size === 0 ? '' : `?${query.toString()}`}`;
      const socketPath = runPaths(resolveHome(opts.home)).adminSocket;
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request({ socketPath, path, method: 'GET', agent: false, headers: opts.sinceSeq === undefined ? {} : { 'last-event-id': opts.sinceSeq } }, resolve);
        req.on('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? notRunning(socketPath) : error));
        req.end();
      });
      if (res.statusCode !== 200) {
        let text = '';
        for await (const chunk of res) text += String(chunk);
        const error = (JSON.parse(text) as { error?: { code: string; message: string } }).error;
        throw new LatticeError((error?.code ?? 'INTERNAL') as ErrorCode, error?.message ?? `the gate answered ${res.statusCode}`);
      }
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => res.destroy());
      try {
        for await (const e of parseEvents(res)) {
          if (opts.json === true) process.stdout.write(`${JSON.stringify(e)}\n`);
          else process.stdout.write(`${e.seq}  ${e.ts}  ${e.type.padEnd(22)} ${printable(e.principal ?? '-')}  ${printable(e.action ?? '-')}  ${printable(JSON.stringify(e.payload)).slice(0, 160)}\n`);
        }
      } catch (error) {
        if (!res.destroyed) throw error; // Ctrl-C ends the stream: not an error
      }
    });
  example(events, 'lattice events', 'lattice events --events action.denied,anomaly.detected --json', 'lattice events --since-seq 1200 --agent peer_…');
}
