/**
 * Turns a component's bytes into what a worker instantiates: jco's glue (sync instantiation, no WASI shim, no
 * Node.js compatibility code) and the core modules it asks for. Done once per component hash and cached under
 * `$LATTICE_HOME/cache/providers/<sha256>/`.
 *
 * The glue is JavaScript that runs in the provider worker, so a cache entry is trusted only when its index (file
 * names and hashes) carries a valid signature by this home's active signing key, every file matches the index,
 * and every core module is a byte range of the component itself. Anything else is discarded and transpiled again
 * (after a key rotation, every entry once).
 *
 * jco is pinned to 1.10.2: its glue costs ~88 ns per host call, where later versions read process.env on each
 * call (~20 µs). Only the bindings generator is loaded, and only on a cache miss.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type * as JcoBindgen from '@bytecodealliance/jco/component';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { canonicalize } from '../../core/canonical.ts';
import { randomToken, sha256Hex, verifyEd25519 } from '../../core/crypto/index.ts';
import { LatticeError, describeError } from '../../core/errors.ts';
import { inBinary, shippedTree } from '../../core/runtime.ts';
import type { Signer } from '../../core/keys/keyring.ts';
import type { PublicKeySet } from '../../core/keys/keyset.ts';

/** The only import a provider may have (lattice:provider's `log`), and the exports it must have. */
export const ALLOWED_IMPORTS: readonly string[] = ['log'];
export const REQUIRED_EXPORTS: readonly string[] = ['finish', 'plan'];

export interface PreparedComponent {
  readonly sha256: string;
  /** ES module source exporting jco's `instantiate(getCoreModule, imports)`. */
  readonly glue: string;
  /** Core modules by the name the glue asks for. */
  readonly modules: readonly (readonly [string, Uint8Array])[];
  readonly imports: readonly string[];
  readonly exports: readonly string[];
}

interface CacheIndex {
  readonly v: 1;
  readonly component: string;
  readonly imports: readonly string[];
  readonly exports: readonly string[];
  /** File name → SHA-256; `provider.js` is the glue, the rest are core modules. */
  readonly files: Readonly<Record<string, string>>;
}

const GLUE = 'provider.js';

export interface CacheKeys {
  readonly signer: Signer;
  readonly publicKeys: PublicKeySet;
}

/** A module of the copy of jco's package that the binary carries (written to its cache on first use). */
async function carriedJco<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(shippedTree('jco'), 'node_modules', '@bytecodealliance', 'jco', path)).href)) as T;
}

/** What jco's bindings generator reports for a component: its imports and exports, and the generated files. */
async function generate(bytes: Uint8Array): Promise<{ files: [string, Uint8Array][]; imports: string[]; exports: string[] }> {
  const jco = inBinary() ? await carriedJco<typeof JcoBindgen>('src/browser.js') : await import('@bytecodealliance/jco/component');
  try {
    const out = await Promise.resolve(
      jco.generate(bytes, { name: 'provider', instantiation: { tag: 'sync' }, noNodejsCompat: true, noTypescript: true, base64Cutoff: 0, tracing: false, validLiftingOptimization: false }),
    );
    return { files: out.files, imports: out.imports, exports: out.exports.map(([name]) => name) };
  } catch (error) {
    throw new LatticeError('COMPONENT_INVALID', `not a usable WebAssembly component: ${describeError(error)}`, { cause: error });
  }
}

export interface ComponentDescription {
  readonly imports: readonly string[];
  readonly exports: readonly string[];
  /** The component's WIT world as wasm-tools prints it (imports with their versions). */
  readonly wit: string;
}

/** What a component imports and exports, without checking it (`lattice providers add|inspect` show it). */
export async function describeComponent(bytes: Uint8Array): Promise<ComponentDescription> {
  const { imports, exports } = await generate(bytes);
  return { imports, exports, wit: await componentWit(bytes) };
}

async function componentWit(bytes: Uint8Array): Promise<string> {
  if (inBinary()) {
    // The binary carries only the wasm-tools module behind jco's API (which pulls in jco's whole command line).
    const wasmTools = await carriedJco<{ $init: Promise<void>; tools: { componentWit: (binary: Uint8Array) => string } }>('obj/wasm-tools.js');
    await wasmTools.$init;
    return wasmTools.tools.componentWit(bytes);
  }
  // jco's API module ships no usable type declaration for componentWit; this is its shape.
  const api = (await import('@bytecodealliance/jco')) as unknown as { componentWit: (binary: Uint8Array) => Promise<string> };
  return api.componentWit(bytes);
}

/** Refuses a component that imports anything but `log` or lacks `plan` and `finish`. */
export function checkInterface(imports: readonly string[], exports: readonly string[]): void {
  const extra = imports.filter((i) => !ALLOWED_IMPORTS.includes(i));
  if (extra.length > 0) {
    throw new LatticeError('COMPONENT_INVALID', `the component imports ${extra.join(', ')}; a provider may import only ${ALLOWED_IMPORTS.join(', ')} (providers/wit/provider.wit)`);
  }
  const missing = REQUIRED_EXPORTS.filter((e) => !exports.includes(e));
  if (missing.length > 0) throw new LatticeError('COMPONENT_INVALID', `the component does not export ${missing.join(', ')} (providers/wit/provider.wit)`);
}

export class ComponentCache {
  /**
   * Without keys nothing is cached (every load transpiles): for commands run without an initialised home.
   * `shipped` holds entries made when lattice itself was built (the built-ins): trusted as lattice's own code, so
   * unsigned, but still checked file by file against their index and the component's bytes.
   */
  constructor(
    private readonly dir: string,
    private readonly keys: CacheKeys | null,
    private readonly shipped: string | null = null,
  ) {}

