import { sign, verify } from 'node:crypto';
import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';
import { type ChainFields, canonicalJson, checkpointPayload, GENESIS_HASH, recordHash } from './canonical.js';
import { assertNoSecrets } from './secret-guard.js';
import type { SigningKey } from './signing-key.js';
import type { AuditCheckpoint, AuditInput, AuditRecord, JsonObject, ListRecordsQuery } from './types.js';

export type Durability = 'group' | 'strict';

export interface AuditLogOptions {
  db: Database.Database;
  key: SigningKey;
  gatewayId: string;
  /**
   * `group` (default): concurrent appends share one transaction (one fsync); each promise
   * resolves once its batch is durable. `strict`: every append commits its own transaction.
   */
  durability?: Durability | undefined;
  /** Refuse every append (a store opened read-only, e.g. by `ward audit verify`). */
  readOnly?: boolean | undefined;
  /** Group mode: commit as soon as this many records wait. Default 512. */
  maxBatch?: number | undefined;
  /**
   * Group mode: how long the first waiting record may wait for company. 0 (default) commits
   * on the next turn of the event loop (`setImmediate`), which already batches every append
   * made by callbacks of the same I/O round.
   */
  maxDelayMs?: number | undefined;
  /**
   * Makes every transaction committed so far durable, off the event loop (the store passes an
   * fdatasync of the WAL file through libuv's thread pool, its connection runs with
   * synchronous=NORMAL). An append resolves only after a sync that began after its commit.
   * Omitted: a commit is taken as durable when it returns (a synchronous=FULL connection).
   */
  sync?: (() => Promise<void>) | undefined;
  /**
   * A sync still running after this long counts as failed (ERR_AUDIT_UNAVAILABLE, open
   * sessions end): with the disk stuck, relaying would otherwise go on while records pile up
   * that can never be vouched for. Default 15 000 ms.
   */
  syncTimeoutMs?: number | undefined;
}

export interface AuditStats {
  /** Transactions committed (each with its checkpoint). */
  commits: number;
  records: number;
  failedCommits: number;
  /** Durability syncs completed (each covers every transaction committed before it began). */
  syncs: number;
  /** Records waiting for their transaction. */
  pending: number;
  /** Records committed and waiting for their sync. */
  unsynced: number;
  lastSeq: number;
}

export type UnhealthyListener = (err: WardError) => void;

/**
 * Work that must commit atomically with a record (e.g. the sessions row of a `session.start`).
 * Runs inside the batch transaction under a savepoint: throwing a WardError or hitting a
 * constraint rejects only this append; any other error fails the batch.
 */
export type RecordHook = (record: AuditRecord) => void;

/**
 * One waiting append. It is its own ChainFields: `seq` and `prev_hash` are filled in when its
 * batch commits, so the hot path builds no intermediate objects per record.
 */
class Pending implements ChainFields {
  seq = 0;
  prev_hash = '';
  /** Set once committed; handed to `resolve` when the sync covering it completes. */
  record: AuditRecord | undefined;
  resolve: (r: AuditRecord) => void = noop;
  reject: (e: unknown) => void = noop;
  constructor(
    readonly ts: string,
    readonly kind: string,
    readonly session_id: string | null,
    readonly identity: string | null,
    readonly source: string | null,
    readonly connection: string | null,
    readonly rule: string | null,
    readonly decision: string | null,
    readonly dataJson: string,
    /** Cleared once committed: it may hold staged blob bytes, not needed while the sync runs. */
    public hook: RecordHook | undefined,
  ) {}
}

function noop(): void {}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface BatchOutcome {
  results: (AuditRecord | Error)[];
  seq: number;
  hash: string;
  indexedTo: number;
}

