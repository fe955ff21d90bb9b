/**
 * How this lattice runs, and where the files it ships are.
 *
 * From a checkout or an npm install, lattice is `node` running the bundle in dist/, and its files sit beside the
 * bundle (dist/lattice-sandbox, dist/components/, the workers; profiles/ one level up).
 *
 * The single `lattice` binary (a Node single-executable application, scripts/build-binary.mjs) carries the same
 * files as assets of the executable. A file the kernel or Node must open by path (the sandbox helper, the SQLite
 * addon, the worker scripts, the provider components, the profiles, jco) is written on first use to a cache under
 * `$XDG_CACHE_HOME/lattice` (or `~/.cache/lattice`), in a directory named by its SHA-256, directories 0700 and files
 * 0500/0400, and every process checks the file against that hash before its first use of it. A mismatch (a
 * truncated write, an edit) is rewritten from the binary, never used. Cedar's WebAssembly, which needs no path, is
 * read from the executable directly (see scripts/build-binary.mjs).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from './crypto/index.ts';
import { LatticeError } from './errors.ts';

/** Files lattice opens by path. */
export type ShippedFile = 'lattice-sandbox' | 'verify-worker' | 'provider-worker' | 'better_sqlite3.node';
/** Directories of files lattice opens by path. `jco` exists only in the binary (elsewhere it is a package). */
export type ShippedTree = 'components' | 'profiles' | 'jco';

/** What the binary's `lattice-assets.json` asset says about the rest (written by scripts/build-binary.mjs). */
export interface AssetManifest {
  readonly files: Readonly<Record<string, { readonly asset: string; readonly sha256: string; readonly executable: boolean }>>;
  /** Per tree: its hash (over the sorted `<sha256>  <path>` lines) and each file's hash; asset key = `<tree>/<path>`. */
  readonly trees: Readonly<Record<string, { readonly sha256: string; readonly files: Readonly<Record<string, string>> }>>;
}

export const MANIFEST_ASSET = 'lattice-assets.json';

/** True inside the single `lattice` binary. */
export function inBinary(): boolean {
  return isSea();
}

/** dist/ of a checkout: where the bundle runs from, or ../dist from a source module run through tsx. */
function distDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === 'dist' ? here : resolve(here, '..', 'dist');
}

const DIST_NAMES: Record<ShippedFile, string> = {
  'lattice-sandbox': 'lattice-sandbox',
  'verify-worker': 'verify-worker.mjs',
  'provider-worker': 'provider-worker.mjs',
  'better_sqlite3.node': 'better_sqlite3.node',
};

const verified = new Map<string, string>();
let manifest: AssetManifest | undefined;

function assets(): AssetManifest {
  manifest ??= JSON.parse(getAsset(MANIFEST_ASSET, 'utf8')) as AssetManifest;
  return manifest;
}

/** The path of a shipped file, checked against its hash when it comes from the binary. */
export function shippedFile(name: ShippedFile): string {
  if (name === 'lattice-sandbox' && process.platform !== 'linux') throw new LatticeError('SANDBOX_UNAVAILABLE', `the sandbox needs Linux (namespaces, Landlock, seccomp); this is ${process.platform}`);
  if (!isSea()) return join(distDir(), DIST_NAMES[name]);
  const known = verified.get(name);
  if (known !== undefined) return known;
  const entry = assets().files[name];
  if (entry === undefined) throw new LatticeError('INTERNAL', `this lattice binary does not carry ${name}; rebuild it with \`npm run build:binary\``);
  const dir = join(cacheRoot(), entry.sha256);
  const file = materialize(dir, entry.asset, entry.asset, entry.sha256, entry.executable);
  verified.set(name, file);
  return file;
}

