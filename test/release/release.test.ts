/**
 * scripts/release.mjs: the tarball's layout and modes, SHA256SUMS that sha256sum -c accepts, a Homebrew formula
 * Ruby parses whose urls and hashes are the tarballs', several hosts' builds combined, and the refusals. Small
 * stand-in binaries keep it fast; install.test.ts packs the real one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ROOT, tempDir } from '../helpers.ts';
import { HOST_TARGET, VERSION, fakeBinary, pathOf, readSums, release, releaseOf, run, sha256File } from './harness.ts';

const DEFAULT_BASE = `https://github.com/lattice-sh/lattice/releases/download/v${VERSION}`;

/** The formula's url/sha256 pairs, by the on_macos/on_linux and on_arm/on_intel blocks they stand in. */
function formulaArtifacts(formula: string): Map<string, { url: string; sha256: string }> {
  const found = new Map<string, { url: string; sha256: string }>();
  const pattern = /on_(macos|linux) do\n((?: {4}.*\n)*?) {2}end/g;
  for (const [, os, body] of formula.matchAll(pattern)) {
    for (const [, arch, url, sha256] of body!.matchAll(/on_(arm|intel) do\n {6}url "([^"]+)"\n {6}sha256 "([0-9a-f]{64})"\n {4}end/g)) {
      found.set(`${os === 'macos' ? 'darwin' : 'linux'}-${arch === 'arm' ? 'arm64' : 'x64'}`, { url: url!, sha256: sha256! });
    }
  }
  return found;
}

function unpack(tarball: string): string {
  const dir = tempDir('lattice-unpacked-');
  const made = run('tar', ['-xzf', tarball, '-C', dir]);
  assert.equal(made.status, 0, made.stderr);
  return dir;
}