interface RecordRow {
  seq: number;
  ts: string;
  kind: string;
  session_id: string | null;
  identity: string | null;
  source: string | null;
  connection: string | null;
  rule: string | null;
  decision: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

interface CheckpointRow {
  seq: number;
  hash: string;
  ts: string;
  key_id: string;
  signature: string;
}

const MAX_KIND = 128;
// Records per fill of the session side table (migration 3): large enough that each session's
// leaf page is written once per chunk rather than once per commit, small enough that the
// unindexed tail a session lookup scans stays cheap.
const SESSION_INDEX_CHUNK = 4096;
const RECORD_COLUMNS = 'seq, ts, kind, session_id, identity, source, connection, rule, decision, data, prev_hash, hash';
const MAX_FIELD = 4096;

/**
 * The append-only, hash-chained audit log over the store's database. Obtain it from
 * `openStore(...).audit`.
 *
 * @example
 * const rec = await store.audit.append({ kind: 'pg.query', sessionId, identity, decision: 'allow',
 *   rule: 'read-only', data: { sql: 'SELECT 1' } });
 * // rec.seq is durable here: only now forward the query.
 */
export class AuditLog {
  readonly durability: Durability;
  readonly gatewayId: string;
  /** SPKI PEM of the checkpoint signing key: give it to auditors with an export. */
  readonly publicKeyPem: string;
  readonly keyId: string;

  private readonly db: Database.Database;
  private readonly key: SigningKey;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private pending: Pending[] = [];
  /** Committed, not yet covered by a completed sync. */
  private unsynced: Pending[] = [];
  private readonly sync: (() => Promise<void>) | undefined;
  private readonly syncTimeoutMs: number;
  private syncing = false;
  private syncError: WardError | undefined;
  /** `flush` callers waiting for the sync in flight, and for the one after it. */
  private syncWaiters: Waiter[] = [];
  private nextSyncWaiters: Waiter[] = [];
  private durable: { seq: number; hash: string };
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private headSeq: number;
  private headHash: string;
  /** Records up to this seq are in audit_session_index. */
  private sessionIndexedTo: number;
  private unhealthyError: WardError | undefined;
  private closed = false;
  private readonly readOnly: boolean;
  private readonly listeners = new Set<UnhealthyListener>();
  private readonly counters = { commits: 0, records: 0, failedCommits: 0, syncs: 0 };
  private readonly commitBatch: (batch: Pending[]) => BatchOutcome;
  private readonly stmt: {
    insertRecord: Database.Statement;
    insertCheckpoint: Database.Statement;
    head: Database.Statement<[], { seq: number; hash: string }>;
    indexSessions: Database.Statement<[number, number]>;
    setSessionIndexedTo: Database.Statement<[string]>;
  };

