/**
 * Named secrets, encrypted at rest in the ledger database's `secrets` table with AES-256-GCM under the master
 * key (master-key.ts). Every `set` seals the value with a fresh nonce; the additional authenticated data is
 * `lattice-secret:v1:<name>`, so a ciphertext decrypts only under the name it was stored as.
 *
 * Refused: names outside `^[A-Za-z_][A-Za-z0-9_.-]{0,127}$` (SECRET_INVALID_NAME), values over 64 KiB of UTF-8
 * (SECRET_TOO_LARGE) or not well-formed Unicode (INVALID_ARGUMENT), a key that is not 32 bytes
 * (MASTER_KEY_INVALID), and every row that does not authenticate — altered, moved to another name, or sealed
 * under another master key (SECRET_CORRUPT): `get` never returns unauthenticated bytes. A value never appears in
 * an error message, and `list` reads names and times only; it never decrypts.
 *
 * The store writes no ledger events. The caller records `secret.set` / `secret.removed` with the name only, never
 * the value; it may call the store inside its own transaction (the store's writes then become a savepoint), so
 * the change and its event commit together.
 */
import type Database from 'better-sqlite3';
import { AEAD_KEY_BYTES, open, seal } from '../crypto/aead.ts';
import { LatticeError, describeError, isLatticeError, type SecretErrorCode } from '../errors.ts';

export type { SecretErrorCode } from '../errors.ts';

export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
export const MAX_SECRET_BYTES = 64 * 1024;
const AAD_PREFIX = 'lattice-secret:v1:';

export interface SecretInfo {
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface SealedRow {
  readonly nonce: unknown;
  readonly ciphertext: unknown;
}

export class SecretStore {
  // A #private field: util.inspect and console.log of a store do not show the key.
  readonly #key: Buffer;
  private readonly selectSealed: Database.Statement<[string], SealedRow>;
  private readonly selectInfo: Database.Statement<[], SecretInfo>;
  private readonly writeSealed: Database.Transaction<(name: string, nonce: Buffer, ciphertext: Buffer, now: number) => boolean>;
  private readonly deleteRow: Database.Statement<[string]>;

  constructor(db: Database.Database, key: Buffer) {
    if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_BYTES) {
      throw secretError('MASTER_KEY_INVALID', `the master key must be ${AEAD_KEY_BYTES} bytes`);
    }
    this.#key = Buffer.from(key);
    this.selectSealed = db.prepare('SELECT nonce, ciphertext FROM secrets WHERE name = ?');
    this.selectInfo = db.prepare(
      'SELECT name, created_at AS createdAt, updated_at AS updatedAt FROM secrets ORDER BY name',
    );
    this.deleteRow = db.prepare('DELETE FROM secrets WHERE name = ?');
    const insert = db.prepare<[string, Buffer, Buffer, number, number]>(
      'INSERT INTO secrets (name, nonce, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
    );
    const update = db.prepare<[Buffer, Buffer, number, string]>(
      'UPDATE secrets SET nonce = ?, ciphertext = ?, updated_at = ? WHERE name = ?',
    );
    // Returns whether the row was created.
    this.writeSealed = db.transaction((name: string, nonce: Buffer, ciphertext: Buffer, now: number) => {
      if (insert.run(name, nonce, ciphertext, now, now).changes === 1) return true;
      update.run(nonce, ciphertext, now, name);
      return false;
    });
  }

  /** Stores `value` under `name`, replacing any previous value (its creation time is kept). */
  set(name: string, value: string): { created: boolean } {
    checkName(name);
    const plaintext = encodeValue(name, value);
    try {
      const { nonce, ciphertext } = seal(this.#key, plaintext, aad(name));
      // IMMEDIATE takes the write lock up front; inside a caller's transaction this becomes a savepoint.
      return { created: writing(name, () => this.writeSealed.immediate(name, nonce, ciphertext, Date.now())) };
    } finally {
      plaintext.fill(0);
    }
  }

  /** The value of `name`; SECRET_NOT_FOUND if there is none, SECRET_CORRUPT if its row does not authenticate. */
  get(name: string): string {
    checkName(name);
    const row = this.selectSealed.get(name);
    if (row === undefined) throw secretError('SECRET_NOT_FOUND', `no secret named ${name}`);
    if (!(row.nonce instanceof Uint8Array) || !(row.ciphertext instanceof Uint8Array)) throw corrupt(name);
    let plaintext: Buffer;
    try {
      plaintext = open(this.#key, row.nonce, row.ciphertext, aad(name));
    } catch (error) {
      throw corrupt(name, error);
    }
    try {
      // ignoreBOM keeps a leading U+FEFF that is part of the value; fatal refuses what is not UTF-8.
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(plaintext);
    } catch (error) {
      throw corrupt(name, error);
    } finally {
      plaintext.fill(0);
    }
  }

  /** Names and times, sorted by name; never decrypts. */
  list(): SecretInfo[] {
    return this.selectInfo.all().map(({ name, createdAt, updatedAt }) => ({ name, createdAt, updatedAt }));
  }

  /** Deletes `name`; false if there was no such secret. */
  remove(name: string): boolean {
    checkName(name);
    return writing(name, () => this.deleteRow.run(name).changes > 0);
  }
}

function aad(name: string): Buffer {
  return Buffer.from(AAD_PREFIX + name, 'utf8');
}

function checkName(name: unknown): asserts name is string {
  // The name is not echoed: a caller that swapped name and value must not print the value.
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
    throw secretError(
      'SECRET_INVALID_NAME',
      'invalid secret name: 1 to 128 characters, a letter or "_" first, then letters, digits, "_", "." or "-"',
    );
  }
}

function encodeValue(name: string, value: unknown): Buffer {
  if (typeof value !== 'string') {
    throw new LatticeError('INVALID_ARGUMENT', `the value of secret ${name} must be a string`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_SECRET_BYTES) {
    throw secretError('SECRET_TOO_LARGE', `the value of secret ${name} is ${bytes} bytes; the limit is ${MAX_SECRET_BYTES} (64 KiB)`);
  }
  if (!value.isWellFormed()) {
    throw new LatticeError(
      'INVALID_ARGUMENT',
      `the value of secret ${name} is not well-formed Unicode (a lone surrogate) and would not be stored unchanged`,
    );
  }
  return Buffer.from(value, 'utf8');
}

function writing<T>(name: string, write: () => T): T {
  try {
    return write();
  } catch (error) {
    if (isLatticeError(error)) throw error;
    // SQLite messages carry no bound values, so the ciphertext (let alone the value) cannot leak here.
    throw new LatticeError('LEDGER_WRITE_FAILED', `cannot write secret ${name}: ${describeError(error)}`, { cause: error });
  }
}

function corrupt(name: string, cause?: unknown): LatticeError {
  return secretError(
    'SECRET_CORRUPT',
    `secret ${name} does not decrypt: its row was altered, copied from another secret, or sealed under a different master key`,
    cause,
  );
}

function secretError(code: SecretErrorCode, message: string, cause?: unknown): LatticeError {
  return new LatticeError(code, message, { cause });
}
