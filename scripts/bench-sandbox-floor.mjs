// A baseline for `npm run bench:sandbox` (case E): the least any Node process can do to run the sandbox helper.
// It spawns dist/lattice-sandbox with a plan computed beforehand (fd 3), waits for "ready" (fd 4), gives the go at
// once (fd 5) and exits with the command's status. No commander, profile, plan, proxies or gate: what this costs
// beyond the same script's start (`--start-only`) is what Node's own spawn, pipes and child handling add to the
// helper, and so the smallest overhead a lattice written in Node could reach.
// Usage: node scripts/bench-sandbox-floor.mjs HELPER PLAN_FILE [--start-only]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [helperPath, planFile, mode] = process.argv.slice(2);
if (helperPath === undefined || planFile === undefined) throw new Error('usage: bench-sandbox-floor.mjs HELPER PLAN_FILE [--start-only]');
const plan = readFileSync(planFile);
if (mode !== '--start-only') {
  const child = spawn(helperPath, [], { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe', 'pipe'], env: {} });
  const [, , , planPipe, status, go] = child.stdio;
  let text = '';
  status.on('data', (chunk) => {
    text += chunk;
    if (text.includes('ready\n') && !go.writableEnded) go.end('g');
  });
  status.on('end', () => go.writableEnded || go.end()); // no "ready": EOF, and the helper exits 125
  child.on('exit', (code, signal) => (process.exitCode = code ?? (signal === null ? 1 : 128)));
  planPipe.end(plan);
}
