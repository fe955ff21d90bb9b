/**
 * Opens the ledger's SQLite file. The secure settings live here so no caller has to remember them:
 * writable opens always create the file 0600 (SQLite gives -wal/-shm the same mode), use WAL with
 * synchronous=FULL (a commit that returned is on disk), and read back what SQLite actually applied; read-only
 * opens never create or migrate anything.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { LatticeError, describeError, isLatticeError } from '../errors.ts';
import { assertKnownSchema, migrate, schemaVersion } from './schema.ts';

export type LedgerDatabase = Database.Database;

const BUSY_TIMEOUT_MS = 5000;

export function openWritable(file: string): LedgerDatabase {
  let db: LedgerDatabase | undefined;
  try {
    closeSync(openSync(file, 'a', 0o600));
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    db = new Database(file);
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    const sync = db.pragma('synchronous', { simple: true });
    if (sync !== 2) throw new Error(`SQLite refused synchronous=FULL (got ${String(sync)})`);
    db.pragma('foreign_keys = ON');
    migrate(db, file);
    return db;
  } catch (error) {
    db?.close();
    throw openFailure(file, error);
  }
}

export function openReadOnly(file: string): LedgerDatabase {
  if (!existsSync(file)) {
    throw new LatticeError('LEDGER_NOT_FOUND', `no ledger at ${file}; run \`lattice init\` or pass --home/--db`);
  }
  let db: LedgerDatabase | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (schemaVersion(db) === 0) throw new Error('not a lattice ledger (no schema)');
    assertKnownSchema(db, file);
    return db;
  } catch (error) {
    db?.close();
    throw openFailure(file, error);
  }
}

function openFailure(file: string, error: unknown): LatticeError {
  if (isLatticeError(error)) return error;
  return new LatticeError('LEDGER_OPEN_FAILED', `cannot open the ledger ${file}: ${describeError(error)}`, { cause: error });
}
