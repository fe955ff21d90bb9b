#!/usr/bin/env node
// The `lattice` command from a clone (`npx lattice`, `npm link`): runs the bundle that `npm ci` / `npm run build` makes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';

// Node 20's V8 can abort ("Fatal error … unreachable code" in the deoptimizer) when a function that inlined a
// call into WebAssembly (Cedar's policy engine) deoptimizes under load. Turn that inlining off before any code
// is compiled; the cost is a few hundred nanoseconds per Cedar call.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');

const bundle = fileURLToPath(new URL('../dist/lattice.mjs', import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write(`lattice: ${bundle} is missing; run \`npm ci\` (or \`npm run build\`) in the lattice checkout first\n`);
  process.exit(2);
}
await import(bundle);
