import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { WardError } from '@ward/protocol';
import Database from 'better-sqlite3';
import { AuditLog, type Durability } from '../audit/audit-log.js';
import { loadOrCreateSigningKey } from '../audit/signing-key.js';
import { type BlobStore, createBlobStore } from './blobs.js';
import { type Checkpointer, createCheckpointer } from './checkpointer.js';
import { migrate, SCHEMA_VERSION, userVersion } from './migrations.js';
import { createSessionRepository, type SessionRepository } from './sessions.js';
import { createSshKeyRepository, type SshKeyRepository } from './ssh-keys.js';
import { openWalSync, type WalSync } from './wal-sync.js';

export interface StoreOptions {
  /** SQLite file; its directory is created (mode 0700) if missing. */
  path: string;
  /** Ed25519 PKCS#8 PEM; created with mode 0600 on first start. */
  signingKeyPath: string;
  /** See `AuditLogOptions.durability`. Default `group`. */
  durability?: Durability | undefined;
  /** Group commit: records per transaction at most. Default 512. */
  maxBatch?: number | undefined;
  /** Group commit: extra wait for company, in ms. Default 0 (next event-loop turn). */
  maxDelayMs?: number | undefined;
  /** How long a write waits on another connection's lock. Default 5000 ms. */
  busyTimeoutMs?: number | undefined;
  /**
   * Open for reading only (`ward audit verify`/`export` beside a running gateway): no schema
   * change, no key creation, no tail check (so a tampered store can still be inspected),
   * every write refused with ERR_STORE_READ_ONLY. Exports still get a signed final checkpoint.
   */
  readOnly?: boolean | undefined;
  /** Largest blob accepted. Default 64 MiB. */
  maxBlobBytes?: number | undefined;
}

export interface Store {
  readonly audit: AuditLog;
  readonly sessions: SessionRepository;
  readonly blobs: BlobStore;
  /** Public keys users registered for SSH (`ward keys add`). */
  readonly sshKeys: SshKeyRepository;
  /** Random id chosen when the store was created; bound into every checkpoint signature. */
  readonly gatewayId: string;
  readonly path: string;
  /** Commits pending audit records, then closes the database. Idempotent. */
  close(): Promise<void>;
}

/** @internal The store plus its connection, for tests and maintenance code in this package. */
export interface StoreInternals extends Store {
  readonly db: Database.Database;
  /** WAL checkpoints the worker ran / failed (undefined for a read-only store). */
  readonly checkpoints: (() => { checkpoints: number; failures: number }) | undefined;
}

/**
 * Opens (creating and migrating as needed) the gateway's SQLite store: WAL journal,
 * synchronous=NORMAL with an fdatasync of the WAL off the event loop before any audit append
 * resolves (see wal-sync.ts), busy_timeout, foreign keys on.
 * Loads or creates the audit signing key and refuses a store whose audit tail was changed
 * outside ward (ERR_AUDIT_TAMPERED), a store written by a newer build (ERR_STORE_TOO_NEW) and
 * a key that is not the one the store was started with (ERR_AUDIT_KEY_MISMATCH).
 * One gateway process per store file.
 *
 * @example
 * const store = openStore({ path: '/var/lib/ward/ward.db', signingKeyPath: '/var/lib/ward/audit-key.pem' });
 * const session = await store.sessions.start({ id, connection: 'prod-pg', protocol: 'postgres', identity, source });
 * await store.audit.append({ kind: 'pg.query', sessionId: id, decision: 'allow', data: { sql } });
 * await store.close();
 */
export function openStore(o: StoreOptions): Store {
  return openStoreInternal(o);
}

