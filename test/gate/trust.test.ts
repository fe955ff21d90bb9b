/**
 * Trust in providers and manifests, through the `lattice` command as an operator uses it: trusted publishers,
 * signed components and manifests, `--allow-unsigned`, and the ledger events each decision leaves.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../core/crypto/index.ts';
import { lattice, latticeJson, tempDir } from '../helpers.ts';
import { component, returnsOk, wasiComponent } from '../providers/components.ts';
import { asOperator, codeOf, gate } from './harness.ts';

type Payload = Record<string, unknown>;

function events(home: string, type: string): Payload[] {
  return latticeJson<{ events: { payload: Payload }[] }>(['audit', '--home', home, '--type', type, '--limit', '100']).json.events.map((e) => e.payload);
}

/** A publisher: a key pair made by `lattice publishers keygen`, and its public key. */
function publisher(dir: string, name: string): { key: string; publicKey: string; keyId: string } {
  const key = join(dir, `${name}.pem`);
  const made = latticeJson<{ publicKey: string; keyId: string }>(['publishers', 'keygen', '--out', key]);
  assert.equal(made.status, 0, made.stderr);
  return { key, ...made.json };
}

/**
 * `lattice publishers add|rm` with the positionals after `--`: a base64url key or key id may begin with `-`, which
 * the command line would otherwise read as an option.
 */
function publishers(verb: 'add' | 'rm', home: string, ...args: string[]): ReturnType<typeof lattice> {
  return lattice(['publishers', verb, '--home', home, '--', ...args]);
}

function sign(file: string, key: string): void {
  const signed = lattice(['publishers', 'sign', file, '--key', key]);
  assert.equal(signed.status, 0, signed.stderr);
}

const manifest = (id: string, version = '1.0.0') => `id = "${id}"\nversion = "${version}"\ndescription = "a third-party action"\nrisk = "low"\n[provider]\nbuiltin = "echo"\n[request.schema]\ntype = "object"\n`;

describe('trusted publishers', () => {
  it('adds, lists and removes publishers, records each change, and refuses bad keys, duplicates and removing the release key', () => {
    const dir = tempDir();
    const home = join(dir, 'home');
    const acme = publisher(dir, 'acme');

    assert.deepEqual(latticeJson<{ publishers: { name: string }[] }>(['publishers', 'list', '--home', home]).json.publishers.map((p) => p.name), ['lattice release']);
    const added = lattice(['publishers', 'add', '--json', '--home', home, '--', 'acme', acme.publicKey]);
    assert.equal(added.status, 0, added.stderr);
    assert.equal((JSON.parse(added.stdout) as { keyId: string }).keyId, acme.keyId);
    const listed = latticeJson<{ publishers: { name: string; keyId: string; source: string }[] }>(['publishers', 'list', '--home', home]).json.publishers;
    assert.deepEqual(
      listed.map((p) => [p.name, p.source]),
      [
        ['lattice release', 'builtin'],
        ['acme', 'home'],
      ],
    );

    // A key given as a file works too; a second name for the same key, a non-key and the release key are refused.
    const other = publisher(dir, 'other');
    writeFileSync(join(dir, 'other.pub'), `${other.publicKey}\n`);
    assert.equal(publishers('add', home, 'other', join(dir, 'other.pub')).status, 0);
    const duplicate = publishers('add', home, 'acme-again', acme.publicKey);
    assert.equal(duplicate.status, 2);
    assert.match(duplicate.stderr, /already trusted: acme/);
    const notKey = publishers('add', home, 'junk', 'not-a-key');
    assert.equal(notKey.status, 2);
    assert.match(notKey.stderr, /not an Ed25519 public key/);
    const release = publishers('rm', home, 'lattice release');
    assert.equal(release.status, 2);
    assert.match(release.stderr, /release key.*cannot be removed/);

    assert.equal(publishers('rm', home, acme.keyId).status, 0);
    assert.deepEqual(latticeJson<{ publishers: { name: string }[] }>(['publishers', 'list', '--home', home]).json.publishers.map((p) => p.name), ['lattice release', 'other']);
    assert.deepEqual(
      events(home, 'publisher.added').map((p) => p['name']),
      ['other', 'acme'],
    );
    assert.deepEqual(
      events(home, 'publisher.removed').map((p) => p['keyId']),
      [acme.keyId],
    );

    // A damaged trust list is refused whole, never half-read.
    writeFileSync(join(home, 'publishers.json'), readFileSync(join(home, 'publishers.json'), 'utf8').replace(other.keyId, acme.keyId));
    const damaged = lattice(['publishers', 'list', '--home', home]);
    assert.equal(damaged.status, 2);
    assert.match(damaged.stderr, /keyId is not the thumbprint of its key/);
  });
});

