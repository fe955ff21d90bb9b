/**
 * The public key set: every Ed25519 key that has ever signed a checkpoint or receipt, with the active one marked.
 * Stored as `keys/keyset.json`; it is the trust anchor `lattice verify` checks signatures against, and it travels
 * inside exported bundles. Old keys are retired, never removed, so old signatures keep verifying.
 *
 * Parsing is strict: an unknown version, a malformed key or a key id that is not the thumbprint of its public key
 * makes the whole set invalid rather than silently dropping the bad entry.
 */
import { readFileSync } from 'node:fs';
import { ed25519Thumbprint, loadEd25519PublicKey, type KeyObject } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { writeFileAtomic } from '../fs-atomic.ts';

export interface KeyRecord {
  readonly keyId: string;
  readonly alg: 'Ed25519';
  /** Raw public key, base64url (JWK `x`). */
  readonly publicKey: string;
  readonly createdAt: string;
  readonly retiredAt: string | null;
}

export interface KeySetDocument {
  readonly version: 1;
  readonly active: string;
  readonly keys: readonly KeyRecord[];
}

export class PublicKeySet {
  readonly document: KeySetDocument;
  private readonly objects = new Map<string, KeyObject>();

  constructor(document: KeySetDocument) {
    this.document = document;
    for (const record of document.keys) this.objects.set(record.keyId, loadEd25519PublicKey(record.publicKey));
  }

  /** The verification key for `keyId`, or undefined when the key is not in the set. */
  key(keyId: string): KeyObject | undefined {
    return this.objects.get(keyId);
  }

  get activeKeyId(): string {
    return this.document.active;
  }
}

export function readKeySet(path: string): PublicKeySet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new LatticeError('KEYSET_NOT_FOUND', `cannot read the key set ${path}: ${describeError(error)}`, { cause: error });
  }
  return parseKeySet(text, path);
}

/** Parses a key set from JSON text or an already-parsed value (e.g. a bundle header's `keyset`). */
export function parseKeySet(text: unknown, source: string): PublicKeySet {
  let value: unknown = text;
  if (typeof text === 'string') {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new LatticeError('KEYSET_INVALID', `${source} is not JSON: ${describeError(error)}`, { cause: error });
    }
  }
  const invalid = (why: string) => new LatticeError('KEYSET_INVALID', `${source}: ${why}`);
  if (!isRecord(value)) throw invalid('the key set must be a JSON object');
  if (value['version'] !== 1) throw invalid(`unsupported key set version ${JSON.stringify(value['version'])}`);
  const keysValue = value['keys'];
  if (!Array.isArray(keysValue) || keysValue.length === 0) throw invalid('"keys" must be a non-empty array');
  const keys: KeyRecord[] = keysValue.map((entry: unknown, i) => parseKeyRecord(entry, `keys[${i}]`, invalid));
  const ids = new Set(keys.map((k) => k.keyId));
  if (ids.size !== keys.length) throw invalid('duplicate key id');
  const active = value['active'];
  if (typeof active !== 'string' || !ids.has(active)) throw invalid('"active" must name a key in "keys"');
  try {
    return new PublicKeySet({ version: 1, active, keys });
  } catch (error) {
    throw invalid(describeError(error));
  }
}

export function writeKeySet(path: string, document: KeySetDocument): void {
  writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`, 0o600);
}

function parseKeyRecord(entry: unknown, where: string, invalid: (why: string) => LatticeError): KeyRecord {
  if (!isRecord(entry)) throw invalid(`${where} must be an object`);
  const { keyId, alg, publicKey, createdAt, retiredAt } = entry;
  if (alg !== 'Ed25519') throw invalid(`${where}.alg must be "Ed25519"`);
  if (typeof publicKey !== 'string') throw invalid(`${where}.publicKey must be a string`);
  if (typeof keyId !== 'string' || keyId !== ed25519Thumbprint(publicKey)) {
    throw invalid(`${where}.keyId is not the thumbprint of its public key`);
  }
  if (typeof createdAt !== 'string') throw invalid(`${where}.createdAt must be a timestamp`);
  if (retiredAt !== null && typeof retiredAt !== 'string') throw invalid(`${where}.retiredAt must be a timestamp or null`);
  return { keyId, alg, publicKey, createdAt, retiredAt };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
