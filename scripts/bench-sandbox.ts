/**
 * `npm run bench:sandbox` (builds the CLI first): what `lattice sandbox` costs to start and stop, next to what
 * bubblewrap costs for the same namespaces, measured in the same run on the same machine. Each case is timed by
 * wall clock from spawn to exit:
 *
 *   A   node dist/lattice.mjs --version                                 the cost of starting the lattice CLI at all
 *   B   node dist/lattice.mjs sandbox --workspace <tmp> -- /bin/true    a full sandbox session against a running gate
 *   C   bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true  the bubblewrap baseline
 *   D   dist/lattice-sandbox with a precomputed plan and the go given    the isolation alone (namespaces, tmpfs root,
 *       at once, running /bin/true                                       Landlock, seccomp), without the session
 *   E0  node scripts/bench-sandbox-floor.mjs --start-only                a Node script's start
 *   E   node scripts/bench-sandbox-floor.mjs                             the same script running D through Node's
 *                                                                         spawn, pipes and child handling
 *   A1, B1  A and B with the single binary (dist/lattice), when it has been built
 *
 * The sandbox's own overhead is B − A, taken per round and then the median (the CLI's start-up is paid by every
 * lattice command, sandboxed or not); the goal is that it stays within bwrap's cost plus 5 ms. B − A holds the
 * session: loading its modules, the profile and plan, two round trips to the gate each ending in durable commits
 * (the identity's enrollment with the start record, sent while the helper builds the sandbox; the exit record with
 * the revocation), the proxies. D is what the kernel work costs, comparable to C. E − E0 is the floor under any
 * lattice whose session runs in Node: the helper run by a Node process that does nothing else. The goal is printed
 * as met or not met and never fails the run.
 *
 * Each case runs 3 times to warm up, then RUNS rounds (default 30, `--runs N`) run every case one after another,
 * so whatever else the machine does hits all alike; the table gives the median and p90 of each.
 *
 * Setup, all under os.tmpdir() and removed at the end: a LATTICE_HOME with a gate started by
 * `lattice up --detach --yes` (stopped by `lattice down` in a finally block) and an empty workspace for B. When
 * bwrap is missing and we are root, it is installed with apt-get; when it cannot be had (or cannot run here), C is
 * skipped with the reason and the rest is still printed.
 *
 * A case that exits non-zero is a correctness failure: its stderr is printed and the benchmark exits 1, since a
 * broken sandbox must not produce a number. The last line of stdout is the same numbers as JSON (see bench-common.ts).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hostDirs } from '../sandbox/host-dirs.ts';
import { computePlan, serializePlan } from '../sandbox/plan.ts';
import { loadProfile } from '../sandbox/profile.ts';
import { CorrectnessFailure, ms, percentile, printJsonLine, runBenchmark } from './bench-common.ts';

const LATTICE = join(import.meta.dirname, '..', 'dist', 'lattice.mjs');
const WARMUP = 3;
const DEFAULT_RUNS = 30;
const GOAL_MARGIN_MS = 5;
const BWRAP_ARGS = ['--unshare-all', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', 'true'];

interface Command {
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env: NodeJS.ProcessEnv;
  /** Descriptors 3, 4, … for the child, opened afresh for each run and closed after it. */
  readonly fds?: () => number[];
}

interface Summary {
  readonly median: number;
  readonly p90: number;
}

/** `--runs N` from the command line, else DEFAULT_RUNS. */
function runsFromArgs(argv: readonly string[]): number {
  const at = argv.indexOf('--runs');
  if (at === -1) return DEFAULT_RUNS;
  const raw = argv[at + 1] ?? '';
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`--runs must be a positive integer, got ${raw === '' ? 'nothing' : raw}`);
  return value;
}

