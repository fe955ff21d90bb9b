/**
 * `lattice doctor`: pre-flight checks, one line each (pass, warn or fail) with the fix for anything short of a pass.
 * Exit 0 when all pass, 1 when any fails, 2 when there are warnings only. It only reads: nothing is created,
 * started or repaired.
 */
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ActionRegistry, registryOptions } from '../../core/actions/registry.ts';
import { loadConfig } from '../../core/config/config.ts';
import { describeError } from '../../core/errors.ts';
import { type HomePaths, resolveHome, runPaths } from '../../core/home.ts';
import { readKeySet } from '../../core/keys/keyset.ts';
import { verifyDatabase } from '../../core/ledger/verify-parallel.ts';
import { checkPolicies } from '../../core/policy/check.ts';
import { actionSchema } from '../../core/policy/schema.ts';
import { activePolicies } from '../../core/policy/store.ts';
import { shippedFile } from '../../core/runtime.ts';
import { masterKeyPath } from '../../core/secrets/master-key.ts';
import { HOME_HELP, example } from '../common.ts';
import { callSocket } from '../gate-client.ts';
import { printJson, printable } from '../output.ts';
import { verifyWorkerUrl } from './verify.ts';

export interface Check {
  readonly id: string;
  readonly status: 'pass' | 'warn' | 'fail';
  readonly detail: string;
  readonly fix: string | null;
}

const pass = (id: string, detail: string): Check => ({ id, status: 'pass', detail, fix: null });
const warn = (id: string, detail: string, fix: string): Check => ({ id, status: 'warn', detail, fix });
const fail = (id: string, detail: string, fix: string): Check => ({ id, status: 'fail', detail, fix });

