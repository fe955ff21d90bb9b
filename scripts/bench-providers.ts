/**
 * `npm run bench:providers`: the warm plan + finish round trip of two built-in provider components through the
 * worker pool, as the gate makes it: `echo` (no effects) and the `github.issue.create` template over
 * `http.template` (its HTTP result stubbed here: nothing leaves the host). Printed beside a baseline measured in
 * the same run: an empty message round trip to a worker thread, the floor any isolated provider pays. Also the
 * cold start of a new pool and the cost of transpiling a component with jco.
 *
 *   BENCH_CALLS   round trips per measurement (default 5000)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { ActionRegistry, registryOptions } from '../core/actions/registry.ts';
import type { ActionManifest } from '../core/actions/manifest.ts';
import { loadConfig } from '../core/config/config.ts';
import { homePaths } from '../core/home.ts';
import type { EffectResult } from '../core/pipeline/effects.ts';
import { providerRunner } from '../providers/index.ts';
import { transpile } from '../providers/runner/transpile.ts';
import { CorrectnessFailure, percentile, positiveEnv, printJsonLine, runBenchmark } from './bench-common.ts';

const CALLS = positiveEnv('BENCH_CALLS', 5000);
const dist = join(import.meta.dirname, '..', 'dist');

function summary(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5) * 1000, p99: percentile(sorted, 0.99) * 1000 };
}

/** p50 and p99 of `once` over CALLS runs, after 500 to warm up. */
async function measure(once: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 500; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await once();
    samples.push(performance.now() - t);
  }
  return summary(samples);
}

/** Empty messages to a worker and back: the isolation floor. */
async function workerBaseline(): Promise<{ p50: number; p99: number }> {
  const worker = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
  const once = () => new Promise<void>((resolve) => { worker.once('message', () => resolve()); worker.postMessage('x'); });
  try {
    return await measure(once);
  } finally {
    await worker.terminate();
  }
}

await runBenchmark('bench:providers', async () => {
  const home = mkdtempSync(join(tmpdir(), 'lattice-bench-providers-'));
  try {
    const paths = homePaths(home);
    const { config } = loadConfig(paths, undefined);
    const registry = ActionRegistry.load(paths, registryOptions(config, paths));
    const runner = providerRunner({ workerUrl: new URL(`file://${join(dist, 'provider-worker.mjs')}`), builtinDir: join(dist, 'components') }, { paths, keys: null, config });
    const http: EffectResult = { kind: 'http', status: 201, headers: { 'content-type': 'application/json' }, bytes: 42, sha256: '0'.repeat(64), truncated: false, body: '{"number":7,"html_url":"https://github.com/o/r/issues/7"}' };
    const cases: { name: string; manifest: ActionManifest; params: Record<string, string>; results: EffectResult[] }[] = [
      { name: 'echo', manifest: registry.get('echo'), params: { message: 'hello' }, results: [] },
      { name: 'github.issue.create (http.template)', manifest: registry.get('github.issue.create'), params: { owner: 'o', repo: 'r', title: 'a bug', body: 'details' }, results: [http] },
    ];
    // Cold start: a new pool's first echo (worker start, the shipped glue, module compile, instantiation, the call),
    // and jco's transpile of a component, which a home pays once per component hash (then it is cached).
    const coldSamples: number[] = [];
    const transpileSamples: number[] = [];
    for (let i = 0; i < 5; i++) {
      let t = performance.now();
      const fresh = providerRunner({ workerUrl: new URL(`file://${join(dist, 'provider-worker.mjs')}`), builtinDir: join(dist, 'components') }, { paths, keys: null, config });
      const echo = registry.get('echo');
      if (!(await fresh.resolve(echo).plan(echo, { message: 'cold' })).ok) throw new CorrectnessFailure('echo refused on a cold start');
      coldSamples.push(performance.now() - t);
      await fresh.close();
      t = performance.now();
      await transpile(readFileSync(join(dist, 'components', 'http-template.wasm')));
      transpileSamples.push(performance.now() - t);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const rows: Record<string, { p50: number; p99: number }> = {};
    for (const c of cases) {
      const provider = runner.resolve(c.manifest);
      const once = async () => {
        const plan = await provider.plan(c.manifest, c.params);
        if (!plan.ok) throw new CorrectnessFailure(`${c.name} refused to plan: ${plan.message}`);
        const out = await provider.finish(c.manifest, c.params, c.results);
        if (!out.ok) throw new CorrectnessFailure(`${c.name} could not finish: ${out.message}`);
        return { plan: plan.value, out: out.value };
      };
      const first = await once();
      if (c.name === 'echo' && JSON.stringify(first.out) !== JSON.stringify(c.params)) throw new CorrectnessFailure('echo did not return its params');
      if (c.name !== 'echo' && !JSON.stringify(first.plan).includes('https://api.github.com/repos/o/r/issues')) throw new CorrectnessFailure(`unexpected plan ${JSON.stringify(first.plan)}`);
      rows[c.name] = await measure(once);
    }
    await runner.close();
    const base = await workerBaseline();
    const us = (v: number) => `${v.toFixed(0)} µs`;
    process.stdout.write(`provider round trips (plan + finish, warm, ${CALLS} each, worker pool)\n`);
    process.stdout.write(`  ${'case'.padEnd(40)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}\n`);
    for (const [name, r] of Object.entries(rows)) process.stdout.write(`  ${name.padEnd(40)} ${us(r.p50).padStart(8)} ${us(r.p99).padStart(8)}\n`);
    process.stdout.write(`  ${'baseline: one empty worker round trip'.padEnd(40)} ${us(base.p50).padStart(8)} ${us(base.p99).padStart(8)}\n`);
    process.stdout.write(`  cold start (new pool, first echo): ${median(coldSamples).toFixed(1)} ms; jco transpile of http-template.wasm: ${median(transpileSamples).toFixed(1)} ms (median of 5)\n`);
    process.stdout.write('  (a plan with effects and its finish are two worker round trips; a plan with none, one; goal: p50 <= 100 µs)\n');
    printJsonLine({ bench: 'providers', calls: CALLS, cases: rows, workerRoundTrip: base, coldStartMs: median(coldSamples), transpileMs: median(transpileSamples) });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
