/**
 * install.sh against a release of the real binary: from a directory and a file:// URL, into --prefix and
 * ~/.local/bin. Against a release of a small stand-in (where the bytes do not matter): as a normal user, HTTPS with
 * curl and wget, and the refusals, each leaving nothing installed: a tampered tarball, one SHA256SUMS does not list,
 * no hashing tool, plain http, an unknown OS or processor, a directory the user cannot write.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { before, describe, it } from 'node:test';
import { tempDir } from '../helpers.ts';
import { BINARY, HOST_TARGET, NOBODY, VERSION, cleanEnv, fakeBinary, isRoot, nobodyDir, pathOf, readSums, releaseOf, run, runAsync, sha256File } from './harness.ts';

const TARBALL = `lattice-${HOST_TARGET}.tar.gz`;
/** Every command install.sh runs (the rest are sh builtins): the tests run it with only these on PATH. */
const TOOLS = ['sh', 'uname', 'id', 'cat', 'mkdir', 'mktemp', 'rm', 'cp', 'mv', 'chmod', 'awk', 'tr', 'grep', 'tar', 'gzip', 'sha256sum', 'shasum', 'curl', 'wget'];
const without = (...missing: string[]): string[] => TOOLS.filter((tool) => !missing.includes(tool));
/** A release of the real binary, and one of a small stand-in that prints the same version. */
let real: string;
let small: string;

before(() => {
  real = releaseOf(BINARY);
  small = releaseOf(fakeBinary(`${VERSION} (stand-in)`));
});

/**
 * `sh install.sh ARGS` as a user runs the copy they downloaded, with `env` over a clean one; the release comes
 * from `env.LATTICE_INSTALL_BASE`, else the small one.
 */
function install(args: readonly string[], env: NodeJS.ProcessEnv = {}, asNobody = false): ReturnType<typeof run> {
  return run('sh', [join(small, 'install.sh'), ...args], { env: cleanEnv({ LATTICE_INSTALL_BASE: small, ...env }), asNobody });
}

function port(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** The installed binary runs and says it is this version. */
function assertRuns(binary: string): void {
  const version = run(binary, ['--version']);
  assert.equal(version.status, 0, version.stderr);
  assert.match(version.stdout, new RegExp(`^${VERSION.replaceAll('.', '\\.')} \\(`));
  assert.equal(statSync(binary).mode & 0o777, 0o755);
}

/** A copy of the release whose SHA256SUMS and tarball `change` may alter. */
function alteredRelease(change: (dir: string) => void): string {
  const dir = tempDir('lattice-altered-');
  cpSync(small, dir, { recursive: true });
  change(dir);
  return dir;
}

function assertRefused(result: ReturnType<typeof run>, prefix: string, message: RegExp): void {
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stdout, /installed/);
  const files = readdirSync(prefix, { recursive: true, encoding: 'utf8' }).filter((f) => !statSync(join(prefix, f)).isDirectory());
  assert.deepEqual(files, [], 'nothing was installed');
}