/** The directory of a shipped tree, every file in it checked against its hash when it comes from the binary. */
export function shippedTree(name: ShippedTree): string {
  if (!isSea()) {
    if (name === 'jco') throw new LatticeError('INTERNAL', 'jco is a package dependency outside the binary');
    return name === 'profiles' ? resolve(distDir(), '..', 'profiles') : join(distDir(), name);
  }
  const known = verified.get(`tree:${name}`);
  if (known !== undefined) return known;
  const tree = assets().trees[name];
  if (tree === undefined) throw new LatticeError('INTERNAL', `this lattice binary does not carry ${name}/; rebuild it with \`npm run build:binary\``);
  const root = join(cacheRoot(), tree.sha256, name);
  for (const [path, sha256] of Object.entries(tree.files)) materialize(join(cacheRoot(), tree.sha256), join(name, path), `${name}/${path}`, sha256, false);
  verified.set(`tree:${name}`, root);
  return root;
}

/** better-sqlite3's `nativeBinding` option: the addon the binary carries (loaded once), or its own lookup elsewhere. */
let addon: object | undefined;
export function sqliteBinding(): object | undefined {
  if (!isSea()) return undefined;
  if (addon === undefined) {
    // The binary's require() loads only built-in modules; process.dlopen loads the addon from its cached file.
    const module = { exports: {} };
    process.dlopen(module, shippedFile('better_sqlite3.node'));
    addon = module.exports;
  }
  return addon;
}

/**
 * The command that runs this lattice again: the binary itself, or node with this package's entry script.
 *
 * How lattice was started decides nothing by itself: `npx lattice` runs it through a link in npm's exec cache
 * (`…/_npx/<hash>/node_modules/.bin/lattice`, no extension), `npm link` through a link on the PATH, tests through
 * tsx with a source file. So the started script counts only once its links are resolved and it is one of this
 * package's two entry files (bin/lattice.mjs, dist/lattice.mjs); anything else runs the package's own bin file.
 */
export function selfCommand(): string[] {
  if (isSea()) return [process.execPath];
  const bin = realOrSelf(join(packageRoot(), 'bin', 'lattice.mjs'));
  const started = process.argv[1] === undefined ? undefined : realOrSelf(resolve(process.argv[1]));
  const startedEntry = started === bin || started === realOrSelf(join(distDir(), 'lattice.mjs'));
  return [process.execPath, startedEntry && started !== undefined ? started : bin];
}

/** The package this module belongs to: dist/'s parent. */
function packageRoot(): string {
  return dirname(distDir());
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return path; // compared as it is; never run unless it is an entry file
    throw error;
  }
}

/** The directory lattice runs from: the checkout or install holding bin/, dist/ and node_modules/, or the binary's. */
export function selfRoot(): string {
  return isSea() ? dirname(realpathSync(process.execPath)) : packageRoot();
}

/** `$XDG_CACHE_HOME/lattice` (an absolute XDG_CACHE_HOME only, as the XDG spec says) or `~/.cache/lattice`. */
export function cacheRoot(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'lattice');
}

/** Writes `<dir>/<rel>` from the binary unless it is there with the right hash; returns its path. */
function materialize(dir: string, rel: string, asset: string, sha256: string, executable: boolean): string {
  const file = join(dir, rel);
  if (hashOf(file) === sha256) return file;
  const bytes = new Uint8Array(getAsset(asset));
  if (sha256Hex(bytes) !== sha256) throw new LatticeError('INTERNAL', `the asset ${asset} inside this lattice binary does not match its recorded hash: the binary is damaged; reinstall it`);
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    // A private temporary name, then rename: a reader never sees a half-written file, two writers never collide.
    const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${globalThis.crypto.randomUUID()}.tmp`);
    writeFileSync(temp, bytes, { mode: 0o600, flush: true });
    chmodSync(temp, executable ? 0o500 : 0o400);
    if (existsSync(file)) rmSync(file, { force: true });
    renameSync(temp, file);
  } catch (error) {
    throw new LatticeError('INTERNAL', `cannot write lattice's cache ${dir} (${(error as Error).message}); make ${dirname(cacheRoot())} writable or point XDG_CACHE_HOME at a writable directory`, { cause: error });
  }
  if (hashOf(file) !== sha256) throw new LatticeError('INTERNAL', `the cached ${file} does not match its hash after writing it; something else is changing ${dir}`);
  return file;
}

function hashOf(file: string): string | null {
  try {
    return sha256Hex(readFileSync(file));
  } catch (error) {
    // Missing, or a path that cannot exist: write it (materialize says so if it cannot).
    if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) return null;
    throw error;
  }
}
