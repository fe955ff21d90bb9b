/**
 * The publishers this home trusts: Ed25519 keys whose signatures `lattice providers add` and `lattice actions add`
 * accept. Kept in `<home>/publishers.json` (0600); the project's release key is always trusted and cannot be
 * removed, since it signs the built-in components.
 *
 *   {"version": 1, "publishers": [{"name", "keyId", "publicKey", "addedAt"}]}
 *
 * Parsing is strict, like the key set's: a malformed entry, a duplicate, or a key id that is not the thumbprint of
 * its key makes the whole file invalid, so a damaged trust list is never half-read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519Thumbprint, loadEd25519PublicKey } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { writeFileAtomic } from '../fs-atomic.ts';
import { ensureHome, type HomePaths } from '../home.ts';
import { RELEASE_KEY } from './release-key.ts';
import { checkSignatureText, parseSignature, type SignedKind, type TrustedKey } from './signature.ts';

export interface Publisher extends TrustedKey {
  readonly addedAt: string;
  /** `builtin` for the release key, `home` for the operator's entries. */
  readonly source: 'builtin' | 'home';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;

export function publishersFile(paths: HomePaths): string {
  return join(paths.root, 'publishers.json');
}

/** Every trusted publisher: the release key, then the home's entries. */
export function readPublishers(paths: HomePaths): Publisher[] {
  const release: Publisher = { ...RELEASE_KEY, addedAt: '', source: 'builtin' };
  const file = publishersFile(paths);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [release];
    throw new LatticeError('PUBLISHER_INVALID', `cannot read ${file}: ${describeError(error)}`, { cause: error });
  }
  return [release, ...parsePublishers(text, file)];
}

function parsePublishers(text: string, file: string): Publisher[] {
  const invalid = (why: string) => new LatticeError('PUBLISHER_INVALID', `${file}: ${why}; fix or remove the file`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw invalid(`not JSON (${describeError(error)})`);
  }
  if (typeof doc !== 'object' || doc === null || (doc as { version?: unknown }).version !== 1 || !Array.isArray((doc as { publishers?: unknown }).publishers)) {
    throw invalid('expected {"version": 1, "publishers": [...]}');
  }
  const list = (doc as { publishers: unknown[] }).publishers.map((entry, i): Publisher => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const { name, keyId, publicKey, addedAt } = e;
    if (typeof name !== 'string' || !NAME.test(name)) throw invalid(`publishers[${i}].name is not a valid name`);
    if (typeof publicKey !== 'string' || !isPublicKey(publicKey)) throw invalid(`publishers[${i}].publicKey is not an Ed25519 public key`);
    if (keyId !== ed25519Thumbprint(publicKey)) throw invalid(`publishers[${i}].keyId is not the thumbprint of its key`);
    if (typeof addedAt !== 'string') throw invalid(`publishers[${i}].addedAt is missing`);
    return { name, keyId, publicKey, addedAt, source: 'home' };
  });
  const names = new Set(list.map((p) => p.name));
  const ids = new Set(list.map((p) => p.keyId));
  if (names.size !== list.length || ids.size !== list.length) throw invalid('a name or key appears twice');
  return list;
}

function isPublicKey(x: string): boolean {
  try {
    loadEd25519PublicKey(x);
    return true;
  } catch {
    return false; // the caller names the entry; the key parser's message adds nothing
  }
}

/**
 * The raw public key in `input`: base64url of the 32 bytes (as `lattice publishers keygen` prints it), or the
 * `publicKey` of a signature document, which is how a publisher's key usually travels.
 */
export function parsePublicKeyInput(input: string): string {
  const text = input.trim();
  if (isPublicKey(text)) return text;
  const doc = parseSignature(text);
  if (doc !== null && isPublicKey(doc.publicKey)) return doc.publicKey;
  throw new LatticeError('PUBLISHER_INVALID', 'not an Ed25519 public key: give the 43-character base64url key `lattice publishers keygen` printed, or a file holding it');
}

function save(paths: HomePaths, list: readonly Publisher[]): void {
  ensureHome(paths);
  const publishers = list.filter((p) => p.source === 'home').map(({ name, keyId, publicKey, addedAt }) => ({ name, keyId, publicKey, addedAt }));
  writeFileAtomic(publishersFile(paths), `${JSON.stringify({ version: 1, publishers }, null, 2)}\n`, 0o600);
}

/** Trusts a key under a name; refuses a name or key already trusted. */
export function addPublisher(paths: HomePaths, name: string, publicKey: string, now = new Date()): Publisher {
  if (!NAME.test(name)) throw new LatticeError('INVALID_ARGUMENT', `publisher name ${JSON.stringify(name.slice(0, 80))} must be 1–64 letters, digits, spaces or ._@- and start with a letter or digit`);
  const list = readPublishers(paths);
  const keyId = ed25519Thumbprint(publicKey);
  const clash = list.find((p) => p.name === name || p.keyId === keyId);
  if (clash !== undefined) throw new LatticeError('PUBLISHER_INVALID', `already trusted: ${clash.name} (${clash.keyId})`);
  const publisher: Publisher = { name, keyId, publicKey, addedAt: now.toISOString(), source: 'home' };
  save(paths, [...list, publisher]);
  return publisher;
}

/** Stops trusting a publisher, named by name or key id. */
export function removePublisher(paths: HomePaths, nameOrKeyId: string): Publisher {
  const list = readPublishers(paths);
  const found = list.find((p) => p.name === nameOrKeyId || p.keyId === nameOrKeyId);
  if (found === undefined) throw new LatticeError('PUBLISHER_NOT_FOUND', `no trusted publisher ${JSON.stringify(nameOrKeyId.slice(0, 80))}; \`lattice publishers list\` shows them`);
  if (found.source === 'builtin') throw new LatticeError('PUBLISHER_INVALID', `${found.name} is lattice's release key, which signs the built-in providers; it cannot be removed`);
  save(paths, list.filter((p) => p !== found));
  return found;
}

/** Who vouches for a file being installed: a trusted publisher, or nobody because the operator allowed it. */
export type Trust = { readonly publisher: { readonly name: string; readonly keyId: string }; readonly allowUnsigned: false } | { readonly publisher: null; readonly allowUnsigned: true };

/**
 * Decides whether `bytes` may be installed: a signature document (the text of `<file>.sig`, or null when there is
 * none) must be a valid signature of these bytes, as this kind, by a trusted publisher. `allowUnsigned` accepts a
 * file without a signature; a signature that is present but bad is refused even then, since it means the bytes
 * are not what their publisher signed.
 */
export function decideTrust(bytes: Uint8Array, kind: SignedKind, signature: string | null, publishers: readonly TrustedKey[], allowUnsigned: boolean, file: string): Trust {
  if (signature === null) {
    if (allowUnsigned) return { publisher: null, allowUnsigned: true };
    throw new LatticeError('SIGNATURE_MISSING', `${file} is not signed (no ${file}.sig); get the publisher's signature, or pass --allow-unsigned to install it anyway (recorded in the ledger)`);
  }
  const check = checkSignatureText(bytes, kind, signature, publishers);
  if (!check.ok) throw new LatticeError('SIGNATURE_INVALID', `${file}: ${check.message}`);
  return { publisher: { name: check.publisher.name, keyId: check.publisher.keyId }, allowUnsigned: false };
}
