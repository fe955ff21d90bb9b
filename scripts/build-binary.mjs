// `npm run build:binary`: the single `lattice` executable (dist/lattice), a Node single-executable application.
//
//   1. A current LTS Node for this platform from the npm registry (node-<os>-<arch>@NODE_VERSION): no other download.
//   2. better-sqlite3's addon compiled for that Node (node-gyp against the headers of ADDON_HEADERS).
//   3. One CommonJS bundle of the CLI and two of the worker threads (esbuild), everything bundled but jco, and the
//      small main script (cli/binary.ts) that compiles the CLI bundle with a V8 code cache made here.
//   4. A SEA blob (with code cache) made by that Node, carrying the bundles and every file lattice opens by path
//      as assets (sandbox helper, addon, workers, components, profiles, jco), listed with their SHA-256 in
//      lattice-assets.json (core/runtime.ts writes them to a cache and checks them there).
//   5. postject into a stripped copy of that Node; `dist/lattice --version` must answer.
//
// Downloads and the addon build are kept under .build/binary and reused while their inputs are the same.
// Runs on linux-x64 and linux-arm64, and on darwin (where the sandbox is not available) with the host's platform.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { build } from 'esbuild';
import { precompiledSchemas } from './precompiled-plugin.mjs';
import { PACKAGE_VERSION, latticeVersion } from './version.mjs';

// Node 24 is the current LTS. The addon is compiled against 24.18.1's headers: built against 24.19's and later,
// better-sqlite3 12 spins or aborts when the garbage collector finalises its statements (measured: a stress loop
// of prepared statements and forced GCs finishes in 5 s with the 24.18.1 build and never with the 24.21.0 one, both
// on Node 24.21.0). The N-API/ABI version is the same across 24.x.
const NODE_VERSION = '24.21.0';
const ADDON_HEADERS = '24.18.1';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const require = createRequire(import.meta.url);
const os = { linux: 'linux', darwin: 'darwin' }[process.platform];
const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
if (os === undefined || arch === undefined) throw new Error(`lattice binaries are built for linux and darwin on x64 and arm64, not ${process.platform}-${process.arch}`);
const work = join('.build', 'binary');
mkdirSync(work, { recursive: true });
const step = (text) => process.stdout.write(`build:binary: ${text}\n`);
/** An installed package's directory (some packages' exports hide their package.json from require.resolve). */
function packageDir(name) {
  const dir = join('node_modules', name);
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`${name} is not installed; run \`npm ci\` first`);
  return dir;
}
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The npm registry's node-<os>-<arch>@version package, unpacked under .build/binary (its bin/node and include/). */
function nodePackage(version) {
  const dir = join(work, `node-${os}-${arch}-${version}`);
  if (existsSync(join(dir, 'bin', 'node'))) return dir;
  step(`fetching node-${os}-${arch}@${version} from the npm registry`);
  const out = execFileSync('npm', ['pack', `node-${os}-${arch}@${version}`, '--pack-destination', work, '--json', '--silent'], { encoding: 'utf8' });
  const tarball = join(work, JSON.parse(out)[0].filename);
  const temp = `${dir}.tmp`;
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp);
  execFileSync('tar', ['xzf', tarball, '-C', temp, '--strip-components=1']);
  rmSync(tarball);
  renameSync(temp, dir);
  return dir;
}