  /**
   * The component ready for a worker. `pinned` is the SHA-256 the manifest pins: the bytes' actual hash must
   * equal it (COMPONENT_INVALID otherwise); the interface is checked before anything is cached.
   */
  async prepare(bytes: Uint8Array, pinned: string, name: string): Promise<PreparedComponent> {
    const sha256 = sha256Hex(bytes);
    if (sha256 !== pinned) throw new LatticeError('COMPONENT_INVALID', `${name} has sha256 ${sha256}, but the manifest pins ${pinned}; refusing to run it`);
    const cached = (this.shipped === null ? null : this.read(join(this.shipped, sha256), sha256, bytes, false)) ?? (this.keys === null ? null : this.read(this.entry(sha256), sha256, bytes, true));
    if (cached !== null) return cached;
    const prepared = await transpile(bytes);
    this.write(prepared);
    return prepared;
  }

  private entry(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** A verified cache entry, or null (missing, unsigned, altered, or not derived from these bytes). */
  private read(dir: string, sha256: string, bytes: Uint8Array, signed: boolean): PreparedComponent | null {
    if (!existsSync(join(dir, 'index.json'))) return null;
    try {
      const indexText = readFileSync(join(dir, 'index.json'), 'utf8');
      if (signed && !this.signedByHome(indexText, readFileSync(join(dir, 'index.sig'), 'utf8'))) return this.discard(dir, 'it is not signed by the active key (or its signature does not verify)');
      const index = JSON.parse(indexText) as CacheIndex;
      if (index.v !== 1 || index.component !== sha256) return this.discard(dir, 'it is for another component');
      const files = new Map<string, Uint8Array>();
      for (const [name, hash] of Object.entries(index.files)) {
        if (!/^[A-Za-z0-9_.-]+$/.test(name)) return this.discard(dir, 'it names an unexpected file');
        const data = readFileSync(join(dir, name));
        if (sha256Hex(data) !== hash) return this.discard(dir, `${name} does not match its hash`);
        if (name !== GLUE && Buffer.from(bytes).indexOf(data) < 0) return this.discard(dir, `${name} is not part of the component`);
        files.set(name, data);
      }
      const glue = files.get(GLUE);
      if (glue === undefined) return this.discard(dir, `it has no ${GLUE}`);
      checkInterface(index.imports, index.exports);
      const modules = [...files].filter(([n]) => n !== GLUE).map(([n, b]) => [n, b] as const);
      return { sha256, glue: Buffer.from(glue).toString('utf8'), modules, imports: index.imports, exports: index.exports };
    } catch (error) {
      return this.discard(dir, describeError(error));
    }
  }

  private signedByHome(indexText: string, sigText: string): boolean {
    const sig = JSON.parse(sigText) as { keyId?: unknown; signature?: unknown };
    // Only the active key counts: a retired key signs nothing after its retirement, and an entry it signed is made again.
    const key = typeof sig.keyId === 'string' && sig.keyId === this.keys?.publicKeys.activeKeyId ? this.keys.publicKeys.key(sig.keyId) : undefined;
    return key !== undefined && typeof sig.signature === 'string' && verifyEd25519(key, indexText, sig.signature);
  }

  /** Drops a bad entry from the home's cache (a shipped one is only skipped: it is not the cache's to delete). */
  private discard(dir: string, why: string): null {
    process.stderr.write(`lattice: ignoring the provider cache entry ${dir}: ${why}\n`);
    if (this.shipped === null || !dir.startsWith(this.shipped)) rmSync(dir, { recursive: true, force: true });
    return null;
  }

  private write(p: PreparedComponent): void {
    const keys = this.keys;
    if (keys === null) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeEntry(this.entry(p.sha256), p, (indexText) => JSON.stringify({ keyId: keys.signer.keyId, signature: keys.signer.sign(indexText) }));
  }
}

/**
 * Writes a cache entry beside its final place and renames it there, so a reader never sees half of one. `sign`
 * makes index.sig; without it the entry is unsigned (the entries shipped with lattice's build).
 */
export function writeEntry(dir: string, p: PreparedComponent, sign?: (indexText: string) => string): void {
  const files: Record<string, string> = { [GLUE]: sha256Hex(p.glue) };
  for (const [name, data] of p.modules) files[name] = sha256Hex(data);
  const index: CacheIndex = { v: 1, component: p.sha256, imports: p.imports, exports: p.exports, files };
  const indexText = canonicalize(index as unknown as Parameters<typeof canonicalize>[0]);
  const tmp = `${dir}.tmp-${randomToken(8)}`;
  mkdirSync(tmp, { mode: 0o700 });
  try {
    writeFileSync(join(tmp, GLUE), p.glue, { mode: 0o600 });
    for (const [name, data] of p.modules) writeFileSync(join(tmp, name), data, { mode: 0o600 });
    writeFileSync(join(tmp, 'index.json'), indexText, { mode: 0o600 });
    if (sign !== undefined) writeFileSync(join(tmp, 'index.sig'), sign(indexText), { mode: 0o600 });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Transpiles a component whose interface checks out, without caching it (the build's shipped entries). */
export async function transpile(bytes: Uint8Array): Promise<PreparedComponent> {
  const out = await generate(bytes);
  checkInterface(out.imports, out.exports);
  const glue = out.files.find(([n]) => n === GLUE);
  if (glue === undefined) throw new LatticeError('COMPONENT_INVALID', `jco produced no ${GLUE}`);
  const modules = out.files.filter(([n]) => n.endsWith('.wasm')).map(([n, b]) => [n, b] as const);
  return { sha256: sha256Hex(bytes), glue: Buffer.from(glue[1]).toString('utf8'), modules, imports: out.imports, exports: out.exports };
}
