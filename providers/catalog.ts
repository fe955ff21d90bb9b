/**
 * The components a home can run, for `lattice providers list|add|inspect`: the built-ins shipped with lattice
 * and the operator's own in `<home>/providers`. Installing one reads what it imports (refusing anything beyond
 * lattice:provider's `log`), checks its publisher's signature (or the operator's explicit `--allow-unsigned`),
 * and copies it, with its signature, into the home; manifests then pin it by the hash printed here.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { COMPONENT_FILE } from '../core/actions/manifest-schema.ts';
import { sha256Hex } from '../core/crypto/index.ts';
import { LatticeError, describeError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/fs-atomic.ts';
import type { HomePaths } from '../core/home.ts';
import { decideTrust, type Trust } from '../core/trust/publishers.ts';
import { checkSignatureText, type TrustedKey } from '../core/trust/signature.ts';
import { BUILTIN_COMPONENTS } from './builtin/components.ts';
import { componentsDir } from './runner/runner.ts';
import { checkInterface, describeComponent, type ComponentDescription } from './runner/transpile.ts';

const COMPONENT_NAME = new RegExp(COMPONENT_FILE);
/** Larger than any sensible provider (the built-ins are 14–30 KB); a bound on what `add` reads and hashes. */
const MAX_COMPONENT_BYTES = 64 * 1024 * 1024;

export type SignatureStatus = { readonly state: 'signed'; readonly publisher: string; readonly keyId: string } | { readonly state: 'unsigned' } | { readonly state: 'invalid'; readonly reason: string };

export interface ComponentEntry {
  /** The built-in provider's name (`http.template`), or the file name in `<home>/providers`. */
  readonly name: string;
  readonly source: 'builtin' | 'home';
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly signature: SignatureStatus;
}

/** Every component, built-ins first; each file is hashed and its signature checked against `publishers` now. */
export function listComponents(paths: HomePaths, builtinDir: string, publishers: readonly TrustedKey[]): ComponentEntry[] {
  const builtins = Object.entries(BUILTIN_COMPONENTS).map(([name, file]) => entry(name, 'builtin', join(builtinDir, `${file}.wasm`), publishers));
  const dir = componentsDir(paths);
  const own = existsSync(dir) ? readdirSync(dir).filter((f) => COMPONENT_NAME.test(f)).sort().map((f) => entry(f, 'home', join(dir, f), publishers)) : [];
  return [...builtins, ...own];
}

function entry(name: string, source: 'builtin' | 'home', path: string, publishers: readonly TrustedKey[]): ComponentEntry {
  const bytes = readComponent(path);
  return { name, source, path, sha256: sha256Hex(bytes), size: bytes.length, signature: signatureStatus(bytes, path, publishers) };
}

function signatureStatus(bytes: Uint8Array, path: string, publishers: readonly TrustedKey[]): SignatureStatus {
  if (!existsSync(`${path}.sig`)) return { state: 'unsigned' };
  const check = checkSignatureText(bytes, 'component', readFileSync(`${path}.sig`, 'utf8'), publishers);
  return check.ok ? { state: 'signed', publisher: check.publisher.name, keyId: check.publisher.keyId } : { state: 'invalid', reason: check.message };
}

/** The component named by built-in name, file name, or a sha256 prefix of at least 8 hex digits. */
export function findComponent(entries: readonly ComponentEntry[], id: string): ComponentEntry {
  const hex = /^[0-9a-f]{8,64}$/.test(id);
  const found = entries.filter((e) => e.name === id || (hex && e.sha256.startsWith(id)));
  if (found.length === 1 && found[0] !== undefined) return found[0];
  const shown = JSON.stringify(id.slice(0, 80));
  if (found.length === 0) throw new LatticeError('COMPONENT_NOT_FOUND', `no provider component ${shown}; \`lattice providers list\` shows them`);
  throw new LatticeError('INVALID_ARGUMENT', `${shown} matches ${found.length} components (${found.map((e) => e.name).join(', ')}); give more of the hash`);
}

export interface InstallRequest {
  readonly file: string;
  /** The name to install under (default: the file's own name). */
  readonly name?: string | undefined;
  /** The signature document's text (`<file>.sig`), or null when the file has none. */
  readonly signature: string | null;
  readonly allowUnsigned: boolean;
  /** Replace an installed component of the same name whose bytes differ. */
  readonly replace: boolean;
}

export interface Installed extends ComponentDescription {
  readonly name: string;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly trust: Trust;
  /** The sha256 of the component this one replaced under the same name, or null. */
  readonly replaced: string | null;
}

/**
 * Checks and installs a component. Nothing is written unless every check passes: the interface (only `log`
 * imported, `plan` and `finish` exported), the signature, and the name.
 */
export async function installComponent(paths: HomePaths, request: InstallRequest, publishers: readonly TrustedKey[]): Promise<Installed> {
  const bytes = readComponent(request.file);
  const name = request.name ?? basename(request.file);
  if (!COMPONENT_NAME.test(name)) throw new LatticeError('INVALID_ARGUMENT', `${JSON.stringify(name.slice(0, 140))} is not a component file name: letters, digits, _.- ending in .wasm (pass --name)`);
  const sha256 = sha256Hex(bytes);
  const description = await describeComponent(bytes);
  try {
    checkInterface(description.imports, description.exports);
  } catch (error) {
    const asked = description.wit.split('\n').filter((line) => /^\s*import\s/.test(line)).map((line) => line.trim().replace(/;$/, ''));
    throw new LatticeError('COMPONENT_INVALID', `${request.file} (sha256 ${sha256}) was not installed: ${describeError(error)}. It asks for: ${asked.join('; ') || 'no imports'}`, { cause: error });
  }
  const trust = decideTrust(bytes, 'component', request.signature, publishers, request.allowUnsigned, request.file);
  const dir = componentsDir(paths);
  const target = join(dir, name);
  const existing = existsSync(target) ? sha256Hex(readComponent(target)) : null;
  if (existing !== null && existing !== sha256 && !request.replace) {
    throw new LatticeError('INVALID_ARGUMENT', `${name} is already installed with other bytes (sha256 ${existing.slice(0, 16)}…); manifests pinning it would stop working. Pass --replace, or install under another --name`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(target, bytes, 0o600);
  if (request.signature !== null) writeFileAtomic(`${target}.sig`, request.signature, 0o600);
  else rmSync(`${target}.sig`, { force: true }); // a stale signature of older bytes would read as "invalid"
  return { ...description, name, path: target, sha256, size: bytes.length, trust, replaced: existing !== null && existing !== sha256 ? existing : null };
}

function readComponent(path: string): Buffer {
  try {
    const size = statSync(path).size;
    if (size > MAX_COMPONENT_BYTES) throw new Error(`it is ${size} bytes; the limit is ${MAX_COMPONENT_BYTES}`);
    return readFileSync(path);
  } catch (error) {
    throw new LatticeError('COMPONENT_NOT_FOUND', `cannot read the component ${path}: ${describeError(error)}`, { cause: error });
  }
}