describe('release.mjs', () => {
  let binary: string;
  let out: string;

  before(() => {
    binary = fakeBinary(`${VERSION} (fixture)`);
    out = releaseOf(binary);
  });

  it('packs the binary (0755), VERSION, README.md and LICENSE under lattice-<os>-<arch>/, owned by 0:0', () => {
    const tarball = join(out, `lattice-${HOST_TARGET}.tar.gz`);
    const listing = run('tar', ['-tvzf', tarball, '--numeric-owner']);
    assert.equal(listing.status, 0, listing.stderr);
    const dir = `lattice-${HOST_TARGET}`;
    assert.deepEqual(listing.stdout.trim().split('\n').map((line) => line.split(/\s+/).at(-1)), [`${dir}/`, `${dir}/VERSION`, `${dir}/lattice`, `${dir}/README.md`, `${dir}/LICENSE`]);
    for (const line of listing.stdout.trim().split('\n')) assert.match(line, /^\S+ 0\/0 /, line);

    const unpacked = join(unpack(tarball), dir);
    assert.equal(statSync(join(unpacked, 'lattice')).mode & 0o7777, 0o755);
    assert.equal(sha256File(join(unpacked, 'lattice')), sha256File(binary));
    assert.equal(readFileSync(join(unpacked, 'VERSION'), 'utf8'), `${VERSION}\n`);
    assert.equal(readFileSync(join(unpacked, 'README.md'), 'utf8'), readFileSync(join(ROOT, 'README.md'), 'utf8'));
    assert.match(readFileSync(join(unpacked, 'LICENSE'), 'utf8'), /Apache-2\.0/);
    for (const file of ['VERSION', 'README.md', 'LICENSE']) assert.equal(statSync(join(unpacked, file)).mode & 0o7777, 0o644, file);
  });

  it('writes SHA256SUMS for the tarball and install.sh that sha256sum -c accepts', () => {
    const sums = readSums(join(out, 'SHA256SUMS'));
    assert.deepEqual([...sums.keys()], [`lattice-${HOST_TARGET}.tar.gz`, 'install.sh']);
    for (const [file, hash] of sums) assert.equal(hash, sha256File(join(out, file)), file);
    assert.equal(readFileSync(join(out, 'install.sh'), 'utf8'), readFileSync(join(ROOT, 'install.sh'), 'utf8'));
    const check = run('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: out });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it('writes a Homebrew formula that Ruby parses, whose url and sha256 are the tarball and its SHA256SUMS line', () => {
    const file = join(out, 'Formula', 'lattice.rb');
    const syntax = run('ruby', ['-c', file]);
    assert.equal(syntax.status, 0, syntax.stderr);
    assert.equal(syntax.stdout.trim(), 'Syntax OK');

    const formula = readFileSync(file, 'utf8');
    assert.match(formula, /^class Lattice < Formula$/m);
    assert.match(formula, new RegExp(`^ {2}version "${VERSION.replaceAll('.', '\\.')}"$`, 'm'));
    assert.match(formula, /^ {2}license "Apache-2\.0"$/m);
    assert.match(formula, /^ {2}homepage "https:\/\/github\.com\/lattice-sh\/lattice"$/m);
    assert.match(formula, /^ {2}desc "[^"]+"$/m);
    assert.match(formula, /^ {4}bin\.install "lattice"$/m);
    assert.match(formula, /^ {2}test do\n {4}assert_match version\.to_s, shell_output\("#\{bin\}\/lattice --version"\)\n {2}end$/m);

    const tarball = `lattice-${HOST_TARGET}.tar.gz`;
    const artifacts = formulaArtifacts(formula);
    assert.deepEqual([...artifacts.keys()], [HOST_TARGET]);
    assert.equal(artifacts.get(HOST_TARGET)?.url, `${DEFAULT_BASE}/${tarball}`);
    assert.equal(artifacts.get(HOST_TARGET)?.sha256, sha256File(join(out, tarball)));
    assert.equal(artifacts.get(HOST_TARGET)?.sha256, readSums(join(out, 'SHA256SUMS')).get(tarball));
  });

  it('combines builds from several hosts: each run lists every tarball in the out dir', () => {
    const combined = releaseOf(fakeBinary(`${VERSION} (linux arm64)`), ['--target', 'linux-arm64']);
    const again = release(['--binary', fakeBinary(`${VERSION} (mac arm64)`), '--out', combined, '--target', 'darwin-arm64']);
    assert.equal(again.status, 0, again.stderr);
    const sums = readSums(join(combined, 'SHA256SUMS'));
    assert.deepEqual([...sums.keys()], ['lattice-darwin-arm64.tar.gz', 'lattice-linux-arm64.tar.gz', 'install.sh']);

    const formula = readFileSync(join(combined, 'Formula', 'lattice.rb'), 'utf8');
    const artifacts = formulaArtifacts(formula);
    assert.deepEqual([...artifacts.keys()].sort(), ['darwin-arm64', 'linux-arm64']);
    for (const [target, { url, sha256 }] of artifacts) {
      assert.equal(url, `${DEFAULT_BASE}/lattice-${target}.tar.gz`);
      assert.equal(sha256, sums.get(`lattice-${target}.tar.gz`));
    }
    assert.doesNotMatch(formula, /on_intel/, 'no block for a platform without a tarball');
    assert.equal(run('ruby', ['-c', join(combined, 'Formula', 'lattice.rb')]).status, 0);
  });

  it('refuses a tarball of another version in the out dir instead of listing it beside this one', () => {
    for (const [version, named] of [['0.0.1', /is from lattice 0\.0\.1, not /], [undefined, /is from lattice \(unknown version\), not /]] as const) {
      const stale = tempDir('lattice-stale-');
      const dir = join(stale, 'lattice-darwin-x64');
      mkdirSync(dir);
      copyFileSync(binary, join(dir, 'lattice'));
      if (version !== undefined) writeFileSync(join(dir, 'VERSION'), `${version}\n`);
      const packed = run('tar', ['-czf', join(stale, 'lattice-darwin-x64.tar.gz'), '-C', stale, 'lattice-darwin-x64']);
      assert.equal(packed.status, 0, packed.stderr);

      const outDir = tempDir('lattice-release-');
      copyFileSync(join(stale, 'lattice-darwin-x64.tar.gz'), join(outDir, 'lattice-darwin-x64.tar.gz'));
      const refused = release(['--binary', binary, '--out', outDir]);
      assert.equal(refused.status, 1, refused.stdout);
      assert.match(refused.stderr, named);
      assert.match(refused.stderr, /lattice-darwin-x64\.tar\.gz .*remove it, or choose another --out/);
      assert.deepEqual(readdirSync(outDir), ['lattice-darwin-x64.tar.gz'], 'nothing was written');
    }
  });

  it('packs the same binary at the same commit to the same bytes', () => {
    const first = readSums(join(releaseOf(binary), 'SHA256SUMS'));
    const second = readSums(join(releaseOf(binary), 'SHA256SUMS'));
    assert.equal(first.get(`lattice-${HOST_TARGET}.tar.gz`), second.get(`lattice-${HOST_TARGET}.tar.gz`));
    const dated = releaseOf(binary);
    const redated = release(['--binary', binary, '--out', dated], { SOURCE_DATE_EPOCH: '1700000000' });
    assert.equal(redated.status, 0, redated.stderr);
    assert.notEqual(readSums(join(dated, 'SHA256SUMS')).get(`lattice-${HOST_TARGET}.tar.gz`), first.get(`lattice-${HOST_TARGET}.tar.gz`), 'SOURCE_DATE_EPOCH sets the file times');
  });

  it('takes the download URL from --base-url, else LATTICE_RELEASE_BASE', () => {
    const viaFlag = release(['--binary', binary, '--out', tempDir(), '--base-url', 'https://downloads.example/lattice/v9/', '--json']);
    assert.equal(viaFlag.status, 0, viaFlag.stderr);
    const flagged = JSON.parse(viaFlag.stdout) as { baseUrl: string; formula: string };
    assert.equal(flagged.baseUrl, 'https://downloads.example/lattice/v9');
    assert.match(readFileSync(flagged.formula, 'utf8'), new RegExp(`url "https://downloads\\.example/lattice/v9/lattice-${HOST_TARGET}\\.tar\\.gz"`));

    const viaEnv = release(['--binary', binary, '--out', tempDir(), '--json'], { LATTICE_RELEASE_BASE: 'https://mirror.example/l' });
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
    assert.equal((JSON.parse(viaEnv.stdout) as { baseUrl: string }).baseUrl, 'https://mirror.example/l');
  });

  it('prints each file it wrote with its size and SHA-256, or all of it as JSON', () => {
    const printed = release(['--binary', binary, '--out', out]);
    assert.equal(printed.status, 0, printed.stderr);
    const sums = readSums(join(out, 'SHA256SUMS'));
    for (const [file, hash] of sums) assert.match(printed.stdout, new RegExp(`${join(out, file)} +\\d+(\\.\\d)? (B|kB|MB) +sha256 ${hash}`));
    assert.match(printed.stdout, /SHA256SUMS +2 files/);
    assert.match(printed.stdout, new RegExp(`Formula/lattice\\.rb +Homebrew: ${HOST_TARGET}`));

    const json = release(['--binary', binary, '--out', out, '--json']);
    assert.equal(json.status, 0, json.stderr);
    const result = JSON.parse(json.stdout) as { version: string; target: string; tarballs: { file: string; bytes: number; sha256: string; url: string }[]; installer: { sha256: string } };
    assert.equal(result.version, VERSION);
    assert.equal(result.target, HOST_TARGET);
    assert.deepEqual(result.tarballs.map((t) => [t.file, t.bytes, t.sha256]), [[`lattice-${HOST_TARGET}.tar.gz`, statSync(join(out, `lattice-${HOST_TARGET}.tar.gz`)).size, sums.get(`lattice-${HOST_TARGET}.tar.gz`)]]);
    assert.equal(result.installer.sha256, sums.get('install.sh'));
  });

  it('hashes with sha256sum, else shasum -a 256, and refuses to write SHA256SUMS with neither', () => {
    const viaShasum = release(['--binary', binary, '--out', tempDir(), '--json'], { PATH: pathOf(['git', 'shasum']) });
    assert.equal(viaShasum.status, 0, viaShasum.stderr);
    const { tarballs } = JSON.parse(viaShasum.stdout) as { tarballs: { sha256: string }[] };
    assert.equal(tarballs[0]?.sha256, readSums(join(out, 'SHA256SUMS')).get(`lattice-${HOST_TARGET}.tar.gz`));

    const empty = tempDir();
    const neither = release(['--binary', binary, '--out', empty], { PATH: pathOf(['git']) });
    assert.equal(neither.status, 1, neither.stdout);
    assert.match(neither.stderr, /neither sha256sum nor shasum is installed/);
    assert.deepEqual(readdirSync(empty), [], 'nothing was written');
  });

  it('names what is wrong with its arguments (exit 2) or its binary (exit 1)', () => {
    const help = release(['--help']);
    assert.equal(help.status, 0, help.stderr);
    for (const flag of ['--binary', '--out', '--target', '--base-url', '--json']) assert.match(help.stdout, new RegExp(`^  ${flag} `, 'm'));
    const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
      [['--target', 'windows-x64'], {}, 2, /--target must be .* not 'windows-x64'/],
      [['--target', 'linux-riscv64'], {}, 2, /--target must be/],
      [['--base-url', 'http://plain.example/x'], {}, 2, /must be https:\/\//],
      [['--base-url', 'https://x.example/a?b=1'], {}, 2, /no query or fragment/],
      [['--base-url', 'https://x.example/a#{`id`}'], {}, 2, /no query or fragment/],
      [['--base-url', 'not a url'], {}, 2, /is not a URL/],
      [['--frobnicate'], {}, 2, /Unknown option '--frobnicate'.*\(see --help\)/],
      [[], { SOURCE_DATE_EPOCH: 'yesterday' }, 2, /SOURCE_DATE_EPOCH must be whole seconds/],
      [['--binary', join(tempDir(), 'missing')], {}, 1, /no binary at .*missing: run `npm run build:binary` first/],
    ];
    for (const [args, env, status, message] of cases) {
      const result = release(['--binary', binary, '--out', tempDir(), ...args], env);
      assert.equal(result.status, status, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
    }
  });

  it('is what npm run release runs once the binary is built', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts['release'], 'npm run build:binary && node scripts/release.mjs');
  });
});