  constructor(o: AuditLogOptions) {
    this.db = o.db;
    this.key = o.key;
    this.gatewayId = o.gatewayId;
    this.publicKeyPem = o.key.publicKeyPem;
    this.keyId = o.key.keyId;
    this.durability = o.durability ?? 'group';
    this.readOnly = o.readOnly ?? false;
    this.maxBatch = Math.max(1, o.maxBatch ?? 512);
    this.maxDelayMs = Math.max(0, o.maxDelayMs ?? 0);
    this.sync = o.sync;
    this.syncTimeoutMs = Math.max(1, o.syncTimeoutMs ?? 15_000);
    this.stmt = {
      insertRecord: this.db.prepare(
        // Positional parameters: binding a named object costs about three times as much.
        `INSERT INTO audit_records (seq, ts, kind, session_id, identity, source, connection, rule, decision, data, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertCheckpoint: this.db.prepare(
        'INSERT INTO audit_checkpoints (seq, hash, ts, key_id, signature) VALUES (?, ?, ?, ?, ?)',
      ),
      head: this.db.prepare('SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1'),
      indexSessions: this.db.prepare(
        `INSERT INTO audit_session_index (session_id, seq)
         SELECT session_id, seq FROM audit_records WHERE seq > ? AND seq <= ? AND session_id IS NOT NULL
         ORDER BY session_id, seq`,
      ),
      setSessionIndexedTo: this.db.prepare(
        `INSERT INTO meta (key, value) VALUES ('audit_session_indexed_to', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
    };
    this.sessionIndexedTo = sessionIndexedTo(this.db);
    // The head is the last *signed* state. A writable open also checks the newest record is
    // that one (assertTailIntact); a read-only open thereby never exports or signs over
    // records that no checkpoint covers.
    const head = this.stmt.head.get();
    this.headSeq = head?.seq ?? 0;
    this.headHash = head?.hash ?? GENESIS_HASH;
    this.durable = { seq: this.headSeq, hash: this.headHash };

    const savepoint = this.db.transaction((hook: RecordHook, record: AuditRecord) => hook(record));
    this.commitBatch = this.db.transaction((batch: Pending[]) => {
      let indexedTo = this.sessionIndexedTo;
      if (this.headSeq - indexedTo >= SESSION_INDEX_CHUNK) {
        this.stmt.indexSessions.run(indexedTo, this.headSeq);
        this.stmt.setSessionIndexedTo.run(String(this.headSeq));
        indexedTo = this.headSeq;
      }
      let seq = this.headSeq;
      let hash = this.headHash;
      const results: (AuditRecord | Error)[] = [];
      for (const p of batch) {
        p.seq = seq + 1;
        p.prev_hash = hash;
        const recHash = recordHash(p, p.dataJson);
        const record = toRecord(p, p.dataJson, recHash);
        if (p.hook) {
          try {
            savepoint(p.hook, record);
          } catch (err) {
            const own = hookError(err);
            if (!own) throw err;
            results.push(own);
            continue;
          }
        }
        this.stmt.insertRecord.run(
          p.seq,
          p.ts,
          p.kind,
          p.session_id,
          p.identity,
          p.source,
          p.connection,
          p.rule,
          p.decision,
          p.dataJson,
          p.prev_hash,
          recHash,
        );
        seq = p.seq;
        hash = recHash;
        results.push(record);
      }
      if (seq !== this.headSeq) {
        const cp = this.signCheckpoint(seq, hash, this.headSeq);
        this.stmt.insertCheckpoint.run(cp.seq, cp.hash, cp.ts, cp.keyId, cp.signature);
      }
      return { results, seq, hash, indexedTo };
    });
  }

  /**
   * Refuses a log whose tail is not what this gateway last signed: the newest record must
   * hash correctly and carry a valid checkpoint (both are written in one transaction, so a
   * crash never leaves them apart). Otherwise someone appended, edited or deleted rows while
   * the gateway was down, and signing the next checkpoint on top would launder that.
   */
  assertTailIntact(): void {
    const last = this.db.prepare<[], RecordRow>('SELECT * FROM audit_records ORDER BY seq DESC LIMIT 1').get();
    const cp = this.db
      .prepare<[], CheckpointRow>(
        'SELECT seq, hash, ts, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1',
      )
      .get();
    let problem: string | undefined;
    if (!last) {
      if (cp) problem = `checkpoint ${cp.seq} vouches for records that are gone`;
    } else if (recordHash(last, last.data) !== last.hash) {
      problem = `record ${last.seq} does not hash to its stored hash`;
    } else if (!cp || cp.seq !== last.seq || cp.hash !== last.hash) {
      problem = `record ${last.seq} is not covered by a signed checkpoint (last checkpoint: ${cp ? cp.seq : 'none'})`;
    } else if (
      cp.key_id !== this.keyId ||
      !verify(
        null,
        checkpointPayload({
          seq: cp.seq,
          hash: cp.hash,
          ts: cp.ts,
          gatewayId: this.gatewayId,
          prevSeq:
            this.db
              .prepare<[number], { seq: number | null }>('SELECT max(seq) AS seq FROM audit_checkpoints WHERE seq < ?')
              .get(cp.seq)?.seq ?? 0,
          final: false,
        }),
        this.key.publicKey,
        Buffer.from(cp.signature, 'base64'),
      )
    ) {
      problem = `checkpoint ${cp.seq} does not verify with this gateway's key`;
    }
    if (problem) {
      throw new WardError(
        'ERR_AUDIT_TAMPERED',
        'internal',
        `the audit log's tail was changed outside ward: ${problem}; export it and run \`ward audit verify\`, then start on a new store`,
      );
    }
  }

  /** False once a write has failed; every later append is refused with ERR_AUDIT_UNAVAILABLE. */
  get healthy(): boolean {
    return this.unhealthyError === undefined && !this.closed && !this.readOnly;
  }

  /** The last committed record (seq 0 and 64 zeros when the log is empty). */
  head(): { seq: number; hash: string } {
    return { seq: this.headSeq, hash: this.headHash };
  }

  /** The last record known durable (its sync completed); `head()` once nothing waits. */
  durableHead(): { seq: number; hash: string } {
    return { ...this.durable };
  }

  stats(): AuditStats {
    return { ...this.counters, pending: this.pending.length, unsynced: this.unsynced.length, lastSeq: this.headSeq };
  }

  /**
   * Called once, the first time a write fails, with the ERR_AUDIT_UNAVAILABLE error: the
   * gateway refuses new work and ends open sessions. Returns a function that unsubscribes.
   */
  on(event: 'unhealthy', listener: UnhealthyListener): () => void {
    if (event !== 'unhealthy') throw new TypeError(`unknown event ${String(event)}`);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  off(event: 'unhealthy', listener: UnhealthyListener): void {
    if (event === 'unhealthy') this.listeners.delete(listener);
  }

  /**
   * Appends a record and resolves once it is durable (its batch, chain link and checkpoint
   * committed, and the WAL synced to disk after that commit). Rejects with ERR_AUDIT_SECRET /
   * ERR_AUDIT_INVALID for a bad input (nothing written), ERR_AUDIT_UNAVAILABLE when the store
   * cannot write or sync.
   */
  append(input: AuditInput): Promise<AuditRecord> {
    return this.appendWith(input, undefined);
  }

  /** `append`, plus a hook committed in the same transaction as the record. */
  appendWith(input: AuditInput, hook: RecordHook | undefined): Promise<AuditRecord> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let entry: Pending;
    try {
      entry = prepare(input, hook);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
      this.pending.push(entry);
      if (this.durability === 'strict' || this.pending.length >= this.maxBatch) this.commitPending();
      else this.schedule();
    });
  }

  /** Commits whatever is waiting now; resolves when it is durable. */
  flush(): Promise<void> {
    this.commitPending();
    if (this.unhealthyError) return Promise.reject(this.unhealthyError);
    if (this.unsynced.length === 0 && !this.syncing) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      // Everything committed so far is covered by the sync in flight, unless some of it was
      // committed after that sync began: then by the next one.
      (this.unsynced.length > 0 ? this.nextSyncWaiters : this.syncWaiters).push({ resolve, reject });
    });
  }

