/**
 * The signing side of the key set: creates the first key, loads the active private key, follows rotations made by
 * another process, and rotates.
 *
 * Private keys are PKCS#8 PEM files `keys/<keyId>.pem`, mode 0600, created exclusively (an existing file is never
 * overwritten). Rotation writes the new private key first and the key set second, so a crash in between leaves an
 * unused key file, never a key set that names a key whose private half is missing. Once the rotation is recorded,
 * the private files of retired keys are deleted: only their public halves, in the key set, are kept.
 *
 * A retired key must sign nothing from its retirement seq on (keyset.ts). The ledger calls `refresh()` inside every
 * write transaction before it signs, and a rotation writes the key set while it holds that same write lock, so a
 * process that loaded the old key (a gate, a command) switches to the new one before its next signature.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { generateEd25519, loadEd25519PrivateKey, signEd25519, signEd25519Async, type KeyObject } from '../crypto/index.ts';
import { LatticeError, describeError } from '../errors.ts';
import { fsyncDir, writeFileExclusive } from '../fs-atomic.ts';
import type { HomePaths } from '../home.ts';
import { KEYSET_VERSION, readKeySet, writeKeySet, type KeyRecord, type PublicKeySet } from './keyset.ts';

/** Signs with one key; the signature is always reported with the id of the key that made it. */
export interface Signer {
  readonly keyId: string;
  sign(message: string): string;
  /** The same signature, made on libuv's thread pool so the event loop keeps serving meanwhile. */
  signAsync(message: string): Promise<string>;
}

/** A rotation written to disk but not yet recorded in the ledger. */
export interface PendingRotation {
  readonly previousKeyId: string;
  readonly key: KeyRecord;
  /** Keys retired before retirement seqs were recorded (a version 1 key set), retired at the same seq now. */
  readonly legacyKeyIds: readonly string[];
  /** Puts the previous key set and signer back and removes the new private key (the ledger did not commit). */
  undo(): void;
}

export class KeyRing {
  readonly paths: HomePaths;
  private keySet: PublicKeySet;
  private signer: Signer;
  /** The key set file as last read (device, inode, change time, size): a rotation elsewhere replaces the file. */
  private seen: string;

  private constructor(paths: HomePaths, keySet: PublicKeySet, seen: string) {
    this.paths = paths;
    this.keySet = keySet;
    this.signer = loadSigner(paths, keySet.activeKeyId);
    this.seen = seen;
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
        version: KEYSET_VERSION,
        active: first.keyId,
        keys: [{ keyId: first.keyId, alg: 'Ed25519', publicKey: first.publicKey, createdAt: now(), retiredAt: null, retiredAtSeq: null }],
      });
    }
    const seen = identity(paths.keyset);
    return new KeyRing(paths, readKeySet(paths.keyset), seen);
  }

  get active(): Signer {
    return this.signer;
  }

  get publicKeys(): PublicKeySet {
    return this.keySet;
  }

  /**
   * Re-reads the key set when the file changed since it was read (another process rotated) and switches to its
   * active key. Throws, and so fails the commit that was about to sign, when the new key set or key cannot be read.
   */
  refresh(): void {
    const current = identity(this.paths.keyset);
    if (current === this.seen) return;
    const keySet = readKeySet(this.paths.keyset);
    const signer = keySet.activeKeyId === this.signer.keyId ? this.signer : loadSigner(this.paths, keySet.activeKeyId);
    this.keySet = keySet;
    this.signer = signer;
    this.seen = current;
  }

  /**
   * Makes a new active key and retires the active one at `seq`, the seq of the `keys.rotated` event that will
   * record it; retired keys with no retirement seq yet (a version 1 key set) get the same one. The caller holds the
   * ledger's write lock, so no other process signs between this and its commit, and undoes it if it does not commit.
   */
  rotate(seq: number): PendingRotation {
    const before = { keySet: this.keySet, signer: this.signer, seen: this.seen };
    const previousKeyId = this.keySet.activeKeyId;
    const next = generateEd25519();
    const keyFile = join(this.paths.keys, `${next.keyId}.pem`);
    writeFileExclusive(keyFile, next.privateKeyPem, 0o600);
    const at = now();
    const key: KeyRecord = { keyId: next.keyId, alg: 'Ed25519', publicKey: next.publicKey, createdAt: at, retiredAt: null, retiredAtSeq: null };
    const legacyKeyIds = this.keySet.unboundedKeys;
    const retire = (k: KeyRecord): KeyRecord => {
      if (k.keyId === previousKeyId) return { ...k, retiredAt: at, retiredAtSeq: seq };
      if (k.retiredAtSeq === null) return { ...k, retiredAt: k.retiredAt ?? at, retiredAtSeq: seq };
      return k;
    };
    try {
      writeKeySet(this.paths.keyset, { version: KEYSET_VERSION, active: next.keyId, keys: [...this.keySet.document.keys.map(retire), key] });
      this.seen = identity(this.paths.keyset);
      this.keySet = readKeySet(this.paths.keyset);
      this.signer = loadSigner(this.paths, next.keyId);
    } catch (error) {
      this.restore(before, keyFile, error);
      throw error;
    }
    let undone = false;
    return {
      previousKeyId,
      key,
      legacyKeyIds,
      undo: () => {
        if (undone) return;
        undone = true;
        this.restore(before, keyFile, null);
      },
    };
  }

  /**
   * Deletes the private key file of every retired key; their public halves stay in the key set, so what they
   * signed keeps verifying. Returns the files deleted. A file that cannot be deleted is an error naming it.
   */
  deleteRetiredPrivateKeys(): string[] {
    const deleted: string[] = [];
    for (const { keyId } of this.keySet.document.keys) {
      if (keyId === this.keySet.activeKeyId) continue;
      const file = join(this.paths.keys, `${keyId}.pem`);
      if (!existsSync(file)) continue;
      try {
        rmSync(file);
      } catch (error) {
        throw new LatticeError('IO_ERROR', `the retired private key ${file} could not be deleted (${describeError(error)}); delete it by hand: it must not sign again`, { cause: error });
      }
      deleted.push(file);
    }
    if (deleted.length > 0) fsyncDir(this.paths.keys);
    return deleted;
  }

  private restore(before: { keySet: PublicKeySet; signer: Signer; seen: string }, keyFile: string, cause: unknown): void {
    try {
      writeKeySet(this.paths.keyset, before.keySet.document);
      rmSync(keyFile, { force: true });
    } catch (error) {
      const why = cause === null ? '' : ` after ${describeError(cause)}`;
      throw new LatticeError('KEY_INVALID', `the key rotation failed${why}, and the previous key set could not be restored at ${this.paths.keyset}: ${describeError(error)}`, { cause: error });
    }
    this.keySet = before.keySet;
    this.signer = before.signer;
    this.seen = identity(this.paths.keyset);
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

/** What changes whenever the key set file is replaced (an atomic write always makes a new inode). */
function identity(file: string): string {
  try {
    const s = statSync(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.ctimeNs}:${s.size}`;
  } catch (error) {
    throw new LatticeError('KEYSET_NOT_FOUND', `cannot read the key set ${file}: ${describeError(error)}`, { cause: error });
  }
}

function now(): string {
  return new Date().toISOString();
}
