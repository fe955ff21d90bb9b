#!/usr/bin/env node
// The `lattice` command from a clone (`npx lattice`, `npm link`): runs the bundle that `npm ci` / `npm run build` makes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/lattice.mjs', import.meta.url));
if (!existsSync(bundle)) {
  process.stderr.write(`lattice: ${bundle} is missing; run \`npm ci\` (or \`npm run build\`) in the lattice checkout first\n`);
  process.exit(2);
}
await import(bundle);