/** The sandbox helper's `--probe`: Landlock ABI, user namespaces, seccomp, clock synchronisation. */
function kernelChecks(helper: string): Check[] {
  if (!existsSync(helper)) return [fail('kernel', `the sandbox helper is missing (${helper})`, 'rebuild with `npm run build`')];
  const r = spawnSync(helper, ['--probe'], { encoding: 'utf8', timeout: 10_000 });
  const line = (name: string) => new RegExp(`^${name} (.*)$`, 'm').exec(r.stdout)?.[1] ?? null;
  if (r.status !== 0) return [fail('kernel', `the sandbox helper could not probe the kernel: ${printable((r.stderr || String(r.error ?? r.status)).trim())}`, 'rebuild with `npm run build`')];
  const abi = Number(line('landlock') ?? '0');
  const userns = line('userns') ?? 'unknown';
  const seccomp = line('seccomp') ?? 'unknown';
  return [
    userns === 'ok'
      ? pass('kernel.userns', 'this user may create user namespaces')
      : fail('kernel.userns', `user namespaces are not available to this user (${userns}); lattice sandbox refuses to start`, 'allow them: `sysctl kernel.unprivileged_userns_clone=1` and `user.max_user_namespaces > 0` (and, on Ubuntu, `kernel.apparmor_restrict_unprivileged_userns=0`)'),
    abi >= 1
      ? pass('kernel.landlock', `Landlock ABI ${abi}`)
      : fail('kernel.landlock', 'Landlock is not available; lattice sandbox refuses to start without --allow-degraded', 'use a kernel ≥ 5.13 with Landlock enabled (`lsm=landlock,…` on the kernel command line)'),
    seccomp === 'ok' ? pass('kernel.seccomp', 'seccomp filters are available') : fail('kernel.seccomp', `seccomp is not available (${seccomp})`, 'use a kernel built with CONFIG_SECCOMP_FILTER'),
    line('clock') === 'synced'
      ? pass('time', 'the kernel reports the clock synchronised')
      : warn('time', 'the kernel does not report the clock synchronised; DPoP proofs are checked against it (±60 s by default)', 'run an NTP client (systemd-timesyncd, chrony) or check the host that keeps this clock'),
  ];
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function homeChecks(paths: HomePaths, configFile: string | undefined): Check[] {
  if (!existsSync(paths.root)) return [warn('home', `${paths.root} does not exist yet`, 'run `lattice up` (or `lattice init`)')];
  const checks: Check[] = [];
  checks.push((mode(paths.root) & 0o077) === 0 ? pass('home', `${paths.root} is private (0${mode(paths.root).toString(8)})`) : fail('home', `${paths.root} is open to others (0${mode(paths.root).toString(8)})`, `chmod 700 ${paths.root}`));
  try {
    const set = readKeySet(paths.keyset);
    const pem = `${paths.keys}/${set.activeKeyId}.pem`;
    if (!existsSync(pem)) checks.push(fail('keys', `the active signing key ${set.activeKeyId} has no private key file`, `restore ${pem} from a backup, or rotate with \`lattice keys rotate\``));
    else if ((mode(pem) & 0o077) !== 0) checks.push(fail('keys', `${pem} is readable by others`, `chmod 600 ${pem}`));
    else checks.push(pass('keys', `signing key ${set.activeKeyId} present and private`));
  } catch (error) {
    checks.push(existsSync(paths.keyset) ? fail('keys', describeError(error), 'restore keys/keyset.json from a backup') : warn('keys', 'no key set yet', 'run `lattice up` (or `lattice init`)'));
  }
  const master = masterKeyPath(paths);
  if (!existsSync(master)) checks.push(pass('master_key', 'no master key yet: no secret stored (the first `lattice secrets set` makes it, 0600)'));
  else if (!lstatSync(master).isFile() || (mode(master) & 0o077) !== 0) checks.push(fail('master_key', `${master} is not a private regular file`, `chmod 600 ${master}`));
  else checks.push(pass('master_key', 'master key present and private'));
  try {
    const { config } = loadConfig(paths, configFile);
    const registry = ActionRegistry.load(paths, registryOptions(config, paths));
    const { files, source } = activePolicies(paths);
    const problems = checkPolicies(files, actionSchema(registry));
    const errors = problems.filter((p) => p.severity === 'error');
    if (errors.length > 0) checks.push(fail('policies', `${errors.length} error(s), first: ${printable(errors[0]?.message ?? '')}`, '`lattice policy check` shows them all; fix and `lattice policy apply`'));
    else if (problems.length > 0) checks.push(warn('policies', `${problems.length} warning(s), first: ${printable(problems[0]?.message ?? '')}`, '`lattice policy check` shows them all'));
    else checks.push(pass('policies', `${files.length} policy file(s) (${source}) parse and match the ${registry.list().length} registered actions`));
  } catch (error) {
    checks.push(fail('policies', `the configuration, actions or policies cannot be loaded: ${printable(describeError(error))}`, 'fix the file it names'));
  }
  return checks;
}

async function ledgerCheck(paths: HomePaths): Promise<Check> {
  if (!existsSync(paths.db)) return warn('ledger', 'no ledger yet', 'run `lattice up` (or `lattice init`)');
  try {
    const report = await verifyDatabase(paths.db, readKeySet(paths.keyset), { workers: Math.min(8, availableParallelism()), workerUrl: verifyWorkerUrl() });
    return report.ok
      ? pass('ledger', `${report.events} events verify (hash chain, checkpoints, receipts)`)
      : fail('ledger', `TAMPERED at seq ${report.failure?.seq ?? '?'} (${report.failure?.code ?? ''})`, 'keep the file for investigation; `lattice verify` shows the break');
  } catch (error) {
    return fail('ledger', printable(describeError(error)), '`lattice verify` for details');
  }
}

async function gateChecks(paths: HomePaths): Promise<Check[]> {
  const run = runPaths(paths);
  if (!existsSync(run.adminSocket)) return [warn('gate', 'no gate is running', 'start one with `lattice up --detach`')];
  const checks: Check[] = [];
  try {
    const reply = await callSocket<{ ok?: boolean }>(run.adminSocket, 'GET', '/api/v1/health', undefined, 5_000);
    checks.push(reply.status === 200 ? pass('gate', `answering on ${run.adminSocket}`) : fail('gate', `the gate answered ${reply.status}`, 'see its log (~/.lattice/gate.log) and restart it'));
  } catch (error) {
    checks.push(warn('gate', printable(describeError(error)), 'start one with `lattice up --detach`'));
  }
  const loose = [run.dir, run.adminSocket, run.gateSocket].filter((p) => existsSync(p) && (mode(p) & (p === run.dir ? 0o077 : 0o177)) !== 0);
  checks.push(loose.length === 0 ? pass('sockets', 'run directory 0700, sockets 0600') : fail('sockets', `open to others: ${loose.join(', ')}`, 'stop the gate (`lattice down`) and start it again; it recreates them privately'));
  return checks;
}

export function registerDoctor(program: Command): void {
  const cmd = program
    .command('doctor')
    .description('pre-flight checks of this machine and home, each pass/warn/fail with a fix (exit 0 all pass, 1 a failure, 2 warnings only)')
    .option('--home <dir>', HOME_HELP)
    .option('--config <file>', 'the configuration to check (default: <home>/lattice.toml)')
    .option('--json', 'print the checks as JSON')
    .action(async (opts: { home?: string; config?: string; json?: boolean }) => {
      const paths = resolveHome(opts.home);
      const helper = shippedFile('lattice-sandbox');
      const checks = [...kernelChecks(helper), ...homeChecks(paths, opts.config), await ledgerCheck(paths), ...(await gateChecks(paths))];
      const failed = checks.some((c) => c.status === 'fail');
      process.exitCode = failed ? 1 : checks.some((c) => c.status === 'warn') ? 2 : 0;
      if (opts.json === true) return printJson({ ok: !failed, checks });
      for (const c of checks) process.stdout.write(`${c.status.padEnd(4)}  ${c.id.padEnd(16)} ${printable(c.detail)}${c.fix === null ? '' : `\n      fix: ${printable(c.fix)}`}\n`);
    });
  example(cmd, 'lattice doctor', 'lattice doctor --json');
}
