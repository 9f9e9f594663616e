import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';

export interface Migration {
  /** 1, 2, 3, … with no gaps; recorded in `PRAGMA user_version` once applied. */
  version: number;
  name: string;
  up(db: Database.Database): void;
}

/**
 * Every schema change, in order. Append new steps; never edit an applied one (a store created
 * by an older build replays only the steps it lacks).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sessions, audit log, checkpoints, blobs, meta',
    up(db) {
      db.exec(`
        CREATE TABLE meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;

        CREATE TABLE sessions (
          id            TEXT PRIMARY KEY,
          connection    TEXT NOT NULL,
          protocol      TEXT NOT NULL,
          identity      TEXT NOT NULL,
          source        TEXT NOT NULL,
          started_at    TEXT NOT NULL,
          ended_at      TEXT,
          status        TEXT NOT NULL CHECK (status IN ('active', 'ok', 'error', 'cut')),
          error_code    TEXT,
          error_message TEXT,
          summary       TEXT,
          start_seq     INTEGER NOT NULL,
          end_seq       INTEGER
        ) STRICT;
        CREATE INDEX sessions_started ON sessions (started_at);
        CREATE INDEX sessions_identity ON sessions (identity, started_at);
        CREATE INDEX sessions_connection ON sessions (connection, started_at);
        CREATE INDEX sessions_active ON sessions (started_at) WHERE ended_at IS NULL;

        -- data is the canonical JSON of the record's data (docs/audit-log.md), so the hash can be
        -- recomputed from the row without re-encoding.
        CREATE TABLE audit_records (
          seq        INTEGER PRIMARY KEY,
          ts         TEXT NOT NULL,
          kind       TEXT NOT NULL,
          session_id TEXT,
          identity   TEXT,
          source     TEXT,
          connection TEXT,
          rule       TEXT,
          decision   TEXT,
          data       TEXT NOT NULL,
          prev_hash  TEXT NOT NULL,
          hash       TEXT NOT NULL
        ) STRICT;
        CREATE INDEX audit_records_session ON audit_records (session_id, seq) WHERE session_id IS NOT NULL;
        CREATE INDEX audit_records_kind ON audit_records (kind, seq);

        CREATE TABLE audit_checkpoints (
          seq       INTEGER PRIMARY KEY REFERENCES audit_records (seq),
          hash      TEXT NOT NULL,
          ts        TEXT NOT NULL,
          key_id    TEXT NOT NULL,
          signature TEXT NOT NULL
        ) STRICT;

        -- Append-only by construction. Someone with the file can drop these triggers; the hash
        -- chain and the signed checkpoints are what detect that, these stop honest mistakes.
        CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
          BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END;
        CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
          BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END;
        CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
          BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
        CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
          BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

        CREATE TABLE blobs (
          sha256     TEXT PRIMARY KEY,
          size       INTEGER NOT NULL,
          bytes      BLOB NOT NULL,
          created_at TEXT NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    name: 'ssh_keys: public keys registered with `ward keys add`',
    up(db) {
      // The owner's roles and groups are kept as they were when the key was added: a key logs
      // in as that identity until it is removed (docs: ward keys).
      db.exec(`
        CREATE TABLE ssh_keys (
          fingerprint  TEXT PRIMARY KEY,
          identity     TEXT NOT NULL,
          subject      TEXT NOT NULL,
          kind         TEXT NOT NULL CHECK (kind IN ('user', 'service')),
          roles        TEXT NOT NULL,
          groups       TEXT NOT NULL,
          issuer       TEXT NOT NULL,
          algorithm    TEXT NOT NULL,
          public_key   TEXT NOT NULL,
          comment      TEXT NOT NULL,
          created_at   TEXT NOT NULL,
          last_used_at TEXT
        ) STRICT;
        CREATE INDEX ssh_keys_identity ON ssh_keys (identity, created_at);
      `);
    },
  },
  {
    version: 3,
    name: 'session lookups through a side table filled in chunks, not a per-record index',
    up(db) {
      // An index on audit_records (session_id, seq) puts each of N concurrent sessions' next
      // entry on its own leaf page: with 64 sessions a 64-record commit wrote 91 WAL pages, 78 of
      // them for that index (13 without it). The side table gets the same entries once per
      // chunk of records (AuditLog.indexSessions), sorted, so those pages are written once per
      // chunk; lookups read it plus the few unindexed records above the watermark.
      db.exec(`
        DROP INDEX audit_records_session;
        CREATE TABLE audit_session_index (
          session_id TEXT NOT NULL,
          seq        INTEGER NOT NULL,
          PRIMARY KEY (session_id, seq)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO audit_session_index (session_id, seq)
          SELECT session_id, seq FROM audit_records WHERE session_id IS NOT NULL ORDER BY session_id, seq;
        INSERT INTO meta (key, value)
          VALUES ('audit_session_indexed_to', (SELECT CAST(coalesce(max(seq), 0) AS TEXT) FROM audit_records));
      `);
    },
  },
  {
    version: 4,
    name: 'access_requests, access_grants (just-in-time access), service_accounts',
    up(db) {
      // Times are ISO-8601 UTC strings, as everywhere in the store. A grant row is never
      // deleted: it expires (expires_at) or is revoked (revoked_at), and both stay readable.
      // A service account keeps only the SHA-256 of its secret (service-accounts.ts says why).
      db.exec(`
        CREATE TABLE access_requests (
          id               TEXT PRIMARY KEY,
          requester        TEXT NOT NULL,
          connection       TEXT NOT NULL,
          action           TEXT NOT NULL CHECK (action IN ('connect', 'exec')),
          duration_ms      INTEGER NOT NULL CHECK (duration_ms > 0),
          reason           TEXT NOT NULL,
          status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
          created_at       TEXT NOT NULL,
          decided_by       TEXT,
          decided_at       TEXT,
          decision_comment TEXT,
          grant_id         TEXT
        ) STRICT;
        CREATE INDEX access_requests_status ON access_requests (status, created_at);
        CREATE INDEX access_requests_requester ON access_requests (requester, created_at);

        CREATE TABLE access_grants (
          id            TEXT PRIMARY KEY,
          request_id    TEXT REFERENCES access_requests (id),
          identity      TEXT NOT NULL,
          connection    TEXT NOT NULL,
          action        TEXT NOT NULL CHECK (action IN ('connect', 'exec')),
          starts_at     TEXT NOT NULL,
          expires_at    TEXT NOT NULL,
          granted_by    TEXT NOT NULL,
          revoked_at    TEXT,
          revoked_by    TEXT,
          revoke_reason TEXT
        ) STRICT;
        CREATE INDEX access_grants_live ON access_grants (expires_at) WHERE revoked_at IS NULL;

        CREATE TABLE service_accounts (
          name              TEXT PRIMARY KEY,
          description       TEXT NOT NULL,
          roles             TEXT NOT NULL,
          groups            TEXT NOT NULL,
          secret_hash       TEXT NOT NULL,
          federated_issuer  TEXT,
          federated_subject TEXT,
          disabled          INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
          created_at        TEXT NOT NULL,
          created_by        TEXT NOT NULL,
          updated_at        TEXT NOT NULL
        ) STRICT;
        CREATE UNIQUE INDEX service_accounts_federated ON service_accounts (federated_issuer, federated_subject)
          WHERE federated_issuer IS NOT NULL;
      `);
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema to `SCHEMA_VERSION`, one step per transaction. Each step re-reads
 * `user_version` under an IMMEDIATE (write) lock, so two processes opening the same new file
 * never both apply a step. A store written by a newer build is refused, not guessed at.
 *
 * @returns the versions applied (empty when the store was current).
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const latest = migrations.length;
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order at index ${i}`);
  });
  const applied: number[] = [];
  for (;;) {
    const current = userVersion(db);
    if (current > latest) {
      throw new WardError(
        'ERR_STORE_TOO_NEW',
        'unavailable',
        `the store has schema version ${current} but this build knows up to ${latest}; run a newer ward or restore a backup`,
      );
    }
    if (current === latest) return applied;
    const step = db.transaction(() => {
      const now = userVersion(db);
      if (now !== current) return; // someone else applied it; loop re-reads.
      const m = migrations[current];
      if (!m) return;
      m.up(db);
      // user_version lives in the database header, so it commits or rolls back with the step.
      db.pragma(`user_version = ${m.version}`);
      applied.push(m.version);
    });
    step.immediate();
  }
}

export function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}