  /**
   * Records in seq order.
   * @example store.audit.listRecords({ sessionId: 's-1', afterSeq: 0, limit: 50 })
   */
  listRecords(q: ListRecordsQuery = {}): AuditRecord[] {
    const params: Record<string, string | number> = { after: q.afterSeq ?? 0, limit: clampLimit(q.limit) };
    if (q.kind !== undefined) params['kind'] = q.kind;
    let sql: string;
    if (q.sessionId === undefined) {
      sql = `SELECT ${RECORD_COLUMNS} FROM audit_records WHERE seq > @after${q.kind === undefined ? '' : ' AND kind = @kind'}
             ORDER BY seq LIMIT @limit`;
    } else {
      params['session'] = q.sessionId;
      const byKind = q.kind !== undefined;
      // The side table up to its watermark, then the records above it (fewer than a chunk).
      // The watermark is read in the same statement, so a read-only reader beside the gateway
      // sees one consistent snapshot. CROSS JOIN keeps the session's key as the driving index,
      // and naming i.seq lets the two arms merge in seq order without a sort.
      sql = `SELECT i.seq AS seq, ${RECORD_COLUMNS.split(', ')
        .slice(1)
        .map((c) => `r.${c}`)
        .join(', ')}
             FROM audit_session_index i CROSS JOIN audit_records r ON r.seq = i.seq
             WHERE i.session_id = @session AND i.seq > @after${byKind ? ' AND r.kind = @kind' : ''}
             UNION ALL
             SELECT ${RECORD_COLUMNS} FROM audit_records
             WHERE seq > max(@after, coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'audit_session_indexed_to'), 0))
               AND session_id = @session${byKind ? ' AND kind = @kind' : ''}
             ORDER BY seq LIMIT @limit`;
    }
    return this.db.prepare<Record<string, string | number>, RecordRow>(sql).all(params).map(rowToRecord);
  }

