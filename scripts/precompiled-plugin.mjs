// The esbuild plugin both builds use to put lattice's own schemas in as code generated now: it runs
// scripts/precompile-schemas.ts into `outFile` and resolves core/server/compile-own.ts (the run-time compiler used
// from source) to the generated module.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const STAND_IN = resolve('core/server/compile-own.ts');

/** Generates the validators into `outFile` and returns the plugin that swaps them in. */
export function precompiledSchemas(outFile) {
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/precompile-schemas.ts', outFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  const generated = resolve(outFile);
  return {
    name: 'precompiled-schemas',
    setup(build) {
      build.onResolve({ filter: /[/\\]compile-own\.ts$/ }, (args) => (join(args.resolveDir, args.path) === STAND_IN ? { path: generated } : undefined));
    },
  };
}
