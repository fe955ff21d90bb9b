// `npm run release`: packages the single-file binary (dist/lattice, from `npm run build:binary`) for one target
// and writes what a release publishes: lattice-<os>-<arch>.tar.gz, install.sh, SHA256SUMS over every tarball in
// the out dir (so builds from several hosts combine into one release) and Formula/lattice.rb for Homebrew.
// A tarball in the out dir that is not from this version is refused, never listed beside this version's.
//
//   node scripts/release.mjs [--binary dist/lattice] [--out release] [--target linux-x64] [--base-url URL] [--json]
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderFormula } from './release/formula.mjs';
import { readEarlyEntry, writeTarGz } from './release/tarball.mjs';

/** The project's home; install.sh names the same repository for its default download URL. */
const REPOSITORY = 'https://github.com/lattice-sh/lattice';
const DESCRIPTION = 'Fail-closed gate, sandbox and evidence ledger for AI agents';
const TARGET = /^(linux|darwin)-(x64|arm64)$/;
const TARBALL = /^lattice-(linux|darwin)-(x64|arm64)\.tar\.gz$/;

const root = new URL('..', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

const USAGE = `usage: node scripts/release.mjs [options]
  --binary FILE     the single-file binary to package (default: dist/lattice)
  --out DIR         where the release is written; other targets' tarballs there are kept (default: release)
  --target OS-ARCH  linux|darwin-x64|arm64 (default: this machine's)
  --base-url URL    where the files will be downloaded from (default: $LATTICE_RELEASE_BASE, else
                    ${REPOSITORY}/releases/download/v<version>)
  --json            print what was written as JSON
`;

class UsageError extends Error {}

try {
  const options = parseOptions(process.argv.slice(2));
  const result = await release(options);
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : describe(result));
} catch (error) {
  process.stderr.write(`release: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof UsageError ? 2 : 1);
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        binary: { type: 'string', default: 'dist/lattice' },
        out: { type: 'string', default: 'release' },
        target: { type: 'string', default: hostTarget() },
        'base-url': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError(`${error.message} (see --help)`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (!TARGET.test(values.target)) {
    throw new UsageError(`--target must be linux|darwin-x64|arm64 (for example linux-x64), not '${values.target}'`);
  }
  const baseUrl = (values['base-url'] ?? process.env.LATTICE_RELEASE_BASE ?? `${REPOSITORY}/releases/download/v${pkg.version}`).replace(/\/+$/, '');
  let url;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new UsageError(`the base URL '${baseUrl}' (--base-url or LATTICE_RELEASE_BASE) is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'file:') {
    throw new UsageError(`the base URL '${baseUrl}' must be https:// (or file:// for a local test), since the formula downloads from it`);
  }
  if (url.search !== '' || url.hash !== '' || baseUrl.includes('#')) {
    throw new UsageError(`the base URL '${baseUrl}' must have no query or fragment: file names are appended to it`);
  }
  return { binary: values.binary, out: values.out, target: values.target, baseUrl, mtime: sourceDate(), json: values.json };
}

/** This machine as a target name; an unsupported one asks for --target instead of guessing. */
function hostTarget() {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  return os !== undefined && arch !== undefined ? `${os}-${arch}` : `${process.platform}-${process.arch} (unsupported; pass --target)`;
}

async function release({ binary, out, target, baseUrl, mtime }) {
  const stat = existsSync(binary) ? statSync(binary) : undefined;
  if (stat === undefined || !stat.isFile() || stat.size === 0) {
    throw new Error(`no binary at ${binary}: run \`npm run build:binary\` first, or pass --binary FILE`);
  }
  const hasher = findHasher();
  const name = `lattice-${target}`;
  await checkOtherTarballs(out, `${name}.tar.gz`);

  mkdirSync(join(out, 'Formula'), { recursive: true });
  const partial = join(out, `${name}.tar.gz.partial`); // not a tarball name: an interrupted run leaves nothing listed
  await writeTarGz(partial, contents(name, binary), { mtime });
  renameSync(partial, join(out, `${name}.tar.gz`));
  copyFileSync(new URL('install.sh', root), join(out, 'install.sh'));

  const tarballs = tarballsIn(out).map(({ file, os, arch }) => ({ file, os, arch, url: `${baseUrl}/${file}`, ...digest(join(out, file), hasher) }));
  const installer = { file: 'install.sh', ...digest(join(out, 'install.sh'), hasher) };
  const checksums = join(out, 'SHA256SUMS');
  writeFileSync(checksums, [...tarballs, installer].map((f) => `${f.sha256}  ${f.file}\n`).join(''));
  const formula = join(out, 'Formula', 'lattice.rb');
  writeFileSync(formula, renderFormula({ version: pkg.version, desc: DESCRIPTION, homepage: REPOSITORY, license: pkg.license, artifacts: tarballs }));
  return { version: pkg.version, target, baseUrl, out, tarballs, installer, checksums, formula };
}

