/**
 * `npm run bench:binary` (builds dist/lattice first): how long the single binary takes to start, next to the Node
 * it embeds doing nothing, measured in the same run. Commands, timed by wall clock from spawn to exit, each with the
 * same minimal environment (HOME, PATH) and an asset cache that is already written:
 *
 *   A  <embedded node> -e 0          the Node 24 the binary is made of, starting and exiting (the baseline)
 *   B  dist/lattice --version        the binary's startup: Node, the SEA blob, the code-cached bundle
 *   C  dist/lattice whoami --help    a command's module loaded (the lazily evaluated part of the bundle)
 *   D  node dist/lattice.mjs --version   the npm-installed CLI on the machine's Node, for reference
 *
 * The goal is B ≤ 1.3 × A (medians); it is printed as met or not met and never fails the run. Each command runs
 * 3 times to warm up, then RUNS rounds (default 40, `--runs N`) run A–D one after another so the machine's noise
 * hits all alike. A non-zero exit is a correctness failure (exit 1). The last line of stdout is the numbers as JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CorrectnessFailure, ms, percentile, printJsonLine, runBenchmark } from './bench-common.ts';

const ROOT = join(import.meta.dirname, '..');
const BINARY = join(ROOT, 'dist', 'lattice');
const GOAL = 1.3;

interface Command {
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
}

function embeddedNode(): string {
  const dir = join(ROOT, '.build', 'binary');
  const found = existsSync(dir) ? readdirSync(dir).filter((d) => /^node-[a-z]+-[a-z0-9]+-24\./.test(d) && existsSync(join(dir, d, 'bin', 'node'))) : [];
  // The newest 24.x there is the one build-binary.mjs embeds (the older one only lends its headers to the addon).
  const newest = found.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
  if (newest === undefined) throw new CorrectnessFailure(`no embedded Node under ${dir}; run \`npm run build:binary\``);
  return join(dir, newest, 'bin', 'node');
}

function runsFromArgs(argv: readonly string[]): number {
  const i = argv.indexOf('--runs');
  const runs = i === -1 ? 40 : Number(argv[i + 1]);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new RangeError(`--runs needs a positive integer, got ${argv[i + 1]}`);
  return runs;
}

function main(): void {
  if (!existsSync(BINARY)) throw new CorrectnessFailure(`${BINARY} is missing; run \`npm run build:binary\``);
  const runs = runsFromArgs(process.argv.slice(2));
  const home = mkdtempSync(join(tmpdir(), 'lattice-bench-binary-'));
  const env = { HOME: home, PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const node = embeddedNode();
  const commands: Command[] = [
    { label: 'A  embedded node -e 0', file: node, args: ['-e', '0'] },
    { label: 'B  lattice --version', file: BINARY, args: ['--version'] },
    { label: 'C  lattice whoami --help', file: BINARY, args: ['whoami', '--help'] },
    { label: 'D  node lattice.mjs --version', file: process.execPath, args: [join(ROOT, 'dist', 'lattice.mjs'), '--version'] },
  ];
  const once = (c: Command): number => {
    const start = performance.now();
    const r = spawnSync(c.file, c.args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const took = performance.now() - start;
    if (r.status !== 0) throw new CorrectnessFailure(`${c.label} exited ${r.status ?? r.signal}: ${r.stderr.toString()}`);
    return took;
  };
  try {
    for (let i = 0; i < 3; i++) for (const c of commands) once(c);
    const samples: number[][] = commands.map(() => []);
    for (let round = 0; round < runs; round++) commands.forEach((c, i) => samples[i]?.push(once(c)));
    const medians = samples.map((s) => percentile([...s].sort((a, b) => a - b), 0.5));
    const p90s = samples.map((s) => percentile([...s].sort((a, b) => a - b), 0.9));
    process.stdout.write(`startup, ${runs} rounds (median, p90):\n`);
    commands.forEach((c, i) => process.stdout.write(`  ${c.label.padEnd(34)} ${ms(medians[i] ?? NaN).padStart(9)} ${ms(p90s[i] ?? NaN).padStart(9)}\n`));
    const [a = NaN, b = NaN, c = NaN, d = NaN] = medians;
    const ratio = b / a;
    process.stdout.write(`lattice --version / node -e 0 = ${ratio.toFixed(2)}× (goal ≤ ${GOAL}×: ${ratio <= GOAL ? 'met' : 'NOT met'})\n`);
    printJsonLine({ bench: 'binary', runs, nodeMs: a, versionMs: b, commandHelpMs: c, bundleVersionMs: d, ratio, goal: GOAL, met: ratio <= GOAL });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

await runBenchmark('bench:binary', () => Promise.resolve().then(main));
