/**
 * Opens the ledger's SQLite file. The secure settings live here so no caller has to remember them:
 * writable opens always create the file 0600 (SQLite gives -wal/-shm the same mode), use WAL with
 * synchronous=FULL (a commit that returned is on disk), and read back what SQLite actually applied; read-only
 * opens never create or migrate anything.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { LatticeError, describeError, isLatticeError } from '../errors.ts';
import { sqliteBinding } from '../runtime.ts';
import { assertKnownSchema, migrate, schemaVersion } from './schema.ts';

export type LedgerDatabase = Database.Database;

const BUSY_TIMEOUT_MS = 5000;

const prepared = new WeakMap<LedgerDatabase, Map<string, Database.Statement>>();

/**
 * The statement for `sql` on this connection, prepared on first use and reused after: preparing costs more than
 * running most of the statements a request needs. `pluck` statements are cached apart from row statements;
 * callers must never switch the mode of a statement they got here (`.pluck()`, `.raw()`, `.expand()`), nor
 * iterate one, since another caller may be handed the same object.
 */
export function statement(db: LedgerDatabase, sql: string, mode: 'rows' | 'pluck' = 'rows'): Database.Statement {
  let cache = prepared.get(db);
  if (cache === undefined) prepared.set(db, (cache = new Map<string, Database.Statement>()));
  const key = mode === 'pluck' ? `pluck\0${sql}` : sql;
  let stmt = cache.get(key);
  if (stmt === undefined) {
    stmt = db.prepare(sql);
    if (mode === 'pluck') stmt.pluck();
    cache.set(key, stmt);
  }
  return stmt;
}

/** better-sqlite3 with the addon the binary carries, if this is the binary. */
function open(file: string, options: Database.Options): LedgerDatabase {
  const binding = sqliteBinding();
  // @types/better-sqlite3 types nativeBinding as a path; the library also takes the loaded addon (lib/database.js).
  return new Database(file, binding === undefined ? options : { ...options, nativeBinding: binding as unknown as string });
}

export function openWritable(file: string): LedgerDatabase {
  let db: LedgerDatabase | undefined;
  try {
    closeSync(openSync(file, 'a', 0o600));
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    db = open(file, {});
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
    db = open(file, { readonly: true, fileMustExist: true });
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