  listCheckpoints(q: { afterSeq?: number; limit?: number } = {}): AuditCheckpoint[] {
    return this.readCheckpoints(q.afterSeq ?? 0, Number.MAX_SAFE_INTEGER, clampLimit(q.limit)).map(rowToCheckpoint);
  }

  /** @internal Raw rows for export and verification, seq in (after, upTo]. */
  readRecordRows(after: number, upTo: number, limit: number): RecordRow[] {
    return this.db
      .prepare<[number, number, number], RecordRow>(
        'SELECT * FROM audit_records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      )
      .all(after, upTo, limit);
  }

  /** @internal */
  readCheckpoints(after: number, upTo: number, limit: number): CheckpointRow[] {
    return this.db
      .prepare<[number, number, number], CheckpointRow>(
        'SELECT seq, hash, ts, key_id, signature FROM audit_checkpoints WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
      )
      .all(after, upTo, limit);
  }

  /** @internal Every record and checkpoint in seq order, without paging (synchronous callers). */
  *iterateAll(): Generator<{ record: RecordRow } | { checkpoint: CheckpointRow }> {
    // Two statements iterate at once: allowed for readers on one connection.
    const cps = this.db.prepare<[], CheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY seq').iterate();
    try {
      let cp = cps.next();
      for (const record of this.db.prepare<[], RecordRow>('SELECT * FROM audit_records ORDER BY seq').iterate()) {
        while (!cp.done && cp.value.seq < record.seq) {
          yield { checkpoint: cp.value };
          cp = cps.next();
        }
        yield { record };
        while (!cp.done && cp.value.seq === record.seq) {
          yield { checkpoint: cp.value };
          cp = cps.next();
        }
      }
      while (!cp.done) {
        yield { checkpoint: cp.value };
        cp = cps.next();
      }
    } finally {
      // An open statement iterator keeps the connection busy: every later write would fail.
      cps.return?.();
    }
  }

  /** @internal A fresh signature over (seq, hash, now); `final` for the one an export ends with. */
  signCheckpoint(seq: number, hash: string, prevSeq: number, final = false): AuditCheckpoint {
    const ts = new Date().toISOString();
    const signature = sign(
      null,
      checkpointPayload({ seq, hash, ts, gatewayId: this.gatewayId, prevSeq, final }),
      this.key.privateKey,
    );
    return { seq, hash, ts, keyId: this.keyId, signature: signature.toString('base64') };
  }

  /**
   * @internal Commits what is pending, then refuses further appends; resolves once what was
   * committed is durable (or failed). The store closes the database after.
   */
  close(): Promise<void> {
    const flushed = this.flush().catch(() => {});
    this.closed = true;
    return flushed;
  }

  private refusal(): WardError | undefined {
    if (this.closed) return new WardError('ERR_STORE_CLOSED', 'unavailable', 'the store is closed');
    if (this.readOnly) return new WardError('ERR_STORE_READ_ONLY', 'unavailable', 'the store was opened read-only');
    if (this.unhealthyError) {
      return new WardError('ERR_AUDIT_UNAVAILABLE', 'unavailable', 'the audit log cannot write; refusing new records', {
        cause: this.unhealthyError,
      });
    }
    return undefined;
  }

  private schedule(): void {
    if (this.scheduled !== undefined) return;
    const run = () => {
      this.scheduled = undefined;
      // While a sync is in flight, records keep gathering: they commit together when it
      // completes (one transaction, one signature and one sync for all of them), and would not
      // be durable any sooner by committing now, since their sync has to wait for this one.
      if (!this.syncing) this.commitPending();
    };
    this.scheduled = this.maxDelayMs > 0 ? setTimeout(run, this.maxDelayMs) : setImmediate(run);
  }

  private commitPending(): void {
    if (this.scheduled !== undefined) {
      if (this.maxDelayMs > 0) clearTimeout(this.scheduled as NodeJS.Timeout);
      else clearImmediate(this.scheduled as NodeJS.Immediate);
      this.scheduled = undefined;
    }
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      const refused = this.refusal();
      if (refused) {
        for (const p of batch) p.reject(refused);
        continue;
      }
      let out: BatchOutcome;
      try {
        out = this.commitBatch(batch);
      } catch (err) {
        this.counters.failedCommits++;
        const failure = this.markUnhealthy(err);
        for (const p of batch) p.reject(failure);
        continue;
      }
      this.counters.commits++;
      this.counters.records += out.seq - this.headSeq;
      this.headSeq = out.seq;
      this.headHash = out.hash;
      this.sessionIndexedTo = out.indexedTo;
      out.results.forEach((r, i) => {
        const p = batch[i]!;
        p.hook = undefined;
        if (r instanceof Error) p.reject(r);
        else if (this.sync) {
          p.record = r;
          this.unsynced.push(p);
        } else p.resolve(r);
      });
    }
    this.startSync();
  }

