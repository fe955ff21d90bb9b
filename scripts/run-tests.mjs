// Runs every test file under test/ with node:test (TypeScript through tsx), ending with node:test's summary.
// Node 20's --test does not expand globs, so the files are listed here. Pass file paths to run a subset.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'fixtures' || entry.name === 'node_modules' ? [] : find(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const files = process.argv.length > 2 ? process.argv.slice(2) : find('test').sort();
const env = { ...process.env };
delete env.NODE_OPTIONS; // a developer's NODE_OPTIONS must not change what the suite runs
const result = spawnSync(
  process.execPath,
  // A per-test timeout turns a hang (e.g. Node 20's loader-hooks deadlock under load) into a failure, not a stall.
  // It also bounds each file, and the newcomer test's fresh `npm ci` (a native build) takes minutes on a loaded machine.
  ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${Math.max(2, availableParallelism())}`, '--test-timeout=900000', ...files],
  { stdio: 'inherit', env },
);
process.exit(result.status ?? 1);
