/**
 * The ledger's SQLite schema, as forward-only migrations. The schema version is `PRAGMA user_version`; a
 * database whose version is newer than the last migration here is refused (an older lattice must not write to,
 * or vouch for, a ledger it does not understand).
 *
 * Append-only is enforced in the database itself: triggers abort every UPDATE and DELETE on events,
 * checkpoints, receipts and the audit index, whoever issues them.
 *
 * `events` has no secondary index on purpose: under synchronous=FULL every index page a commit touches is
 * fsynced with it, and an index on principal alone halved durable append throughput. The filterable columns
 * are copied into `event_index` in bulk, every 10,000 events and with every timed or closing checkpoint (see
 * ledger.ts), so index pages are written once per copy instead of once per commit. `event_index` is derived
 * data for audit queries; verification never reads it. Its rows are narrow, so filters on type, action,
 * decision and time scan it newest first and stop at the page limit; only principal (many values, each a small
 * share of events, and the filter every agent-scoped query uses) has its own index, because each index added
 * here cost about 0.8 µs per appended event.
 */
import type Database from 'better-sqlite3';
import { LatticeError } from '../errors.ts';

type Migration = (db: Database.Database) => void;

function appendOnly(table: string): string {
  return `
    CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table}
      BEGIN SELECT RAISE(ABORT, '${table} are append-only'); END;
    CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
      BEGIN SELECT RAISE(ABORT, '${table} are append-only'); END;`;
}

const MIGRATIONS: readonly Migration[] = [
  // 1: events, signed checkpoints, signed receipts, the audit index.
  (db) => {
    db.exec(`
      CREATE TABLE events (
        seq       INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        type      TEXT NOT NULL,
        principal TEXT,
        action    TEXT,
        decision  TEXT,
        payload   TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
      ) STRICT;
      ${appendOnly('events')}

      CREATE TABLE event_index (
        seq       INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        type      TEXT NOT NULL,
        principal TEXT,
        action    TEXT,
        decision  TEXT
      ) STRICT;
      CREATE INDEX event_index_by_principal ON event_index(principal, seq);
      ${appendOnly('event_index')}

      CREATE TABLE checkpoints (
        seq       INTEGER PRIMARY KEY,
        head_hash TEXT NOT NULL,
        ts        TEXT NOT NULL,
        key_id    TEXT NOT NULL,
        signature TEXT NOT NULL
      ) STRICT;
      ${appendOnly('checkpoints')}

      CREATE TABLE receipts (
        id        TEXT PRIMARY KEY,
        event_seq INTEGER NOT NULL,
        key_id    TEXT NOT NULL,
        body      TEXT NOT NULL,
        signature TEXT NOT NULL
      ) STRICT;
      CREATE INDEX receipts_by_event ON receipts(event_seq);
      ${appendOnly('receipts')}
    `);
  },
  // 2: the gate's state. Unlike the evidence tables these change (peers expire, tokens are revoked), and every
  // change is recorded as a ledger event by the code that makes it.
  (db) => {
    db.exec(`
      CREATE TABLE peers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        agent_type  TEXT NOT NULL,
        workspace   TEXT NOT NULL,
        preset      TEXT NOT NULL,
        overlay_ip  TEXT NOT NULL UNIQUE,
        jkt         TEXT NOT NULL,
        public_jwk  TEXT NOT NULL,
        wg_public_key TEXT NOT NULL,
        epoch       INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX peers_by_expiry ON peers(expires_at);

      -- A lease is the access token an enrolled peer presents (with a DPoP proof); only its SHA-256 is stored.
      CREATE TABLE leases (
        id          TEXT PRIMARY KEY,
        peer_id     TEXT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
        token_hash  TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX leases_by_peer ON leases(peer_id);

      -- Operator and workspace tokens (bearer, never DPoP); scopes is a JSON array.
      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        scopes      TEXT NOT NULL,
        workspace   TEXT,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        revoked_at  INTEGER
      ) STRICT;

      -- Ids revoked for good (peers, leases, tokens, later delegations and approvals).
      CREATE TABLE revocations (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        revoked_at  INTEGER NOT NULL
      ) STRICT;

      -- DPoP proof ids seen, kept until their acceptance window has passed (survives restarts).
      CREATE TABLE dpop_jti (
        jti         TEXT PRIMARY KEY,
        expires_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX dpop_jti_by_expiry ON dpop_jti(expires_at);

      -- Secrets, AES-256-GCM under $LATTICE_HOME/master.key; the name is the additional authenticated data.
      CREATE TABLE secrets (
        name        TEXT PRIMARY KEY,
        nonce       BLOB NOT NULL,
        ciphertext  BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;

      -- Small gate settings: the revocation epoch, the gate's WireGuard key pair.
      CREATE TABLE gate_state (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
      ) STRICT;
    `);
  },
  // 3: the action pipeline's state. Each change is committed together with the ledger event that records it.
  (db) => {
    db.exec(`
      -- One row per execute request, from decision to answer. response is the JSON answer ({status, body}) once
      -- final, returned again for a repeated eventId and to an agent polling its approval.
      CREATE TABLE requests (
        id                  TEXT PRIMARY KEY,
        peer_id             TEXT NOT NULL,
        workspace           TEXT NOT NULL,
        preset              TEXT NOT NULL,
        event_id            TEXT,
        action              TEXT NOT NULL,
        params              TEXT NOT NULL,
        request_hash        TEXT NOT NULL,
        plan                TEXT,
        plan_sha256         TEXT,
        policy_hash         TEXT,
        policy_version      TEXT,
        policies            TEXT NOT NULL,
        reason              TEXT,
        state               TEXT NOT NULL,
        approval_id         TEXT UNIQUE,
        approval_expires_at INTEGER,
        decided_by          TEXT,
        response            TEXT,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        UNIQUE (peer_id, event_id)
      ) STRICT;
      CREATE INDEX requests_open ON requests(state) WHERE state IN ('held', 'approved', 'running');

      -- One-shot grants, inserted when consumed: the primary key refuses a second use of a grant and the unique
      -- request_id a second execution of a request, whatever grant it carries.
      CREATE TABLE grants (
        id          TEXT PRIMARY KEY,
        request_id  TEXT NOT NULL UNIQUE,
        body        TEXT NOT NULL,
        signature   TEXT NOT NULL,
        consumed_at INTEGER NOT NULL
      ) STRICT;

      -- Operator-set limits (scope agent | workspace | preset) and what each subject used per fixed window.
      CREATE TABLE budgets (
        scope      TEXT NOT NULL,
        subject    TEXT NOT NULL,
        calls      INTEGER,
        cost       REAL,
        window_ms  INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (scope, subject)
      ) STRICT;
      CREATE TABLE budget_usage (
        scope        TEXT NOT NULL,
        subject      TEXT NOT NULL,
        window_ms    INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        calls        INTEGER NOT NULL,
        cost         REAL NOT NULL,
        PRIMARY KEY (scope, subject, window_ms, window_start)
      ) STRICT;
    `);
  },
  // 4: delegation. A delegated peer names its parent and holds a subset of its capabilities (action patterns; NULL,
  // for an enrolled peer, is whatever policy allows). The delegations table outlives the peer rows, so a parent
  // can list the children it had after they ended.
  (db) => {
    db.exec(`
      ALTER TABLE peers ADD COLUMN parent_id TEXT;
      ALTER TABLE peers ADD COLUMN capabilities TEXT;
      CREATE INDEX peers_by_parent ON peers(parent_id) WHERE parent_id IS NOT NULL;

      CREATE TABLE delegations (
        id           TEXT PRIMARY KEY,
        parent_id    TEXT NOT NULL,
        name         TEXT NOT NULL,
        capabilities TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        ended_at     INTEGER,
        end_reason   TEXT
      ) STRICT;
      CREATE INDEX delegations_by_parent ON delegations(parent_id, created_at);
    `);
  },
  // 5: webhooks. `webhooks` is the subscription the gate syncs from its configuration at start (name, the ledger
  // types it announces, the webhook-id prefix of its messages); `webhook_outbox` holds one row per announced
  // event per subscribed webhook, written by the trigger below. The outbox is delivery state, not evidence: rows
  // move pending → delivered | dead.
  (db) => {
    db.exec(`
      CREATE TABLE webhooks (
        name           TEXT PRIMARY KEY,
        types          TEXT NOT NULL,
        message_prefix TEXT NOT NULL,
        settings       TEXT NOT NULL
      ) STRICT;

      CREATE TABLE webhook_outbox (
        webhook         TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        message_id      TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        delivered_at    INTEGER,
        PRIMARY KEY (webhook, seq)
      ) STRICT;
      CREATE INDEX webhook_outbox_pending ON webhook_outbox(webhook, seq) WHERE state = 'pending';
    `);
  },
  // 6: the presets an enroll token may grant (a JSON array; NULL for a token without the enroll scope). Enroll
  // tokens made before could grant any preset; they now grant the default one, sandboxed.
  (db) => {
    db.exec(`
      ALTER TABLE tokens ADD COLUMN presets TEXT;
      UPDATE tokens SET presets = '["sandboxed"]' WHERE EXISTS (SELECT 1 FROM json_each(tokens.scopes) WHERE value = 'enroll');
    `);
  },
];

