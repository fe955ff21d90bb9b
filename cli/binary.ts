/**
 * The main script of the single `lattice` binary (scripts/build-binary.mjs). The CLI bundle itself is an asset of
 * the binary, compiled here with the V8 code cache made for it at build time; only `lattice --version` is answered
 * without it. Keeping the 1.4 MB program out of the main script lets the binary start as fast as Node itself, the
 * same way the CLI loads a command's modules only when that command runs (cli/main.ts).
 */
import { getAsset, getRawAsset } from 'node:sea';
import { Script, constants } from 'node:vm';
import { VERSION } from './version.ts';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  // The asset is the bundle already wrapped as a CommonJS function (the build made the code cache for this text).
  const script = new Script(getAsset('lattice.cjs', 'utf8'), {
    filename: 'lattice.cjs',
    cachedData: new Uint8Array(getRawAsset('lattice.cjs.cache') as ArrayBuffer),
    // jco runs from files the binary writes to its cache (providers/runner/transpile.ts imports them).
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  // The arguments a CommonJS module gets; the binary's own require (built-in modules only) is all the bundle needs.
  const program = script.runInThisContext() as (...commonjs: unknown[]) => void;
  program(module.exports as unknown, require, module, __filename, __dirname);
}