/** better-sqlite3's addon compiled for the embedded Node (about two minutes the first time, then reused). */
function sqliteAddon() {
  const source = packageDir('better-sqlite3');
  const version = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')).version;
  const dir = join(work, `better-sqlite3-${version}-node${ADDON_HEADERS}-${os}-${arch}`);
  const addon = join(dir, 'build', 'Release', 'better_sqlite3.node');
  if (existsSync(addon)) return addon;
  const headers = nodePackage(ADDON_HEADERS);
  step(`compiling better-sqlite3 ${version} against Node ${ADDON_HEADERS} headers (takes a couple of minutes)`);
  rmSync(dir, { recursive: true, force: true });
  for (const part of ['package.json', 'binding.gyp', 'src', 'deps']) cpSync(join(source, part), join(dir, part), { recursive: true });
  // npm's own node-gyp (npm ships it; npm run sets npm_execpath), never a download.
  const npmCli = process.env.npm_execpath ?? join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm', 'bin', 'npm-cli.js');
  const gyp = join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.toLowerCase().startsWith('npm_config_')) delete env[key]; // e.g. a nodedir for the host's Node
  // Its log and the compiler's warnings about better-sqlite3's own code are shown only if the build fails.
  const built = spawnSync(process.execPath, [gyp, 'rebuild', '--release', `--nodedir=${join(process.cwd(), headers)}`], { cwd: dir, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (built.status !== 0) {
    process.stderr.write(`${built.stdout}${built.stderr}`);
    throw new Error(`node-gyp failed (${built.status ?? built.signal}) building better-sqlite3 in ${dir}`);
  }
  return addon;
}

/**
 * Cedar's Node glue reads its .wasm from beside itself; inside the binary it reads the asset instead (no file
 * needed, so none is written). Fails the build if an upgrade changes the line this replaces.
 */
const cedarFromAsset = {
  name: 'cedar-wasm-from-asset',
  setup(b) {
    b.onLoad({ filter: /cedar-wasm[\\/]nodejs[\\/]cedar_wasm\.js$/ }, ({ path }) => {
      const text = readFileSync(path, 'utf8');
      const line = /const wasmPath = `\$\{__dirname\}\/cedar_wasm_bg\.wasm`;\s*const wasmBytes = require\('fs'\)\.readFileSync\(wasmPath\);/;
      if (!line.test(text)) throw new Error(`${path}: the line loading cedar_wasm_bg.wasm changed; update scripts/build-binary.mjs`);
      return { contents: text.replace(line, "const wasmBytes = new Uint8Array(require('node:sea').getAsset('cedar_wasm_bg.wasm'));"), loader: 'js' };
    });
  },
};

async function bundles() {
  const out = join(work, 'js');
  rmSync(out, { recursive: true, force: true });
  await build({
    entryPoints: { main: 'cli/binary.ts', lattice: 'cli/index.ts', 'verify-worker': 'core/ledger/verify-worker.ts', 'provider-worker': 'providers/runner/worker.ts' },
    outdir: out,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: true,
    keepNames: true,
    legalComments: 'none',
    logLevel: 'warning',
    // jco runs from the copy of its package the binary carries (providers/runner/transpile.ts).
    external: ['@bytecodealliance/jco', '@bytecodealliance/jco/*'],
    // core/runtime.ts reads import.meta.url only outside the binary.
    logOverride: { 'empty-import-meta': 'silent' },
    define: { LATTICE_VERSION: JSON.stringify(latticeVersion()) },
    plugins: [cedarFromAsset, precompiledSchemas(join(work, 'compile-own.mjs'))],
  });
  return out;
}

function treeOf(root, files) {
  const entries = Object.fromEntries(files.map((f) => [f, sha256(readFileSync(join(root, f)))]));
  const listing = Object.entries(entries).map(([f, h]) => `${h}  ${f}\n`).join('');
  return { sha256: sha256(listing), files: entries };
}

function listFiles(root, dir = '') {
  return readdirSync(join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(root, join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []))
    .sort();
}

/** The part of jco that transpiling a provider needs, laid out as node_modules so its imports resolve. */
function jcoTree() {
  const root = join(work, 'jco');
  rmSync(root, { recursive: true, force: true });
  const jco = packageDir('@bytecodealliance/jco');
  const shim = packageDir('@bytecodealliance/preview2-shim');
  const into = (p) => join(root, 'node_modules', '@bytecodealliance', p);
  for (const f of ['package.json', 'src/browser.js', ...readdirSync(join(jco, 'obj')).filter((f) => /\.(js|wasm)$/.test(f)).map((f) => `obj/${f}`)]) cpSync(join(jco, f), join(into('jco'), f));
  for (const f of ['package.json', 'lib']) cpSync(join(shim, f), join(into('preview2-shim'), f), { recursive: true });
  return root;
}

const started = Date.now();
const node = nodePackage(NODE_VERSION);
const addon = sqliteAddon();
step('bundling');
const js = await bundles();

// Everything the binary carries beside its main script. Asset keys: the file name, or <tree>/<path>.
const assets = {};
const files = {};
const addFile = (name, path, executable) => {
  assets[name] = path;
  files[name] = { asset: name, sha256: sha256(readFileSync(path)), executable };
};
if (os === 'linux') addFile('lattice-sandbox', 'dist/lattice-sandbox', true);
addFile('better_sqlite3.node', addon, false);
addFile('verify-worker', join(js, 'verify-worker.cjs'), false);
addFile('provider-worker', join(js, 'provider-worker.cjs'), false);
assets['cedar_wasm_bg.wasm'] = join(packageDir('@cedar-policy/cedar-wasm'), 'nodejs', 'cedar_wasm_bg.wasm');
// The CLI bundle, wrapped as the CommonJS function cli/binary.ts compiles, and the V8 code cache for exactly that
// text, made by the embedded Node with the options cli/binary.ts uses (a cache V8 rejects is only slower).
const program = join(work, 'lattice.cjs');
writeFileSync(program, `(function (exports, require, module, __filename, __dirname) {${readFileSync(join(js, 'lattice.cjs'), 'utf8')}\n})`);
const makeCache = "const vm = require('node:vm'), fs = require('node:fs'); const s = new vm.Script(fs.readFileSync(process.argv[1], 'utf8'), { filename: 'lattice.cjs', importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }); fs.writeFileSync(process.argv[2], s.createCachedData());";
execFileSync(join(node, 'bin', 'node'), ['-e', makeCache, program, `${program}.cache`]);
assets['lattice.cjs'] = program;
assets['lattice.cjs.cache'] = `${program}.cache`;
const trees = {};
for (const [name, root] of [['components', 'dist/components'], ['profiles', 'profiles'], ['jco', jcoTree()]]) {
  const list = listFiles(root).filter((f) => name !== 'profiles' || f.endsWith('.toml'));
  trees[name] = treeOf(root, list);
  for (const f of list) assets[`${name}/${f}`] = join(root, f);
}
writeFileSync(join(work, 'lattice-assets.json'), JSON.stringify({ files, trees }));
assets['lattice-assets.json'] = join(work, 'lattice-assets.json');

step('making the single-executable blob');
const config = { main: join(js, 'main.cjs'), output: join(work, 'sea.blob'), disableExperimentalSEAWarning: true, useCodeCache: true, assets };
writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
execFileSync(join(node, 'bin', 'node'), ['--experimental-sea-config', join(work, 'sea-config.json')], { stdio: ['ignore', 'ignore', 'inherit'] });

step(`injecting it into Node ${NODE_VERSION}`);
const temp = join('dist', 'lattice.tmp');
copyFileSync(join(node, 'bin', 'node'), temp);
chmodSync(temp, 0o755);
if (os === 'darwin') execFileSync('codesign', ['--remove-signature', temp]);
else execFileSync('strip', ['--strip-all', temp]);
const { inject } = require('postject');
// LIEF, inside postject, warns once per section of a stripped Node whose name it cannot look up; only those go.
const warn = console.warn;
console.warn = (...args) => void (/^warning: Can't find string offset for section name/.test(String(args[0])) || warn(...args));
try {
  await inject(temp, 'NODE_SEA_BLOB', readFileSync(join(work, 'sea.blob')), { sentinelFuse: SEA_FUSE, ...(os === 'darwin' && { machoSegmentName: 'NODE_SEA' }) });
} finally {
  console.warn = warn;
}
if (os === 'darwin') execFileSync('codesign', ['--sign', '-', temp]);
renameSync(temp, join('dist', 'lattice'));

const version = execFileSync(join('dist', 'lattice'), ['--version'], { encoding: 'utf8', env: {} }).trim();
if (!version.startsWith(PACKAGE_VERSION)) throw new Error(`dist/lattice --version answered ${JSON.stringify(version)}`);
const size = readFileSync(join('dist', 'lattice')).length;
step(`dist/lattice ${version}, ${(size / 1e6).toFixed(1)} MB, Node ${NODE_VERSION}, ${Object.keys(assets).length} assets, ${((Date.now() - started) / 1000).toFixed(1)} s (${relative(process.cwd(), work)} keeps the downloads and the addon)`);