/** This environment without what would change how a lattice child starts (as bench-gate.ts does), plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env['NODE_OPTIONS'];
  delete env['NODE_EXTRA_CA_CERTS'];
  if (extra['LATTICE_HOME'] === undefined) delete env['LATTICE_HOME'];
  return env;
}

/** Runs `command` once and returns its wall time in ms; a non-zero exit throws a CorrectnessFailure with its stderr. */
function timeOnce(command: Command): number {
  const fds = command.fds?.() ?? [];
  const start = performance.now();
  const result = spawnSync(command.file, command.args, { cwd: command.cwd, env: command.env, stdio: ['ignore', 'ignore', 'pipe', ...fds] });
  const elapsed = performance.now() - start;
  for (const fd of fds) closeSync(fd);
  if (result.error !== undefined) throw new CorrectnessFailure(`${command.label} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal === null ? `exit ${result.status}` : `signal ${result.signal}`;
    throw new CorrectnessFailure(`${command.label} ended with ${how}; its stderr:\n${result.stderr.toString('utf8')}`);
  }
  return elapsed;
}

/** ms() from bench-common.ts, also for a negative difference. */
const signedMs = (v: number) => (v < 0 ? `−${ms(-v)}` : ms(v));

function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: percentile(sorted, 0.5), p90: percentile(sorted, 0.9) };
}

/** Runs a setup command (not timed); returns its stderr, or null when it exited 0. */
function setupStep(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string | null {
  const result = spawnSync(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.error !== undefined) return result.error.message;
  if (result.status === 0) return null;
  const how = result.signal === null ? `exit ${result.status}` : `signal ${result.signal}`;
  return `${how}: ${result.stderr.toString('utf8').trim()}`;
}

/** Why C cannot be measured here, or null when bwrap is on PATH (installed now if need be) and runs. */
function bwrapUnavailable(): string | null {
  if (setupStep('bwrap', ['--version']) !== null) {
    if (process.getuid?.() !== 0) return 'bwrap is not on PATH and we are not root, so it was not installed';
    process.stdout.write('bwrap is not on PATH; installing bubblewrap with apt-get …\n');
    const install = ['install', '-y', '-qq', 'bubblewrap'];
    let failed = setupStep('apt-get', install);
    if (failed !== null) {
      const update = setupStep('apt-get', ['update', '-qq']);
      if (update !== null) return `apt-get update -qq failed (${update})`;
      failed = setupStep('apt-get', install);
    }
    if (failed !== null) return `apt-get install -y -qq bubblewrap failed (${failed})`;
    if (setupStep('bwrap', ['--version']) !== null) return 'bubblewrap was installed but bwrap is still not on PATH';
  }
  const trial = setupStep('bwrap', BWRAP_ARGS);
  if (trial !== null) return `bwrap ${BWRAP_ARGS.join(' ')} fails on this machine (${trial})`;
  return null;
}

/** WARMUP rounds, then `runs` rounds; each round runs every command once, in order. Wall times in ms. */
function measure(commands: readonly Command[], runs: number): number[][] {
  for (let i = 0; i < WARMUP; i++) for (const command of commands) timeOnce(command);
  const samples = commands.map((): number[] => []);
  for (let i = 0; i < runs; i++) commands.forEach((command, c) => samples[c]?.push(timeOnce(command)));
  return samples;
}

function printTable(rows: readonly { label: string; command: string; summary: Summary }[], runs: number): void {
  process.stdout.write(`sandbox start-up (wall time, ${runs} interleaved rounds after ${WARMUP} warm-up rounds)\n`);
  process.stdout.write(`  ${'case'.padEnd(74)} ${'median'.padStart(9)} ${'p90'.padStart(9)}\n`);
  for (const row of rows) {
    process.stdout.write(`  ${`${row.label.padEnd(3)} ${row.command}`.padEnd(74)} ${ms(row.summary.median).padStart(9)} ${ms(row.summary.p90).padStart(9)}\n`);
  }
}

const HELPER = join(import.meta.dirname, '..', 'dist', 'lattice-sandbox');
const FLOOR = join(import.meta.dirname, 'bench-sandbox-floor.mjs');
const BINARY = join(import.meta.dirname, '..', 'dist', 'lattice');

/** The default profile's plan for /bin/true in `workspace`, written where D reads it (fd 3). */
function helperPlan(home: string, workspace: string): string {
  const runtimeDir = join(home, 'bench-runtime');
  mkdirSync(runtimeDir, { recursive: true });
  writeFileSync(join(runtimeDir, 'gate.sock'), '');
  const plan = computePlan({
    profile: loadProfile(home, 'default'), workspace, home: join(home, 'bench-home'), homeInside: join(home, 'bench-home'), runtimeDir,
    gateSocket: join(runtimeDir, 'gate.sock'), hostDirs: hostDirs(home, {}), roMounts: [], rwMounts: [], passEnv: [], network: true, routes: [], allowDegraded: false,
    argv: ['/bin/true'], hostEnv: {}, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, repos: { gitdirs: ['.git'], gitfiles: [], checkouts: [] }, configured: [],
  });
  mkdirSync(join(home, 'bench-home'), { recursive: true });
  const file = join(home, 'bench-plan.bin');
  writeFileSync(file, serializePlan(plan));
  return file;
}

/** Setup, the measurements and the report; the gate is stopped and the temp dirs removed whatever happens. */
function main(): void {
  const runs = runsFromArgs(process.argv.slice(2));
  const home = mkdtempSync(join(tmpdir(), 'lattice-bench-sandbox-home-'));
  const workspace = mkdtempSync(join(tmpdir(), 'lattice-bench-sandbox-ws-'));
  const latticeEnv = childEnv({ LATTICE_HOME: home });
  let gateStarted = false;
  try {
    const bwrapSkipped = bwrapUnavailable();
    const up = setupStep(process.execPath, [LATTICE, 'up', '--detach', '--yes', '--home', home], latticeEnv);
    if (up !== null) throw new Error(`lattice up --detach failed (${up})`);
    gateStarted = true;

    const planFile = helperPlan(home, workspace);
    const goFile = join(home, 'bench-go');
    writeFileSync(goFile, 'g'); // the go on fd 5, given at once (no session to wait for)
    const sandboxArgs = ['sandbox', '--workspace', workspace, '--', '/bin/true'];
    const cases: (Command & { readonly key: string; readonly command: string })[] = [
      { key: 'A', label: 'A', command: 'node dist/lattice.mjs --version', file: process.execPath, args: [LATTICE, '--version'], env: childEnv() },
      { key: 'B', label: 'B', command: 'node dist/lattice.mjs sandbox --workspace <tmp> -- /bin/true', file: process.execPath, args: [LATTICE, ...sandboxArgs], cwd: workspace, env: latticeEnv },
      ...(bwrapSkipped === null ? [{ key: 'C', label: 'C', command: `bwrap ${BWRAP_ARGS.join(' ')}`, file: 'bwrap', args: BWRAP_ARGS, env: process.env }] : []),
      { key: 'D', label: 'D', command: 'dist/lattice-sandbox <plan> (/bin/true; isolation only)', file: HELPER, args: [], env: {}, fds: () => [openSync(planFile, 'r'), openSync('/dev/null', 'w'), openSync(goFile, 'r')] },
      { key: 'E0', label: 'E0', command: 'node scripts/bench-sandbox-floor.mjs --start-only', file: process.execPath, args: [FLOOR, HELPER, planFile, '--start-only'], env: childEnv() },
      { key: 'E', label: 'E', command: 'node scripts/bench-sandbox-floor.mjs (Node runs D)', file: process.execPath, args: [FLOOR, HELPER, planFile], env: childEnv() },
      ...(existsSync(BINARY) ? [
        { key: 'A1', label: 'A1', command: 'dist/lattice --version (the single binary)', file: BINARY, args: ['--version'], env: childEnv() },
        { key: 'B1', label: 'B1', command: 'dist/lattice sandbox --workspace <tmp> -- /bin/true', file: BINARY, args: sandboxArgs, cwd: workspace, env: latticeEnv },
      ] : []),
    ];
    const samples = new Map(measure(cases, runs).map((v, i) => [cases[i]?.key ?? '', v]));
    const summary = (key: string) => (samples.has(key) ? summarize(samples.get(key) ?? []) : undefined);
    // Per round, X − Y: both ran back to back, so whatever slowed the machine in that round slowed both; the
    // median of these differences is steadier than the difference of the medians on a noisy machine.
    const paired = (x: string, y: string) => (samples.has(x) && samples.has(y) ? summarize((samples.get(x) ?? []).map((v, i) => v - (samples.get(y)?.[i] ?? 0))) : undefined);
    printTable(cases.map((c) => ({ label: c.label, command: c.command, summary: summarize(samples.get(c.key) ?? []) })), runs);
    if (bwrapSkipped !== null) process.stdout.write(`  C skipped: ${bwrapSkipped}\n`);
    if (!existsSync(BINARY)) process.stdout.write('  A1/B1 skipped: no dist/lattice (npm run build:binary builds it)\n');

    const overhead = paired('B', 'A');
    const floor = paired('E', 'E0');
    const binary = paired('B1', 'A1');
    const c = summary('C');
    const d = summary('D');
    if (overhead === undefined || floor === undefined || d === undefined) throw new Error('no samples for A, B, D or E');
    process.stdout.write(`  sandbox overhead (median of per-round B − A): ${signedMs(overhead.median)} (p90 ${signedMs(overhead.p90)})\n`);
    if (binary !== undefined) process.stdout.write(`  the single binary's (B1 − A1): ${signedMs(binary.median)} (p90 ${signedMs(binary.p90)})\n`);
    process.stdout.write(`  Node's floor (E − E0: the helper run by a Node process that does nothing else): ${signedMs(floor.median)}\n`);
    const goal = c === undefined ? undefined : c.median + GOAL_MARGIN_MS;
    if (goal === undefined) {
      process.stdout.write(`  goal (overhead ≤ bwrap + ${GOAL_MARGIN_MS} ms): not checked, C was skipped\n`);
    } else {
      process.stdout.write(`  goal (overhead ≤ bwrap + ${GOAL_MARGIN_MS} ms = ${ms(goal)}): ${overhead.median <= goal ? 'met' : 'not met'}\n`);
      process.stdout.write(`  of which isolation (D, median): ${ms(d.median)} (${d.median <= goal ? 'within' : 'beyond'} bwrap + ${GOAL_MARGIN_MS} ms); Node's floor is ${floor.median <= goal ? 'within' : 'beyond'} it\n`);
      process.stdout.write(`  and the session (B − A − D: module loading, profile and plan, enrollment + start record overlapped with the isolation, exit record + revocation): ${signedMs(overhead.median - d.median)}\n`);
    }
    printJsonLine({
      bench: 'sandbox', runs, cliStartMs: summary('A'), sandboxMs: summary('B'), bwrapMs: c ?? null, helperMs: d, bwrapSkipped,
      floorMs: floor, binaryStartMs: summary('A1') ?? null, binarySandboxMs: summary('B1') ?? null, binaryOverheadMs: binary ?? null,
      overheadMs: overhead.median, goalMet: goal === undefined ? null : overhead.median <= goal,
    });
  } finally {
    const down = gateStarted ? setupStep(process.execPath, [LATTICE, 'down', '--home', home], latticeEnv) : null;
    if (down !== null) process.stderr.write(`bench:sandbox: lattice down failed (${down})\n`);
    rmSync(workspace, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
}

// spawnSync makes main synchronous; runBenchmark takes a promise (a CorrectnessFailure in main becomes its rejection).
await runBenchmark('bench:sandbox', () => Promise.resolve().then(main));
