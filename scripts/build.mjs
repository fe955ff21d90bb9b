// Bundles the CLI with esbuild into dist/lattice.mjs. Native addons (better-sqlite3) stay external and load
// from node_modules. Run by `npm ci` (prepare) and `npm run build`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { precompiledSchemas } from './precompiled-plugin.mjs';
import { latticeVersion } from './version.mjs';


/** Both bundles: ESM for Node 20, into dist/. */
const common = { outdir: 'dist', outExtension: { '.js': '.mjs' }, bundle: true, platform: 'node', format: 'esm', target: 'node20', sourcemap: 'linked', logLevel: 'warning' };

// Split into chunks: a command's modules (and the external packages they import) load only when it runs.
// Chunks are named <name>-<content hash>.mjs: remove the previous build's so dist/ holds one build.
for (const f of existsSync('dist') ? readdirSync('dist') : []) if (/-[A-Z0-9]{8}\.mjs(\.map)?$/.test(f)) rmSync(join('dist', f));
await build({
  ...common,
  splitting: true,
  // The verification and provider workers are files of their own beside the CLI bundle (cli/ finds them there).
  entryPoints: { lattice: 'cli/index.ts', 'verify-worker': 'core/ledger/verify-worker.ts', 'provider-worker': 'providers/runner/worker.ts' },
  // Native and wasm dependencies load their own files from node_modules (Cedar reads its .wasm beside its JS; jco's
  // bindings generator, loaded only to transpile a component, reads its own).
  // The MCP SDK is loaded only by `lattice mcp` (mcp/server.ts imports it when a server starts).
  external: ['better-sqlite3', '@cedar-policy/cedar-wasm', '@bytecodealliance/jco', '@bytecodealliance/jco/component', '@modelcontextprotocol/sdk', '@modelcontextprotocol/sdk/*'],
  define: { LATTICE_VERSION: JSON.stringify(latticeVersion()) },
  // Bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __latticeRequire } from 'node:module'; const require = __latticeRequire(import.meta.url);" },
  // lattice's own schemas go in as code generated now, not compiled at run time (core/server/compile-own.ts).
  plugins: [precompiledSchemas('.build/schemas/compile-own.mjs')],
});

// The SDK (`lattice/sdk`) on its own: agents import it, so it carries no daemon code. Its dependencies stay
// external (the agent installs them); the metafile lets a test prove what went in.
const sdk = await build({ ...common, entryPoints: { sdk: 'sdk/index.ts' }, packages: 'external', metafile: true });
writeFileSync('dist/sdk.meta.json', JSON.stringify(sdk.metafile, null, 2));

// The sandbox helper: C, built with the system compiler, warnings as errors (sandbox/helper/*.c).
// Linux only: it is made of Linux namespaces, Landlock and seccomp (elsewhere `lattice sandbox` says so).
if (process.platform === 'linux') execFileSync(process.env.CC ?? 'gcc', ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-Wformat=2', '-Wshadow', '-fstack-protector-strong', '-D_FORTIFY_SOURCE=2', '-o', 'dist/lattice-sandbox', 'sandbox/helper/lattice-sandbox.c', 'sandbox/helper/root.c'], { stdio: 'inherit' });
else rmSync('dist/lattice-sandbox', { force: true });

// The built-in provider components, their release signatures and their transpiled glue, beside the bundle.
execFileSync(process.execPath, ['--import', 'tsx', 'scripts/ship-providers.ts'], { stdio: 'inherit' });
