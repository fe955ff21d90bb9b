/**
 * The provider runner's checks, each shown to refuse and to allow: publisher signatures, the shape of a plan, the
 * memory cap written into a module, the signed transpile cache, and the release signature of a built-in.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ActionRegistry } from '../../core/actions/registry.ts';
import { loadConfig } from '../../core/config/config.ts';
import { generateEd25519, loadEd25519PrivateKey, sha256Hex, signEd25519 } from '../../core/crypto/index.ts';
import { ensureHome, homePaths } from '../../core/home.ts';
import { KeyRing } from '../../core/keys/keyring.ts';
import { checkSignature, checkSignatureText, parseSignature, signBytes } from '../../core/trust/signature.ts';
import { RELEASE_KEY } from '../../core/trust/release-key.ts';
import { providerRunner } from '../../providers/index.ts';
import { parsePlan } from '../../providers/runner/plan.ts';
import { ComponentCache } from '../../providers/runner/transpile.ts';
import { MemoryLimitError, limitMemory } from '../../providers/runner/wasm-memory.ts';
import { parseWat } from '../../scripts/jco-tools.ts';
import { ROOT, rejectsWithCode, tempDir } from '../helpers.ts';
import { component, returnsOk } from './components.ts';

declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { grow: (pages: number) => number } };
};

describe('provider runner checks', () => {
  it('accepts a publisher signature over these bytes, and refuses other bytes, kinds, keys and signatures', () => {
    const publisher = generateEd25519();
    const trusted = [{ name: 'acme', keyId: publisher.keyId, publicKey: publisher.publicKey }];
    const bytes = Buffer.from('component bytes');
    const doc = signBytes(bytes, 'component', publisher.privateKeyPem);
    assert.deepEqual(parseSignature(JSON.stringify(doc)), doc);
    const good = checkSignature(bytes, 'component', doc, trusted);
    assert.equal(good.ok && good.publisher.name, 'acme');

    const refused = (check: ReturnType<typeof checkSignature>, message: RegExp) => {
      assert.equal(check.ok, false);
      if (!check.ok) assert.match(check.message, message);
    };
    refused(checkSignature(Buffer.from('other bytes'), 'component', doc, trusted), /for other bytes/);
    refused(checkSignature(bytes, 'manifest', doc, trusted), /for a component, not a manifest/);
    refused(checkSignature(bytes, 'component', doc, []), /is not trusted/);
    const impostor = generateEd25519();
    refused(checkSignature(bytes, 'component', doc, [{ ...trusted[0]!, publicKey: impostor.publicKey }]), /does not match trusted publisher/);
    const forged = { ...doc, signature: signBytes(Buffer.from('x'), 'component', publisher.privateKeyPem).signature };
    refused(checkSignature(bytes, 'component', forged, trusted), /does not verify/);
    assert.equal(parseSignature('not json'), null);
    assert.equal(parseSignature(JSON.stringify({ ...doc, v: 2 })), null);
    // The text of a .sig file: checked the same way, and refused when it is not a signature document at all.
    assert.equal(checkSignatureText(bytes, 'component', JSON.stringify(doc), trusted).ok, true);
    refused(checkSignatureText(bytes, 'component', 'not json', trusted), /not a lattice signature document/);
  });

  it("accepts a plan of lattice's effects (the host sizes and hashes a write), and refuses anything else", () => {
    const ok = parsePlan(JSON.stringify({ effects: [{ kind: 'fs.write', path: 'a.txt', content: 'hé' }, { kind: 'fs.read', path: 'b' }] }));
    assert.deepEqual(ok, { ok: true, effects: [{ kind: 'fs.write', path: 'a.txt', content: 'hé', bytes: 3, sha256: sha256Hex('hé') }, { kind: 'fs.read', path: 'b' }] });
    const http = { kind: 'http', method: 'GET', url: 'https://example.com/', headers: {}, body: null, secrets: [] };
    assert.equal(parsePlan(JSON.stringify({ effects: [http] })).ok, true);
    for (const bad of [
      'not json',
      '{}',
      JSON.stringify({ effects: [{ kind: 'shell', command: 'rm -rf' }] }),
      JSON.stringify({ effects: [{ ...http, method: 'TRACE' }] }),
      JSON.stringify({ effects: [{ kind: 'fs.write', path: 'a', content: 'x', sha256: 'lie' }] }),
      JSON.stringify({ effects: Array.from({ length: 17 }, () => ({ kind: 'fs.read', path: 'a' })) }),
      JSON.stringify({ effects: [], extra: true }),
    ]) {
      assert.equal(parsePlan(bad).ok, false, bad.slice(0, 80));
    }
  });

  it('caps the memory a module defines, refuses one that needs more at start, and leaves one without memory alone', async () => {
    const grower = await parseWat('(module (memory 1) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))');
    const uncapped = new WebAssembly.Instance(new WebAssembly.Module(grower));
    assert.equal(uncapped.exports.grow(8), 1, 'without the cap the module grows');
    const capped = new WebAssembly.Instance(new WebAssembly.Module(limitMemory(grower, 4)));
    assert.equal(capped.exports.grow(2), 1);
    assert.equal(capped.exports.grow(2), -1, 'past 4 pages memory.grow fails');
    assert.throws(() => limitMemory(grower, 0), MemoryLimitError);
    const declared = await parseWat('(module (memory 1 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))');
    assert.equal(new WebAssembly.Instance(new WebAssembly.Module(limitMemory(declared, 64))).exports.grow(2), -1, 'a smaller declared maximum is kept');
    const none = await parseWat('(module (func (export "f")))');
    assert.equal(limitMemory(none, 4), none);
  });

  it('reuses a cache entry signed by the home, and discards one that is altered or unsigned', async () => {
    const paths = homePaths(tempDir());
    ensureHome(paths);
    const keys = KeyRing.open(paths, { create: true });
    const dir = join(paths.root, 'cache', 'providers');
    const cache = new ComponentCache(dir, { signer: keys.active, publicKeys: keys.publicKeys });
    const ok = returnsOk('{"effects":[]}');
    const bytes = await component(ok.body, { data: ok.data });
    const sha256 = sha256Hex(bytes);
    await rejectsWithCode(cache.prepare(bytes, sha256Hex('other'), 'c.wasm'), 'COMPONENT_INVALID', /c\.wasm has sha256 .* but the manifest pins/);
    const first = await cache.prepare(bytes, sha256, 'c.wasm');
    const glue = join(dir, sha256, 'provider.js');
    assert.equal(readFileSync(glue, 'utf8'), first.glue);

    writeFileSync(glue, 'export function instantiate() { return "attacker code"; }');
    assert.equal((await cache.prepare(bytes, sha256, 'c.wasm')).glue, first.glue, 'an altered entry is not used');
    assert.equal(readFileSync(glue, 'utf8'), first.glue, 'and is transpiled again');

    writeFileSync(glue, `${first.glue}\n// edited`);
    const index = join(dir, sha256, 'index.json');
    const indexed = JSON.parse(readFileSync(index, 'utf8')) as { files: Record<string, string> };
    indexed.files['provider.js'] = sha256Hex(`${first.glue}\n// edited`);
    writeFileSync(index, JSON.stringify(indexed)); // consistent with the edit, but no longer what the home signed
    assert.equal((await cache.prepare(bytes, sha256, 'c.wasm')).glue, first.glue, 'an index the home did not sign is not used');

    rmSync(join(dir, sha256, 'index.sig'));
    assert.equal((await cache.prepare(bytes, sha256, 'c.wasm')).glue, first.glue);
    assert.ok(readFileSync(join(dir, sha256, 'index.sig'), 'utf8').includes(keys.active.keyId), 'an unsigned entry is replaced by a signed one');
  });

  it('retired-key-cache: an entry re-signed with the retired key after a rotation is not used', async () => {
    const paths = homePaths(tempDir());
    ensureHome(paths);
    const keys = KeyRing.open(paths, { create: true });
    const stolen = loadEd25519PrivateKey(readFileSync(join(paths.keys, `${keys.active.keyId}.pem`), 'utf8'));
    const dir = join(paths.root, 'cache', 'providers');
    const live = {
      get signer() {
        return keys.active;
      },
      get publicKeys() {
        return keys.publicKeys;
      },
    };
    const cache = new ComponentCache(dir, live);
    const ok = returnsOk('{"effects":[]}');
    const bytes = await component(ok.body, { data: ok.data });
    const sha256 = sha256Hex(bytes);
    const first = await cache.prepare(bytes, sha256, 'c.wasm');
    keys.rotate(2);
    // Whoever kept a copy of the retired key rewrites the glue, makes the index match and signs it with that key.
    const attacker = 'export function instantiate() { return "attacker code"; }';
    const indexFile = join(dir, sha256, 'index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as { files: Record<string, string> };
    index.files['provider.js'] = sha256Hex(attacker);
    const indexText = JSON.stringify(index);
    writeFileSync(join(dir, sha256, 'provider.js'), attacker);
    writeFileSync(indexFile, indexText);
    writeFileSync(join(dir, sha256, 'index.sig'), JSON.stringify({ keyId: stolen.keyId, signature: signEd25519(stolen.key, indexText) }));
    assert.equal((await cache.prepare(bytes, sha256, 'c.wasm')).glue, first.glue, 'the retired key vouches for no cache entry');
    assert.ok(readFileSync(join(dir, sha256, 'index.sig'), 'utf8').includes(keys.active.keyId), 'the entry is made again under the new key');
    assert.notEqual(keys.active.keyId, stolen.keyId);
  });

  it('loads a built-in whose release signature covers its bytes, and refuses one whose bytes changed', async () => {
    const paths = homePaths(tempDir());
    const { config } = loadConfig(paths, undefined);
    const echo = ActionRegistry.load(paths, { fsRoot: tempDir(), httpHosts: [] }).get('echo');
    const workerUrl = new URL(`file://${join(ROOT, 'providers/runner/worker.ts')}`);
    const genuine = providerRunner({ workerUrl, builtinDir: join(ROOT, 'providers/components') }, { paths, keys: null, config });
    const loaded = await genuine.load(echo);
    const doc = parseSignature(readFileSync(join(ROOT, 'providers/components/echo.wasm.sig'), 'utf8'));
    assert.equal(loaded.sha256, doc?.sha256);
    assert.equal(doc?.publisher, RELEASE_KEY.keyId);
    await genuine.close();

    const altered = tempDir();
    mkdirSync(altered, { recursive: true });
    copyFileSync(join(ROOT, 'providers/components/echo.wasm.sig'), join(altered, 'echo.wasm.sig'));
    writeFileSync(join(altered, 'echo.wasm'), Buffer.concat([readFileSync(join(ROOT, 'providers/components/echo.wasm')), Buffer.from([0])]));
    const tampered = providerRunner({ workerUrl, builtinDir: altered }, { paths, keys: null, config });
    await rejectsWithCode(tampered.load(echo), 'SIGNATURE_INVALID', /built-in echo: the signature is for other bytes/);
    rmSync(join(altered, 'echo.wasm.sig'));
    await rejectsWithCode(tampered.load(echo), 'SIGNATURE_INVALID', /built-in echo has no readable release signature/);
    await tampered.close();
  });
});