describe('install.sh', () => {
  it('installs from a directory into --prefix/bin; the binary runs and prints the version', () => {
    const prefix = tempDir('lattice-prefix-');
    const result = install(['--prefix', prefix], { LATTICE_INSTALL_BASE: real });
    assert.equal(result.status, 0, result.stderr);
    assertRuns(join(prefix, 'bin', 'lattice'));
    assert.equal(sha256File(join(prefix, 'bin', 'lattice')), sha256File(BINARY));
    assert.match(result.stdout, new RegExp(`verified +${TARBALL.replaceAll('.', '\\.')}: SHA-256 ${readSums(join(real, 'SHA256SUMS')).get(TARBALL)} matches SHA256SUMS`));
    assert.match(result.stdout, new RegExp(`installed +${prefix}/bin/lattice`));
    assert.match(result.stdout, /lattice up/);
    assert.equal(result.stderr, '');
  });

  it('installs from a file:// URL into ~/.local/bin, with a PATH hint until that is on PATH', () => {
    const home = tempDir('lattice-home-');
    const first = install([], { HOME: home, LATTICE_INSTALL_BASE: pathToFileURL(real).href });
    assert.equal(first.status, 0, first.stderr);
    const bin = join(home, '.local', 'bin');
    assertRuns(join(bin, 'lattice'));
    assert.match(first.stdout, new RegExp(`${bin} is not on your PATH[^\\n]*\\n +export PATH="${bin}:\\$PATH"`));

    // Again, over the first install, with the bin directory on PATH and the release named by --base.
    const again = install(['--base', pathToFileURL(small).href], { HOME: home, LATTICE_INSTALL_BASE: '', PATH: `${bin}:${process.env['PATH']}` });
    assert.equal(again.status, 0, again.stderr);
    assertRuns(join(bin, 'lattice'));
    assert.doesNotMatch(again.stdout, /not on your PATH/);
    assert.match(again.stdout, /Start the gate: lattice up/);
    assert.deepEqual(readdirSync(bin), ['lattice'], 'no staging file is left behind');
  });

  it('installs as a normal user (uid 65534) without root, and refuses a directory that user cannot write', () => {
    const prefix = nobodyDir('lattice-prefix-');
    const result = install(['--prefix', prefix], { HOME: prefix, TMPDIR: prefix }, true);
    assert.equal(result.status, 0, result.stderr);
    assertRuns(join(prefix, 'bin', 'lattice'));
    if (isRoot) assert.equal(statSync(join(prefix, 'bin', 'lattice')).uid, NOBODY);

    const readOnly = nobodyDir('lattice-readonly-');
    chmodSync(readOnly, 0o555);
    const uncreatable = install(['--prefix', readOnly], { HOME: prefix, TMPDIR: prefix }, true);
    assertRefused(uncreatable, readOnly, /cannot create .*\/bin: choose a --prefix you own \(this installer never needs root; do not run it with sudo\)/);

    const lockedBin = nobodyDir('lattice-locked-bin-');
    mkdirSync(join(lockedBin, 'bin'), { mode: 0o555 });
    const unwritable = install(['--prefix', lockedBin], { HOME: prefix, TMPDIR: prefix }, true);
    assert.equal(unwritable.status, 1, unwritable.stdout);
    assert.match(unwritable.stderr, /\/bin is not writable by \S+: choose a --prefix you own/);
    assert.deepEqual(readdirSync(join(lockedBin, 'bin')), []);
  });

  it('refuses a tarball whose bytes changed after SHA256SUMS was written, naming both hashes', () => {
    const tampered = alteredRelease((dir) => {
      const bytes = readFileSync(join(dir, TARBALL));
      const at = bytes.length - 100; // inside the compressed data: the archive's bytes change, its name does not
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
      writeFileSync(join(dir, TARBALL), bytes);
    });
    const prefix = tempDir('lattice-prefix-');
    const expected = readSums(join(tampered, 'SHA256SUMS')).get(TARBALL)!;
    const result = install(['--prefix', prefix], { LATTICE_INSTALL_BASE: tampered });
    assertRefused(result, prefix, new RegExp(`SHA-256 mismatch for ${TARBALL.replaceAll('.', '\\.')}: SHA256SUMS says ${expected}, the file is [0-9a-f]{64}\\. Nothing was installed`));
  });

  it('refuses a tarball that SHA256SUMS does not list, lists twice, or a release without SHA256SUMS', () => {
    const cases: [(dir: string) => void, RegExp][] = [
      [(dir) => writeFileSync(join(dir, 'SHA256SUMS'), readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split('\n').filter((l) => !l.endsWith(TARBALL)).join('\n')), /is not listed in SHA256SUMS: refusing/],
      [(dir) => writeFileSync(join(dir, 'SHA256SUMS'), `${'0'.repeat(64)}  ${TARBALL}\n${readFileSync(join(dir, 'SHA256SUMS'), 'utf8')}`), /no single well-formed SHA-256 line for/],
      [(dir) => writeFileSync(join(dir, 'SHA256SUMS'), `${'0'.repeat(63)}  ${TARBALL}\n`), /no single well-formed SHA-256 line for/],
      [(dir) => writeFileSync(join(dir, 'SHA256SUMS'), ''), /is not listed in SHA256SUMS/],
      [(dir) => rmSync(join(dir, 'SHA256SUMS')), /SHA256SUMS does not exist/],
    ];
    for (const [change, message] of cases) {
      const prefix = tempDir('lattice-prefix-');
      assertRefused(install(['--prefix', prefix], { LATTICE_INSTALL_BASE: alteredRelease(change) }), prefix, message);
    }
  });

  it('refuses to install unverified when neither sha256sum nor shasum exists', () => {
    const prefix = tempDir('lattice-prefix-');
    const result = install(['--prefix', prefix], { PATH: pathOf(without('sha256sum', 'shasum')) });
    assertRefused(result, prefix, /no SHA-256 tool found \(sha256sum or shasum\)/);
  });

  it('uses shasum -a 256 where sha256sum is missing', () => {
    const prefix = tempDir('lattice-prefix-');
    const result = install(['--prefix', prefix], { PATH: pathOf(without('sha256sum')) });
    assert.equal(result.status, 0, result.stderr);
    assertRuns(join(prefix, 'bin', 'lattice'));
  });

  it('names an operating system or processor it has no build for', () => {
    const cases: [string, RegExp][] = [
      ['[ "$1" = -s ] && echo FreeBSD || echo amd64', /unsupported operating system 'FreeBSD' \(uname -s\)/],
      ['[ "$1" = -s ] && echo Linux || echo riscv64', /unsupported processor 'riscv64' \(uname -m\)/],
    ];
    for (const [uname, message] of cases) {
      const prefix = tempDir('lattice-prefix-');
      assertRefused(install(['--prefix', prefix], { PATH: pathOf(without('uname'), { uname }) }), prefix, message);
    }
  });

  it('refuses plain http, unknown schemes, bad versions and unknown arguments', () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [[], { LATTICE_INSTALL_BASE: 'http://example.test/lattice' }, /is plain http: .*use https:\/\//],
      [['--base', 'ftp://example.test/lattice'], {}, /is not an https:\/\/ or file:\/\/ URL or a directory/],
      [['--base', 'file://relative/dir'], {}, /is not a file:\/\/ URL of an absolute path/],
      [['--base', 'file:///tmp/with%20space'], {}, /has %-escapes/],
      [['--version', '1.0;rm'], {}, /--version must look like 0\.1\.0 or 'latest'/],
      [['--prefix'], {}, /--prefix needs a value/],
      [['--frobnicate'], {}, /unknown argument '--frobnicate'/],
    ];
    for (const [args, env, message] of cases) {
      const prefix = tempDir('lattice-prefix-');
      assertRefused(install(['--prefix', prefix, ...args], env), prefix, message);
    }
  });

  it('refuses a binary that is not the version asked for', () => {
    const prefix = tempDir('lattice-prefix-');
    assertRefused(install(['--prefix', prefix, '--version', '9.9.9']), prefix, /asked for 9\.9\.9, but the downloaded binary says/);
    const right = install(['--prefix', prefix, '--version', `v${VERSION}`]);
    assert.equal(right.status, 0, right.stderr);
  });

  it('downloads over HTTPS with curl or wget, and refuses a redirect to plain http with either', async () => {
    const dir = tempDir('lattice-tls-');
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    assert.equal(made.status, 0, `openssl failed: ${made.error?.message ?? made.stderr}`);
    const wgetrc = join(dir, 'wgetrc');
    writeFileSync(wgetrc, `ca_certificate = ${cert}\n`);

    // The release's files over HTTPS under /v0/; under /downgrade/, a redirect to the same file over plain http.
    const files = readdirSync(small);
    const served: string[] = [];
    const serve = (name: string, response: ServerResponse, label = name): void => {
      served.push(label);
      if (files.includes(name)) response.writeHead(200).end(readFileSync(join(small, name)));
      else response.writeHead(404).end();
    };
    const plain = createHttpServer((request, response) => {
      const name = (request.url ?? '').slice(1);
      serve(name, response, `http:${name}`);
    });
    const tls = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (request, response) => {
      const [, route, name] = /^\/(v0|downgrade)\/(.*)$/.exec(request.url ?? '') ?? [];
      if (route === 'downgrade') response.writeHead(302, { location: `http://127.0.0.1:${port(plain)}/${name}` }).end();
      else serve(name ?? '', response);
    });
    await Promise.all([plain, tls].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
    try {
      const base = `https://127.0.0.1:${port(tls)}`;
      for (const tool of ['curl', 'wget']) {
        const env = cleanEnv({ PATH: pathOf(without(tool === 'curl' ? 'wget' : 'curl')), CURL_CA_BUNDLE: cert, WGETRC: wgetrc });
        const prefix = tempDir('lattice-prefix-');
        const result = await runAsync('sh', [join(small, 'install.sh'), '--prefix', prefix, '--base', `${base}/v0`], env);
        assert.equal(result.status, 0, `${tool}: ${result.stderr}`);
        assertRuns(join(prefix, 'bin', 'lattice'));

        const downgraded = tempDir('lattice-prefix-');
        const refused = await runAsync('sh', [join(small, 'install.sh'), '--prefix', downgraded, '--base', `${base}/downgrade`], env);
        assertRefused(refused, downgraded, tool === 'curl' ? /could not download https:\/\/127\.0\.0\.1:\d+\/downgrade\/SHA256SUMS \(curl failed/ : /downgrade\/SHA256SUMS redirected to plain http: refusing it/);

        const missing = await runAsync('sh', [join(small, 'install.sh'), '--prefix', downgraded, '--base', `${base}/v0/nothing-here`], env);
        assertRefused(missing, downgraded, /could not download https:\/\/127\.0\.0\.1:\d+\/v0\/nothing-here\/SHA256SUMS/);
      }
      // curl never followed the redirect; wget did, and its log gave it away before anything was verified or run.
      assert.deepEqual(served, ['SHA256SUMS', TARBALL, 'nothing-here/SHA256SUMS', 'SHA256SUMS', TARBALL, 'http:SHA256SUMS', 'nothing-here/SHA256SUMS']);
    } finally {
      tls.close();
      plain.close();
    }
  });

  it('passes shellcheck', () => {
    const result = run('shellcheck', [join(small, 'install.sh')]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.equal(result.stdout, '');
  });
});
