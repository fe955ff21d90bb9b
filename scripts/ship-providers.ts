// Part of `npm run build`: copies the built-in components and their release signatures beside the bundle
// (dist/components) and transpiles each once, so a gate never transpiles a built-in at start.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { transpile, writeEntry } from '../providers/runner/transpile.ts';

const out = 'dist/components';
// From scratch: entries of components that changed since the last build would otherwise stay (and ship in the binary).
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync('providers/components', out, { recursive: true });
for (const file of readdirSync('providers/components').filter((f) => f.endsWith('.wasm'))) {
  const prepared = await transpile(readFileSync(join('providers/components', file)));
  writeEntry(join(out, prepared.sha256), prepared);
}
