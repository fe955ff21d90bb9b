/**
 * The signing side of the key set: creates the first key, loads the active private key, and rotates.
 *
 * Private keys are PKCS#8 PEM files `keys/<keyId>.pem`, mode 0600, created exclusively (an existing file is never
 * overwritten). Rotation writes the new private key first and the key set second, so a crash in between leaves an
 * unused key file, never a key set that names a key whose private half is missing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519, loadEd25519PrivateKey, signEd25519, signEd25519Async, type KeyObject } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { writeFileExclusive } from '../fs-atomic.ts';
import type { HomePaths } from '../home.ts';
import { readKeySet, writeKeySet, type KeyRecord, type PublicKeySet } from './keyset.ts';

/** Signs with one key; the signature is always reported with the id of the key that made it. */
export interface Signer {
  readonly keyId: string;
  sign(message: string): string;
  /** The same signature, made on libuv's thread pool so the event loop keeps serving meanwhile. */
  signAsync(message: string): Promise<string>;
}

export class KeyRing {
  readonly paths: HomePaths;
  private keySet: PublicKeySet;
  private signer: Signer;

  private constructor(paths: HomePaths, keySet: PublicKeySet) {
    this.paths = paths;
    this.keySet = keySet;
    this.signer = loadSigner(paths, keySet.activeKeyId);
  }

  /** Loads the key ring of an initialised home; creates the first key when `create` is set and none exists. */
  static open(paths: HomePaths, options: { create: boolean }): KeyRing {
    if (!existsSync(paths.keyset)) {
      if (!options.create) {
        throw new LatticeError('KEYSET_NOT_FOUND', `no key set at ${paths.keyset}; run \`lattice init\` first`);
      }
      const first = generateEd25519();
      writeFileExclusive(join(paths.keys, `${first.keyId}.pem`), first.privateKeyPem, 0o600);
      writeKeySet(paths.keyset, {
        version: 1,
        active: first.keyId,
        keys: [{ keyId: first.keyId, alg: 'Ed25519', publicKey: first.publicKey, createdAt: now(), retiredAt: null }],
      });
    }
    return new KeyRing(paths, readKeySet(paths.keyset));
  }

  get active(): Signer {
    return this.signer;
  }

  get publicKeys(): PublicKeySet {
    return this.keySet;
  }

  /**
   * Makes a new active key and retires the previous one (kept in the set so its signatures still verify).
   * Returns the new key's record and the id of the key it replaced.
   */
  rotate(): { previousKeyId: string; key: KeyRecord } {
    const previousKeyId = this.keySet.activeKeyId;
    const next = generateEd25519();
    writeFileExclusive(join(this.paths.keys, `${next.keyId}.pem`), next.privateKeyPem, 0o600);
    const at = now();
    const record: KeyRecord = { keyId: next.keyId, alg: 'Ed25519', publicKey: next.publicKey, createdAt: at, retiredAt: null };
    const keys = this.keySet.document.keys.map((k) => (k.keyId === previousKeyId ? { ...k, retiredAt: at } : k));
    writeKeySet(this.paths.keyset, { version: 1, active: next.keyId, keys: [...keys, record] });
    this.keySet = readKeySet(this.paths.keyset);
    this.signer = loadSigner(this.paths, next.keyId);
    return { previousKeyId, key: record };
  }
}

function loadSigner(paths: HomePaths, keyId: string): Signer {
  const file = join(paths.keys, `${keyId}.pem`);
  let key: KeyObject;
  try {
    const loaded = loadEd25519PrivateKey(readFileSync(file, 'utf8'));
    if (loaded.keyId !== keyId) throw new Error(`the key in the file has id ${loaded.keyId}`);
    key = loaded.key;
  } catch (error) {
    throw new LatticeError('KEY_INVALID', `cannot load the active signing key ${file}: ${describeError(error)}`, {
      cause: error,
    });
  }
  return { keyId, sign: (message) => signEd25519(key, message), signAsync: (message) => signEd25519Async(key, message) };
}

function now(): string {
  return new Date().toISOString();
}