describe('signed action manifests', () => {
  it('installs a manifest signed by a trusted publisher, refuses unsigned, untrusted and altered ones, and records --allow-unsigned', () => {
    const dir = tempDir();
    const home = join(dir, 'home');
    const acme = publisher(dir, 'acme');
    const stranger = publisher(dir, 'stranger');
    assert.equal(publishers('add', home, 'acme', acme.publicKey).status, 0);
    const file = join(dir, 'acme.hello.toml');
    writeFileSync(file, manifest('acme.hello'));
    const installed = (id: string) => existsSync(join(home, 'actions', `${id}.toml`));

    const unsigned = lattice(['actions', 'add', file, '--home', home]);
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stderr, /is not signed .*--allow-unsigned/);
    sign(file, stranger.key);
    const untrusted = lattice(['actions', 'add', file, '--home', home]);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /publisher .* is not trusted/);
    assert.equal(installed('acme.hello'), false);

    sign(file, acme.key);
    const signed = latticeJson<{ publisher: { name: string } | null; allowUnsigned: boolean; registered: boolean }>(['actions', 'add', file, '--home', home]);
    assert.equal(signed.status, 0, signed.stderr);
    assert.equal(signed.json.publisher?.name, 'acme');
    assert.equal(signed.json.registered, false, 'no gate is running: installed for the next start');
    assert.equal(installed('acme.hello'), true);
    assert.ok(existsSync(join(home, 'actions', 'acme.hello.toml.sig')));

    // Changed after signing: refused, even with --allow-unsigned, since the signature says these are not its bytes.
    writeFileSync(file, manifest('acme.hello', '2.0.0'));
    const altered = lattice(['actions', 'add', file, '--allow-unsigned', '--home', home]);
    assert.equal(altered.status, 1);
    assert.match(altered.stderr, /the signature is for other bytes/);
    assert.match(readFileSync(join(home, 'actions', 'acme.hello.toml'), 'utf8'), /version = "1.0.0"/);

    const own = join(dir, 'own.tool.toml');
    writeFileSync(own, manifest('own.tool'));
    assert.equal(lattice(['actions', 'add', own, '--allow-unsigned', '--home', home]).status, 0);

    const recorded = events(home, 'action.installed');
    assert.deepEqual(
      recorded.map((p) => [p['id'], p['publisherName'], p['allowUnsigned']]),
      [
        ['own.tool', null, true],
        ['acme.hello', 'acme', false],
      ],
    );
    assert.equal(recorded[0]?.['sha256'], sha256Hex(readFileSync(own)));
    // Each refusal is recorded too, with the code and the hash of the bytes that were refused.
    assert.deepEqual(
      events(home, 'action.refused').map((p) => p['code']),
      ['SIGNATURE_INVALID', 'SIGNATURE_INVALID', 'SIGNATURE_MISSING'],
    );
  });

  it('a running gate makes the same decision through the admin API and registers the manifest at once', async () => {
    const g = await gate();
    const dir = tempDir();
    const acme = publisher(dir, 'acme');
    assert.equal(publishers('add', g.home, 'acme', acme.publicKey).status, 0);
    const file = join(dir, 'acme.live.toml');
    writeFileSync(file, manifest('acme.live'));

    const unsigned = await asOperator(g, 'POST', '/api/v1/actions', { manifest: manifest('acme.live') });
    assert.equal(unsigned.status, 400);
    assert.equal(codeOf(unsigned), 'SIGNATURE_MISSING');
    sign(file, acme.key);
    const forged = await asOperator(g, 'POST', '/api/v1/actions', { manifest: manifest('acme.live', '9.9.9'), signature: readFileSync(`${file}.sig`, 'utf8') });
    assert.equal(codeOf(forged), 'SIGNATURE_INVALID');
    assert.equal((await asOperator(g, 'GET', '/api/v1/actions/acme.live')).status, 404, 'nothing was registered');

    const added = latticeJson<{ registered: boolean; publisher: { name: string } }>(['actions', 'add', file, '--home', g.home]);
    assert.equal(added.status, 0, added.stderr);
    assert.deepEqual([added.json.registered, added.json.publisher.name], [true, 'acme']);
    assert.equal((await asOperator(g, 'GET', '/api/v1/actions/acme.live')).status, 200);
    assert.equal(lattice(['down', '--home', g.home]).status, 0);
  });
});