export function openStoreInternal(o: StoreOptions): StoreInternals {
  const readOnly = o.readOnly ?? false;
  if (!readOnly) mkdirSync(dirname(o.path), { recursive: true, mode: 0o700 });
  let db: Database.Database;
  let wal: WalSync | undefined;
  let checkpointer: Checkpointer | undefined;
  try {
    db = new Database(o.path, { readonly: readOnly, fileMustExist: readOnly });
  } catch (err) {
    throw new WardError('ERR_STORE_OPEN', 'unavailable', `cannot open the store at ${o.path}`, { cause: err });
  }
  try {
    const busyTimeoutMs = o.busyTimeoutMs ?? 5000;
    if (readOnly) {
      db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
      checkSchemaCurrent(db);
    } else {
      configure(db, busyTimeoutMs);
      migrate(db);
    }
    const key = loadOrCreateSigningKey(o.signingKeyPath, !readOnly);
    const gatewayId = readOnly ? readMeta(db, key.keyId) : initMeta(db, key.publicKeyPem, key.keyId);
    wal = readOnly ? undefined : openWalSync(o.path);
    if (!readOnly) checkpointer = createCheckpointer(o.path);
    const walSync = wal?.sync;
    // Pages written since the last checkpoint, estimated from the audit log's counters (a
    // commit writes about two pages plus one per five records: record leaves, the checkpoint
    // row, the session side table); blobs are left to SQLite's fallback checkpoint.
    let checkpointedAt = 0;
    let syncs = 0;
    const sync =
      walSync &&
      (async () => {
        await walSync();
        // stats() copies an object: look every 16th sync, which is precise enough here.
        if (++syncs % 16 !== 0) return;
        const s = audit.stats();
        const pages = s.commits * 2 + s.records / 5;
        if (pages - checkpointedAt >= CHECKPOINT_PAGES) {
          checkpointedAt = pages;
          checkpointer?.nudge();
        }
      });
    const audit = new AuditLog({
      db,
      key,
      gatewayId,
      readOnly,
      durability: o.durability,
      maxBatch: o.maxBatch,
      maxDelayMs: o.maxDelayMs,
      sync,
    });
    if (!readOnly) audit.assertTailIntact();
    let closed = false;
    const cp = checkpointer;
    return {
      db,
      checkpoints: cp && (() => ({ ...cp.stats })),
      audit,
      sessions: createSessionRepository(db, audit),
      blobs: createBlobStore(db, o.maxBlobBytes ?? 64 * 1024 * 1024, audit),
      sshKeys: createSshKeyRepository(db),
      gatewayId,
      path: o.path,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await audit.close();
          await checkpointer?.close();
        } finally {
          db.close();
          wal?.close();
        }
      },
    };
  } catch (err) {
    void checkpointer?.close();
    db.close();
    wal?.close();
    if (err instanceof WardError) throw err;
    throw new WardError('ERR_STORE_OPEN', 'unavailable', `cannot open the store at ${o.path}`, { cause: err });
  }
}

/** WAL pages between checkpoints (SQLite's default automatic checkpoint interval). */
const CHECKPOINT_PAGES = 1000;

function configure(db: Database.Database, busyTimeoutMs: number): void {
  // busy_timeout first, so the journal-mode switch itself waits for another opener.
  db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new Error(`the store could not switch to WAL (journal_mode is ${String(mode)})`);
  // NORMAL: a commit writes the WAL without syncing it, so it no longer blocks the event loop
  // for the disk. Audit appends resolve only after an fdatasync of the WAL that began after
  // their commit (wal-sync.ts), so a resolved append still survives power loss; checkpoints
  // sync the WAL first under NORMAL. Other writes (blobs, keys) are durable once a later
  // append is: the WAL is replayed as a prefix.
  db.pragma('synchronous = NORMAL');
  // Checkpoints run in a worker (checkpointer.ts) about every CHECKPOINT_PAGES; SQLite's own,
  // on this connection and so on the event loop, only if the WAL outgrows that four times over.
  db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES * 4}`);
  db.pragma('foreign_keys = ON');
}

function checkSchemaCurrent(db: Database.Database): void {
  const version = userVersion(db);
  if (version > SCHEMA_VERSION) migrate(db); // throws ERR_STORE_TOO_NEW
  if (version < SCHEMA_VERSION) {
    throw new WardError(
      'ERR_STORE_OPEN',
      'unavailable',
      `the store has schema version ${version}, this build needs ${SCHEMA_VERSION}; open it once read-write (start the gateway) to migrate`,
    );
  }
}

function readMeta(db: Database.Database, keyId: string): string {
  const read = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const storedKey = read.get('audit_key_id')?.value;
  if (storedKey !== undefined && storedKey !== keyId) throw keyMismatch(keyId, storedKey);
  return read.get('gateway_id')?.value ?? '';
}

function keyMismatch(keyId: string, storedKey: string): WardError {
  return new WardError(
    'ERR_AUDIT_KEY_MISMATCH',
    'internal',
    `the audit signing key (id ${keyId.slice(0, 16)}…) is not the one this store was started with (${storedKey.slice(0, 16)}…); restore the original key file`,
  );
}

function initMeta(db: Database.Database, publicKeyPem: string, keyId: string): string {
  const read = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const write = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
  return db
    .transaction(() => {
      const storedKey = read.get('audit_key_id')?.value;
      if (storedKey === undefined) {
        write.run('audit_public_key', publicKeyPem);
        write.run('audit_key_id', keyId);
      } else if (storedKey !== keyId) {
        throw keyMismatch(keyId, storedKey);
      }
      let gatewayId = read.get('gateway_id')?.value;
      if (gatewayId === undefined) {
        gatewayId = randomUUID();
        write.run('gateway_id', gatewayId);
        write.run('created_at', new Date().toISOString());
      }
      return gatewayId;
    })
    .immediate();
}