/** The release tarballs in `dir`, by name. */
function tarballsIn(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((file) => {
      const match = TARBALL.exec(file);
      return match === null ? [] : [{ file, os: match[1], arch: match[2] }];
    });
}

/** Before anything is written: every other target's tarball already in `out` must be from this version. */
async function checkOtherTarballs(out, own) {
  for (const { file, os, arch } of tarballsIn(out).filter((t) => t.file !== own)) {
    const version = (await readEarlyEntry(join(out, file), `lattice-${os}-${arch}/VERSION`))?.trim();
    if (version !== pkg.version) {
      throw new Error(`${join(out, file)} is from lattice ${version ?? '(unknown version)'}, not ${pkg.version}: remove it, or choose another --out`);
    }
  }
}

/** What goes in the tarball: a top-level directory named for the target, the binary first after VERSION. */
function contents(name, binary) {
  const license = new URL('LICENSE', root);
  return [
    { name: `${name}/`, mode: 0o755, dir: true },
    { name: `${name}/VERSION`, mode: 0o644, text: `${pkg.version}\n` },
    { name: `${name}/lattice`, mode: 0o755, file: binary },
    { name: `${name}/README.md`, mode: 0o644, file: fileURLToPath(new URL('README.md', root)) },
    existsSync(license)
      ? { name: `${name}/LICENSE`, mode: 0o644, file: fileURLToPath(license) }
      : { name: `${name}/LICENSE`, mode: 0o644, text: `lattice is licensed under ${pkg.license} (SPDX identifier), as its package.json declares.\nThe license text: https://spdx.org/licenses/${pkg.license}.html\n` },
  ];
}

/** The archive's file times: SOURCE_DATE_EPOCH, else the commit's time, so one commit packs to the same bytes. */
function sourceDate() {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, not '${fromEnv}'`);
    return Number(fromEnv);
  }
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
  } catch {
    return Math.floor(Date.now() / 1000); // not a git checkout: the archive is dated now and says so by its dates
  }
}

/**
 * The command that hashes release files: the tool install.sh and `sha256sum -c` check with (only core/crypto
 * imports node:crypto, and this script runs without tsx, so it cannot load core/crypto).
 */
function findHasher() {
  const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const tried = [];
  for (const command of [['sha256sum'], ['shasum', '-a', '256']]) {
    const probe = spawnSync(command[0], [...command.slice(1), '-'], { input: '', encoding: 'utf8' });
    if (probe.status === 0 && probe.stdout.startsWith(`${EMPTY} `)) return command;
    tried.push(`${command[0]}: ${probe.error?.code === 'ENOENT' ? 'not installed' : `no SHA-256 of empty input (exit ${probe.status}) ${probe.stderr}`.trim()}`);
  }
  throw new Error(`neither sha256sum nor shasum is installed and working (${tried.join('; ')}): install coreutils, or perl for shasum`);
}

/** Size and SHA-256 of a release file. */
function digest(file, [tool, ...args]) {
  const line = execFileSync(tool, [...args, file], { stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  const sha256 = /^([0-9a-f]{64}) /.exec(line)?.[1];
  if (sha256 === undefined) throw new Error(`${tool} printed no SHA-256 for ${file}: ${line}`);
  return { bytes: statSync(file).size, sha256 };
}

function describe(result) {
  const row = (path, size, note) => `  ${path.padEnd(42)} ${size.padStart(9)}  ${note}`;
  return [
    `lattice ${result.version} for ${result.target}, downloads from ${result.baseUrl}/`,
    ...[...result.tarballs, result.installer].map((f) => row(join(result.out, f.file), size(f.bytes), `sha256 ${f.sha256}`)),
    row(result.checksums, '', `${result.tarballs.length + 1} files`),
    row(result.formula, '', `Homebrew: ${result.tarballs.map((t) => `${t.os}-${t.arch}`).join(', ')}`),
    '',
  ].join('\n');
}

function size(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return bytes >= 1e3 ? `${(bytes / 1e3).toFixed(1)} kB` : `${bytes} B`;
}