describe('lattice providers', () => {
  it('installs a signed component, refuses WASI imports, unsigned and untrusted ones, and lists and inspects what is installed', async () => {
    const dir = tempDir();
    const home = join(dir, 'home');
    const acme = publisher(dir, 'acme');
    assert.equal(publishers('add', home, 'acme', acme.publicKey).status, 0);
    const empty = returnsOk('{"effects":[]}');
    const good = join(dir, 'acme-tool.wasm');
    writeFileSync(good, await component(empty.body, { data: empty.data }));
    const wasi = join(dir, 'reader.wasm');
    writeFileSync(wasi, await wasiComponent());
    const installed = (name: string) => existsSync(join(home, 'providers', name));

    // A component that imports WASI is refused with its hash and the imports it asks for, signed or not.
    sign(wasi, acme.key);
    const refused = lattice(['providers', 'add', wasi, '--allow-unsigned', '--home', home]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, new RegExp(`sha256 ${sha256Hex(readFileSync(wasi))}`));
    assert.match(refused.stderr, /imports wasi:filesystem\/preopens; a provider may import only log/);
    assert.match(refused.stderr, /import wasi:filesystem\/preopens@0\.2\.0/);
    assert.equal(installed('reader.wasm'), false);

    const unsigned = lattice(['providers', 'add', good, '--home', home]);
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stderr, /is not signed/);
    const stranger = publisher(dir, 'stranger');
    sign(good, stranger.key);
    assert.match(lattice(['providers', 'add', good, '--home', home]).stderr, /is not trusted/);
    assert.equal(installed('acme-tool.wasm'), false);

    sign(good, acme.key);
    const add = latticeJson<{ sha256: string; imports: string[]; publisher: { name: string } }>(['providers', 'add', good, '--home', home]);
    assert.equal(add.status, 0, add.stderr);
    assert.equal(add.json.sha256, sha256Hex(readFileSync(good)));
    assert.deepEqual(add.json.imports, []);
    assert.equal(add.json.publisher.name, 'acme');
    assert.equal(installed('acme-tool.wasm'), true);

    // Other bytes under an installed name need --replace; --allow-unsigned installs and is recorded.
    const other = join(dir, 'other.wasm');
    writeFileSync(other, await component(`(drop (memory.grow (i32.const 0))) ${empty.body}`, { data: empty.data }));
    const clash = lattice(['providers', 'add', other, '--name', 'acme-tool.wasm', '--allow-unsigned', '--home', home]);
    assert.equal(clash.status, 2);
    assert.match(clash.stderr, /already installed with other bytes.*--replace/);
    assert.equal(lattice(['providers', 'add', other, '--allow-unsigned', '--home', home]).status, 0);

    assert.deepEqual(
      events(home, 'provider.refused').map((p) => [p['file'], p['code']]),
      [
        ['acme-tool.wasm', 'SIGNATURE_INVALID'],
        ['acme-tool.wasm', 'SIGNATURE_MISSING'],
        ['reader.wasm', 'COMPONENT_INVALID'],
      ],
    );
    assert.equal(events(home, 'provider.refused')[2]?.['sha256'], sha256Hex(readFileSync(wasi)));
    const recorded = events(home, 'provider.installed');
    assert.deepEqual(
      recorded.map((p) => [p['component'], p['sha256'], p['publisherName'], p['allowUnsigned']]),
      [
        ['other.wasm', sha256Hex(readFileSync(other)), null, true],
        ['acme-tool.wasm', add.json.sha256, 'acme', false],
      ],
    );

    const list = latticeJson<{ components: { name: string; source: string; signature: { state: string; publisher?: string } }[] }>(['providers', 'list', '--home', home]).json.components;
    assert.deepEqual(
      list.filter((c) => c.source === 'home').map((c) => [c.name, c.signature.state, c.signature.publisher]),
      [
        ['acme-tool.wasm', 'signed', 'acme'],
        ['other.wasm', 'unsigned', undefined],
      ],
    );
    assert.ok(list.filter((c) => c.source === 'builtin').every((c) => c.signature.publisher === 'lattice release'));
    const inspect = latticeJson<{ name: string; exports: string[]; wit: string }>(['providers', 'inspect', add.json.sha256.slice(0, 12), '--home', home]);
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.equal(inspect.json.name, 'acme-tool.wasm');
    assert.deepEqual(inspect.json.exports, ['finish', 'plan']);
    assert.match(inspect.json.wit, /export plan: func\(request: string\) -> result<string, string>/);
    // As text, the WIT keeps its lines (each line's control characters are still escaped).
    const text = lattice(['providers', 'inspect', add.json.sha256.slice(0, 12), '--home', home]);
    assert.match(text.stdout, /\nworld root \{\n {2}export plan: func/);
  });
});