/**
 * The outbox trigger: for each event inserted, one message per subscribed webhook whose types contain its type,
 * written by the same statement as the event, whoever appends it (the gate or another process on the same file),
 * so an event that commits has its messages and one that rolls back has none.
 *
 * It exists only while some webhook is subscribed: whoever changes `webhooks` calls this in the same transaction
 * (core/webhooks/subscriptions.ts). Even finding no row in an empty table cost each appended event about 2 µs,
 * a tenth of what the ledger spends on it; a ledger without webhooks now pays nothing.
 */
export function announceEvents(db: Database.Database, on: boolean): void {
  db.exec(
    on
      ? `CREATE TRIGGER IF NOT EXISTS events_announce AFTER INSERT ON events
         BEGIN
           INSERT INTO webhook_outbox (webhook, seq, message_id)
             SELECT w.name, NEW.seq, w.message_prefix || NEW.seq FROM webhooks w
             WHERE EXISTS (SELECT 1 FROM json_each(w.types) WHERE value = NEW.type);
         END`
      : 'DROP TRIGGER IF EXISTS events_announce',
  );
}

export const SCHEMA_VERSION = MIGRATIONS.length;

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export function assertKnownSchema(db: Database.Database, file: string): number {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) {
    throw new LatticeError(
      'LEDGER_SCHEMA_TOO_NEW',
      `${file} has ledger schema ${version}, newer than this lattice understands (${SCHEMA_VERSION}); upgrade lattice`,
    );
  }
  return version;
}

/** Applies every migration the database has not seen, each in its own transaction. */
export function migrate(db: Database.Database, file: string): void {
  for (let version = assertKnownSchema(db, file); version < SCHEMA_VERSION; version++) {
    const step = MIGRATIONS[version];
    if (step === undefined) throw new Error(`missing migration ${version + 1}`);
    db.transaction(() => {
      step(db);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}
