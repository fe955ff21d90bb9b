/** `lattice up`, `lattice down`, `lattice status`: run the gate, stop it, and ask how it is. */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../core/config/config.ts';
import { LatticeError } from '../../core/errors.ts';
import { ensureHome, type HomePaths, resolveHome, runPaths } from '../../core/home.ts';
import type { GateStatus } from '../../core/gate/admin-routes.ts';
import { selfCommand } from '../../core/runtime.ts';
import { HOME_HELP, example } from '../common.ts';
import { admin, callSocket } from '../gate-client.ts';
import { EXIT, printJson, table } from '../output.ts';
import { VERSION } from '../version.ts';
import { runWizard, wantsWizard } from '../wizard.ts';

interface UpOptions {
  home?: string;
  config?: string;
  detach?: boolean;
  yes?: boolean;
  listen?: string;
  json?: boolean;
}

export function registerGate(program: Command): void {
  const up = program
    .command('up')
    .description('start the gate: agents on run/gate.sock, the operator on run/admin.sock')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'configuration file (default: <home>/lattice.toml if present, else built-in defaults)')
    .option('--detach', 'run in the background (log: <home>/gate.log) and return once the gate answers')
    .option('--yes', 'never prompt; take the defaults')
    .option('--listen <host:port>', 'also listen on this loopback TCP address (non-loopback needs [tls] in the config)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: UpOptions) => {
      let paths = resolveHome(opts.home);
      let importKeys: readonly string[] = [];
      if (wantsWizard(paths, opts)) ({ paths, importKeys } = await runWizard(paths));
      const { config, file } = loadConfig(paths, opts.config); // validated before anything starts
      if (opts.detach === true) {
        await detach(opts, paths.root);
        return importSecrets(paths, importKeys);
      }
      // The gate itself (Cedar, the providers, the effects) loads only here: `status` and `down` do not need it.
      const [{ startGate }, { componentProviders }, { HostEffects }, { providerLocations }, { verifyWorkerUrl }] = await Promise.all([
        import('../../core/gate/gate.ts'),
        import('../../providers/index.ts'),
        import('../../providers/effects/index.ts'),
        import('../providers.ts'),
        import('./verify.ts'),
      ]);
      const gate = await startGate({
        paths,
        config,
        configFile: file,
        version: VERSION,
        providers: componentProviders(providerLocations()),
        effects: new HostEffects(),
        verifyWorkerUrl: verifyWorkerUrl(),
        ...(opts.listen !== undefined && { listen: opts.listen }),
      });
      const stop = (signal: string) => void gate.stop(`signal ${signal}`);
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => stop(signal));
      const info = { pid: gate.pid, home: paths.root, sockets: { gate: gate.run.gateSocket, admin: gate.run.adminSocket }, listen: gate.tcp, config: file };
      await importSecrets(paths, importKeys);
      if (opts.json === true) printJson(info);
      else process.stderr.write(`lattice gate ${VERSION} running (pid ${gate.pid})\n  agents    ${gate.run.gateSocket}\n  operator  ${gate.run.adminSocket}\n${gate.tcp === null ? '' : `  tcp       ${gate.tcp.host}:${gate.tcp.port}\n`}stop with Ctrl-C or \`lattice down\`\n`);
      await gate.stopped;
    });
  example(up, 'lattice up', 'lattice up --detach --yes', 'lattice up --listen 127.0.0.1:7443');

  const down = program
    .command('down')
    .description('stop the gate cleanly (it writes a final signed checkpoint)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the result as JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const run = runPaths(resolveHome(opts.home));
      const pid = readPid(run.pidFile);
      await callSocket(run.adminSocket, 'POST', '/api/v1/admin/shutdown');
      // The gate removes its pid file only after its final checkpoint: that, not the process, marks a clean stop.
      await waitUntil(() => !existsSync(run.pidFile), 15_000, `the gate did not stop within 15 s; see ${join(resolveHome(opts.home).root, 'gate.log')}`);
      if (opts.json === true) return printJson({ stopped: true, pid });
      process.stdout.write(`gate stopped (pid ${pid ?? 'unknown'})\n`);
    });
  example(down, 'lattice down');

  const status = program
    .command('status')
    .description('pid, version, sockets, ledger head, counts and the health of each part (exit 1 when not running)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'print the status as JSON')
    .action(async (opts: { home?: string; json?: boolean }) => {
      const run = runPaths(resolveHome(opts.home));
      let reply;
      try {
        reply = await callSocket<GateStatus>(run.adminSocket, 'GET', '/api/v1/admin/status');
      } catch (error) {
        if (!(error instanceof LatticeError) || error.code !== 'GATE_NOT_RUNNING') throw error;
        process.exitCode = EXIT.failed;
        if (opts.json === true) return printJson({ running: false, message: error.message });
        process.stdout.write(`${error.message}\n`);
        return;
      }
      const s = reply.body;
      if (opts.json === true) return printJson({ running: true, ...s });
      const rows = Object.entries(s.health).map(([part, h]) => [part, h.ok ? 'ok' : 'FAIL', h.detail]);
      process.stdout.write(
        `gate ${s.version} running, pid ${s.pid}, since ${s.startedAt}\n` +
          `  agents    ${s.sockets.gate}\n  operator  ${s.sockets.admin}\n${s.listen === null ? '' : `  tcp       ${s.listen}\n`}` +
          `  ledger    head ${s.ledger.head.seq}, last checkpoint ${s.ledger.lastCheckpoint?.seq ?? '-'}\n` +
          `  peers     ${s.counts.peers}   leases ${s.counts.leases}   pending approvals ${s.counts.pendingApprovals}\n\n${table(['PART', 'STATE', 'DETAIL'], rows, 64)}\n` +
          webhookTables(s.webhooks),
      );
    });
  example(status, 'lattice status', 'lattice status --json');
}

