/**
 * The public key set: every Ed25519 key that has ever signed a checkpoint or receipt, with the active one marked.
 * Stored as `keys/keyset.json`; it is the trust anchor `lattice verify` checks signatures against, and it travels
 * inside exported bundles. Old keys are retired, never removed, so old signatures keep verifying.
 *
 * Each retired key records `retiredAtSeq`, the ledger seq at which it was retired (that of the `keys.rotated`
 * event): it vouches for seqs below that and for nothing from there on, so a copy of a retired private key cannot
 * sign a later checkpoint or receipt that verifies. Version 2 requires the point for every retired key. Version 1
 * sets (written before lattice recorded it) are read with no retirement point: their retired keys are accepted at
 * any seq, as they were, and `unboundedKeys` names them until the next rotation records a point (keyring.ts).
 *
 * Parsing is strict: an unknown version, a malformed key, a key id that is not the thumbprint of its public key or
 * a retirement that contradicts the active key makes the whole set invalid rather than silently dropping the bad
 * entry.
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
  /**
   * The seq of the event that retired the key: it signs only seqs below this. Null for the active key, and for a
   * key retired in a version 1 set (no point recorded: accepted at any seq).
   */
  readonly retiredAtSeq: number | null;
}

/** The version this lattice writes; version 1 (no retirement seqs) is still read. */
export const KEYSET_VERSION = 2;

export interface KeySetDocument {
  readonly version: 1 | 2;
  readonly active: string;
  readonly keys: readonly KeyRecord[];
}

export class PublicKeySet {
  readonly document: KeySetDocument;
  private readonly objects = new Map<string, KeyObject>();
  private readonly retired = new Map<string, number>();

  constructor(document: KeySetDocument) {
    this.document = document;
    for (const record of document.keys) {
      this.objects.set(record.keyId, loadEd25519PublicKey(record.publicKey));
      if (record.retiredAtSeq !== null) this.retired.set(record.keyId, record.retiredAtSeq);
    }
  }

  /** The verification key for `keyId`, or undefined when the key is not in the set. */
  key(keyId: string): KeyObject | undefined {
    return this.objects.get(keyId);
  }

  get activeKeyId(): string {
    return this.document.active;
  }

  /** The seq from which `keyId` signs nothing, or null when it has none (the active key, or a legacy set's). */
  retiredAtSeq(keyId: string): number | null {
    return this.retired.get(keyId) ?? null;
  }

  /** Retired keys with no recorded retirement seq (a version 1 set): their signatures count at any seq. */
  get unboundedKeys(): readonly string[] {
    return this.document.keys.filter((k) => k.keyId !== this.document.active && k.retiredAtSeq === null).map((k) => k.keyId);
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
  const version = value['version'];
  if (version !== 1 && version !== KEYSET_VERSION) {
    throw invalid(`unsupported key set version ${JSON.stringify(version)} (this lattice reads versions 1 and ${KEYSET_VERSION}; a newer set needs a newer lattice)`);
  }
  const keysValue = value['keys'];
  if (!Array.isArray(keysValue) || keysValue.length === 0) throw invalid('"keys" must be a non-empty array');
  const keys: KeyRecord[] = keysValue.map((entry: unknown, i) => parseKeyRecord(entry, `keys[${i}]`, version, invalid));
  const ids = new Set(keys.map((k) => k.keyId));
  if (ids.size !== keys.length) throw invalid('duplicate key id');
  const active = value['active'];
  if (typeof active !== 'string' || !ids.has(active)) throw invalid('"active" must name a key in "keys"');
  keys.forEach((k, i) => {
    if (k.keyId === active && (k.retiredAt !== null || k.retiredAtSeq !== null)) throw invalid(`keys[${i}] is the active key but is marked retired`);
    if (version === KEYSET_VERSION && k.keyId !== active && k.retiredAtSeq === null) throw invalid(`keys[${i}] is not the active key but records no retiredAtSeq`);
  });
  try {
    return new PublicKeySet({ version, active, keys });
  } catch (error) {
    throw invalid(describeError(error));
  }
}

export function writeKeySet(path: string, document: KeySetDocument): void {
  writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`, 0o600);
}

function parseKeyRecord(entry: unknown, where: string, version: 1 | 2, invalid: (why: string) => LatticeError): KeyRecord {
  if (!isRecord(entry)) throw invalid(`${where} must be an object`);
  const { keyId, alg, publicKey, createdAt, retiredAt, retiredAtSeq } = entry;
  if (alg !== 'Ed25519') throw invalid(`${where}.alg must be "Ed25519"`);
  if (typeof publicKey !== 'string') throw invalid(`${where}.publicKey must be a string`);
  if (typeof keyId !== 'string' || keyId !== ed25519Thumbprint(publicKey)) {
    throw invalid(`${where}.keyId is not the thumbprint of its public key`);
  }
  if (typeof createdAt !== 'string') throw invalid(`${where}.createdAt must be a timestamp`);
  if (retiredAt !== null && typeof retiredAt !== 'string') throw invalid(`${where}.retiredAt must be a timestamp or null`);
  if (version === 1) {
    if (retiredAtSeq !== undefined) throw invalid(`${where}.retiredAtSeq is not part of a version 1 key set`);
    return { keyId, alg, publicKey, createdAt, retiredAt, retiredAtSeq: null };
  }
  const seq = retiredAtSeq === null ? null : typeof retiredAtSeq === 'number' && Number.isSafeInteger(retiredAtSeq) && retiredAtSeq >= 1 ? retiredAtSeq : undefined;
  if (seq === undefined) throw invalid(`${where}.retiredAtSeq must be a seq (an integer from 1) or null`);
  if ((retiredAt === null) !== (seq === null)) throw invalid(`${where} must record both retiredAt and retiredAtSeq, or neither`);
  return { keyId, alg, publicKey, createdAt, retiredAt, retiredAtSeq: seq };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