  /**
   * Syncs what is committed, if no sync is in flight; one at a time, so every sync covers all
   * transactions committed before it began, and its completion settles exactly those.
   */
  private startSync(): void {
    if (this.syncing || !this.sync) return;
    if (this.syncError) {
      // Committed after a sync failed: the kernel may have dropped the failed pages and report
      // the next sync clean (fsync after EIO), so none of these can be vouched for. (After a
      // failed commit instead, what committed before it is still synced and resolves.)
      const failed = this.syncError;
      const batch = this.unsynced;
      const waiters = [...this.syncWaiters, ...this.nextSyncWaiters];
      this.unsynced = [];
      this.syncWaiters = [];
      this.nextSyncWaiters = [];
      for (const p of batch) p.reject(failed);
      for (const w of waiters) w.reject(failed);
      return;
    }
    if (this.unsynced.length === 0) return;
    const batch = this.unsynced;
    this.unsynced = [];
    this.syncWaiters = this.nextSyncWaiters;
    this.nextSyncWaiters = [];
    const covered = { seq: this.headSeq, hash: this.headHash };
    this.syncing = true;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.syncing = false;
      this.counters.syncs++;
      this.durable = covered;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const p of batch) p.resolve(p.record as AuditRecord);
      for (const w of waiters) w.resolve();
      this.afterSync();
    };
    const failed = (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.syncing = false;
      const failure = this.markUnhealthy(err);
      this.syncError = failure;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const p of batch) p.reject(failure);
      for (const w of waiters) w.reject(failure);
      this.afterSync();
    };
    const timer = setTimeout(
      () =>
        failed(
          Object.assign(new Error(`the WAL sync did not complete within ${this.syncTimeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        ),
      this.syncTimeoutMs,
    );
    // A stuck sync must not be what keeps the process up.
    timer.unref();
    this.sync().then(done, failed);
  }

  private afterSync(): void {
    if (this.pending.length > 0) this.commitPending();
    else this.startSync();
  }

  /**
   * @internal For other writes to the store (blobs): throws what an append would be refused
   * with (closed, read-only, unhealthy), so a full disk refuses every kind of new work alike.
   */
  assertWritable(): void {
    const refused = this.refusal();
    if (refused) throw refused;
  }

  /**
   * @internal Another write to the store failed (e.g. `blobs.put` on a full disk): the log
   * turns unhealthy exactly as after a failed commit. Returns the error to throw.
   */
  writeFailed(cause: unknown): WardError {
    return this.markUnhealthy(cause);
  }

  private markUnhealthy(cause: unknown): WardError {
    const sqliteCode = (cause as { code?: unknown }).code;
    const err = new WardError(
      'ERR_AUDIT_UNAVAILABLE',
      'unavailable',
      `the audit store cannot write (${typeof sqliteCode === 'string' ? sqliteCode : 'unknown error'}); new work is refused until the store is fixed and reopened`,
      { cause },
    );
    const first = this.unhealthyError === undefined;
    this.unhealthyError ??= err;
    if (!first) return err;
    for (const listener of this.listeners) {
      try {
        listener(err);
      } catch (listenerErr) {
        // Same contract as EventEmitter: a throwing listener is the listener's bug, surfaced
        // as an uncaught exception rather than swallowed; the other listeners still run.
        process.nextTick(() => {
          throw listenerErr;
        });
      }
    }
    return err;
  }
}

function sessionIndexedTo(db: Database.Database): number {
  const row = db
    .prepare<[], { seq: number }>(
      "SELECT CAST(value AS INTEGER) AS seq FROM meta WHERE key = 'audit_session_indexed_to'",
    )
    .get();
  return row?.seq ?? 0;
}

let lastMs = -1;
let lastIso = '';

/** `new Date().toISOString()`, formatted once per millisecond rather than once per record. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

function prepare(input: AuditInput, hook: RecordHook | undefined): Pending {
  if (typeof input !== 'object' || input === null) throw invalid('the input must be an object');
  if (typeof input.kind !== 'string' || input.kind.length === 0 || input.kind.length > MAX_KIND) {
    throw invalid(`kind must be a non-empty string of at most ${MAX_KIND} characters`);
  }
  const data = input.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid('data must be a JSON object');
  assertNoSecrets(data);
  return new Pending(
    isoNow(),
    input.kind,
    optional(input.sessionId, 'sessionId'),
    optional(input.identity, 'identity'),
    optional(input.source, 'source'),
    optional(input.connection, 'connection'),
    optional(input.rule, 'rule'),
    optional(input.decision, 'decision'),
    canonicalJson(data),
    hook,
  );
}

function optional(v: unknown, name: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > MAX_FIELD)
    throw invalid(`${name} must be a string of at most ${MAX_FIELD} characters`);
  return v;
}

function invalid(message: string): WardError {
  return new WardError('ERR_AUDIT_INVALID', 'invalid_argument', `audit record: ${message}`);
}

function hookError(err: unknown): Error | undefined {
  if (err instanceof WardError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
    return new WardError('ERR_STORE_CONFLICT', 'invalid_argument', 'the write conflicts with a stored row', {
      cause: err,
    });
  }
  return undefined;
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit must be a positive integer');
  return Math.min(limit, 10_000);
}

function toRecord(f: ChainFields, dataJson: string, hash: string): AuditRecord {
  return {
    seq: f.seq,
    ts: f.ts,
    kind: f.kind,
    sessionId: f.session_id,
    identity: f.identity,
    source: f.source,
    connection: f.connection,
    rule: f.rule,
    decision: f.decision,
    data: JSON.parse(dataJson) as JsonObject,
    prevHash: f.prev_hash,
    hash,
  };
}

export function rowToRecord(row: RecordRow): AuditRecord {
  return toRecord(row, row.data, row.hash);
}

function rowToCheckpoint(row: CheckpointRow): AuditCheckpoint {
  return { seq: row.seq, hash: row.hash, ts: row.ts, keyId: row.key_id, signature: row.signature };
}

export type { CheckpointRow, RecordRow };