/** Per webhook: its messages by state and what is failing it; then each one's newest dead letters. */
function webhookTables(webhooks: GateStatus['webhooks']): string {
  if (webhooks.length === 0) return '';
  const rows = webhooks.map((w) => [w.name, w.origin, w.format, w.pending, w.delivered, w.dead, w.lastError === null ? null : `seq ${w.lastError.seq}: ${w.lastError.error}`]);
  let text = `\n${table(['WEBHOOK', 'ORIGIN', 'FORMAT', 'PENDING', 'DELIVERED', 'DEAD', 'LAST ERROR'], rows, 64)}\n`;
  for (const w of webhooks.filter((x) => x.deadLetters.length > 0)) {
    text += `\ndead letters of ${w.name} (newest ${w.deadLetters.length} of ${w.dead}; send them again with \`lattice webhooks retry ${w.name}\`)\n`;
    text += `${table(['SEQ', 'MESSAGE', 'ATTEMPTS', 'LAST ERROR'], w.deadLetters.map((d) => [d.seq, d.messageId, d.attempts, d.lastError]), 80)}\n`;
  }
  return text;
}

/** Starts `lattice up` again in the background, without --detach, and waits until its admin socket answers. */
async function detach(opts: UpOptions, home: string): Promise<void> {
  ensureHome(resolveHome(home));
  const run = runPaths(resolveHome(home));
  const running = await gatePid(run.adminSocket);
  if (running !== null) throw new LatticeError('GATE_ALREADY_RUNNING', `a gate is already running for ${home} (pid ${running}); stop it with \`lattice down\``);
  const log = join(home, 'gate.log');
  const fd = openSync(log, 'a', 0o600);
  const args = ['up', '--home', home, '--yes', ...(opts.config === undefined ? [] : ['--config', opts.config]), ...(opts.listen === undefined ? [] : ['--listen', opts.listen])];
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  delete env['NODE_EXTRA_CA_CERTS'];
  const [command = process.execPath, ...prefix] = selfCommand();
  const child = spawn(command, [...process.execArgv, ...prefix, ...args], { detached: true, stdio: ['ignore', fd, fd], env });
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? 1));
  child.unref();
  await waitUntil(
    async () => {
      if (exited !== null) {
        const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
        throw new LatticeError('GATE_START_FAILED', `the gate exited (status ${exited}) before it was ready; ${log} says:\n${tail}`);
      }
      // Ready means this child answers: a gate started by someone else in the meantime is not it.
      return (await gatePid(run.adminSocket)) === child.pid;
    },
    15_000,
    `the gate did not answer within 15 s; see ${log}`,
  );
  const info = { pid: child.pid ?? null, home, sockets: { gate: run.gateSocket, admin: run.adminSocket }, log };
  if (opts.json === true) return printJson(info);
  process.stdout.write(`gate running in the background (pid ${child.pid ?? '?'})\n  agents    ${run.gateSocket}\n  operator  ${run.adminSocket}\n  log       ${log}\nstop with \`lattice down\`\n`);
}

/** The pid of the gate answering on the admin socket, or null when none answers. */
async function gatePid(adminSocket: string): Promise<number | null> {
  try {
    const reply = await callSocket<GateStatus>(adminSocket, 'GET', '/api/v1/admin/status', undefined, 1000);
    return reply.status === 200 ? reply.body.pid : null;
  } catch (error) {
    if (error instanceof LatticeError && (error.code === 'GATE_NOT_RUNNING' || error.code === 'GATE_UNREACHABLE')) return null;
    throw error;
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null; // no pid file: the shutdown request below still decides whether a gate is running
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new LatticeError('GATE_UNREACHABLE', message);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Keys chosen in the first-run setup, stored through the running gate (recorded as secret.set, name only). */
async function importSecrets(paths: HomePaths, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const value = process.env[name] ?? '';
    if (value === '') continue;
    await admin(paths.root, 'POST', `/api/v1/secrets/${encodeURIComponent(name)}`, { value });
    process.stderr.write(`imported ${name} into the secrets store (use it as secret:${name})\n`);
  }
}
