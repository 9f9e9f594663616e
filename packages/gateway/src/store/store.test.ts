import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import Database from 'better-sqlite3';
import { verifyStore } from '../audit/verify.js';
import { MIGRATIONS, migrate, SCHEMA_VERSION, userVersion } from './migrations.js';
import { openStore } from './open-store.js';
import { tempDir, tempStore } from './test-support.js';

describe('store: open and migrate', () => {
  test('a new store is in WAL with synchronous=NORMAL, foreign keys on, at the latest schema version', (t) => {
    const { store } = tempStore(t);
    assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
    // NORMAL: the audit log syncs the WAL itself, off the event loop (wal-sync.ts).
    assert.equal(store.db.pragma('synchronous', { simple: true }), 1);
    assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(store.db.pragma('busy_timeout', { simple: true }), 5000);
    assert.equal(userVersion(store.db), SCHEMA_VERSION);
    const tables = store.db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all() as string[];
    for (const name of ['audit_checkpoints', 'audit_records', 'blobs', 'meta', 'sessions'])
      assert.ok(tables.includes(name), name);
  });

  test('WAL checkpoints run in the worker, not in a commit, and the store stays consistent', async (t) => {
    const { store, options } = tempStore(t);
    assert.equal(store.db.pragma('wal_autocheckpoint', { simple: true }), 4000);
    const before = statSync(options.path).size;
    // Enough records for the ~1000 pages that trigger a checkpoint (below SQLite's own 4000).
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        for (let i = 0; i < 100; i++) await store.audit.append({ kind: 'pg.query', data: { w, i } });
      }),
    );
    const deadline = Date.now() + 10_000;
    while ((store.checkpoints?.().checkpoints ?? 0) === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(store.checkpoints?.(), { checkpoints: 1, failures: 0 });
    // The pages went into the database file: the worker's checkpoint copied them there.
    assert.ok(statSync(options.path).size > before + 100 * 4096, `${before} -> ${statSync(options.path).size}`);
    assert.equal(verifyStore(store).ok, true);
    await store.close();
  });

  test('migrations are idempotent across reopen and keep the identity of the store', async (t) => {
    const ts = tempStore(t);
    const { gatewayId } = ts.store;
    const keyId = ts.store.audit.keyId;
    await ts.store.audit.append({ kind: 'k' });
    await ts.store.close();
    for (let i = 0; i < 2; i++) {
      const again = ts.reopen();
      assert.equal(migrate(again.db).length, 0);
      assert.equal(userVersion(again.db), SCHEMA_VERSION);
      assert.equal(again.gatewayId, gatewayId);
      assert.equal(again.audit.keyId, keyId);
      assert.equal(again.db.prepare('SELECT count(*) FROM audit_records').pluck().get(), 1);
      await again.close();
    }
  });

  test('steps apply in order, each in its own transaction, and a failing step leaves the previous version', (t) => {
    const db = new Database(join(tempDir(t), 'm.db'));
    t.after(() => db.close());
    const steps = [
      ...MIGRATIONS,
      {
        version: MIGRATIONS.length + 1,
        name: 'add column',
        up: (d: Database.Database) => d.exec('ALTER TABLE meta ADD COLUMN note TEXT'),
      },
      {
        version: MIGRATIONS.length + 2,
        name: 'broken',
        up: (d: Database.Database) => {
          d.exec('CREATE TABLE half_done (x)');
          throw new Error('boom');
        },
      },
    ];
    assert.throws(() => migrate(db, steps), /boom/);
    assert.equal(userVersion(db), MIGRATIONS.length + 1);
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").pluck().get(), 0);
    assert.deepEqual(migrate(db, steps.slice(0, -1)), []);
  });

  test('migration 3 moves the per-record session index into the side table and keeps lookups exact', async (t) => {
    const ts = tempStore(t);
    for (let i = 0; i < 30; i++) {
      await ts.store.audit.append({ kind: 'pg.query', sessionId: i % 4 === 3 ? undefined : `s-${i % 3}`, data: { i } });
    }
    const before = ts.store.audit.listRecords({ sessionId: 's-1' });
    await ts.store.close();
    // Put the file back in its version-2 shape: the index on audit_records, no side table, and
    // none of the tables later migrations add (4: access).
    const db = new Database(ts.options.path);
    db.exec(`DROP TABLE access_grants;
             DROP TABLE access_requests;
             DROP TABLE service_accounts;
             DROP TABLE audit_session_index;
             DELETE FROM meta WHERE key = 'audit_session_indexed_to';
             CREATE INDEX audit_records_session ON audit_records (session_id, seq) WHERE session_id IS NOT NULL;
             PRAGMA user_version = 2;`);
    db.close();
    const again = ts.reopen();
    assert.equal(userVersion(again.db), SCHEMA_VERSION);
    assert.equal(
      again.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'audit_records_session'").pluck().get(),
      0,
    );
    assert.equal(again.db.prepare('SELECT count(*) FROM audit_session_index').pluck().get(), 23);
    assert.equal(again.db.prepare("SELECT value FROM meta WHERE key = 'audit_session_indexed_to'").pluck().get(), '30');
    const after = again.audit.listRecords({ sessionId: 's-1' });
    assert.equal(after.length, 8);
    assert.deepEqual(after, before);
    const next = await again.audit.append({ kind: 'pg.query', sessionId: 's-1' });
    assert.deepEqual(
      again.audit.listRecords({ sessionId: 's-1', afterSeq: 28 }).map((r) => r.seq),
      [29, next.seq],
    );
    assert.equal(verifyStore(again).ok, true);
  });

  test('a store from a newer build is refused with ERR_STORE_TOO_NEW', async (t) => {
    const ts = tempStore(t);
    ts.store.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    await ts.store.close();
    assert.throws(() => ts.reopen(), { code: 'ERR_STORE_TOO_NEW' });
    assert.throws(() => ts.reopen({ readOnly: true }), { code: 'ERR_STORE_TOO_NEW' });
  });

  test('a file that is not a database is refused with ERR_STORE_OPEN', (t) => {
    const dir = tempDir(t);
    writeFileSync(
      join(dir, 'ward.db'),
      'this is not sqlite, it is a long enough text file to have a header'.repeat(10),
    );
    assert.throws(() => openStore({ path: join(dir, 'ward.db'), signingKeyPath: join(dir, 'k.pem') }), {
      code: 'ERR_STORE_OPEN',
    });
  });
});

describe('store: signing key', () => {
  test('is created once with mode 0600, and its public key is kept in meta', async (t) => {
    const ts = tempStore(t);
    assert.equal(statSync(ts.options.signingKeyPath).mode & 0o777, 0o600);
    const meta = ts.store.db.prepare("SELECT value FROM meta WHERE key = 'audit_public_key'").pluck().get();
    assert.equal(meta, ts.store.audit.publicKeyPem);
    assert.match(ts.store.audit.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  });

  test('a key readable by others is refused with ERR_AUDIT_KEY_INSECURE', async (t) => {
    const ts = tempStore(t);
    await ts.store.close();
    chmodSync(ts.options.signingKeyPath, 0o644);
    assert.throws(() => ts.reopen(), { code: 'ERR_AUDIT_KEY_INSECURE' });
  });

  test('another key than the one the store started with is refused with ERR_AUDIT_KEY_MISMATCH', async (t) => {
    const ts = tempStore(t);
    await ts.store.close();
    assert.throws(() => ts.reopen({ signingKeyPath: join(ts.dir, 'other-key.pem') }), {
      code: 'ERR_AUDIT_KEY_MISMATCH',
    });
  });

  test('a key file that is not an Ed25519 PEM is refused with ERR_AUDIT_KEY_INVALID', (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'k.pem'), 'not a key', { mode: 0o600 });
    assert.throws(() => openStore({ path: join(dir, 'w.db'), signingKeyPath: join(dir, 'k.pem') }), {
      code: 'ERR_AUDIT_KEY_INVALID',
    });
  });
});

describe('store: read-only', () => {
  test('reads and verifies, refuses appends, and never creates a key', async (t) => {
    const ts = tempStore(t);
    await ts.store.audit.append({ kind: 'k' });
    const ro = ts.reopen({ readOnly: true });
    assert.equal(ro.audit.healthy, false);
    await assert.rejects(ro.audit.append({ kind: 'k' }), { code: 'ERR_STORE_READ_ONLY' });
    assert.equal(verifyStore(ro).ok, true);
    assert.equal(ro.audit.listRecords().length, 1);
    assert.throws(() => ts.reopen({ readOnly: true, signingKeyPath: join(ts.dir, 'missing.pem') }), {
      code: 'ERR_AUDIT_KEY_INVALID',
    });
  });
});

describe('store: sessions', () => {
  const start = {
    id: 's-1',
    connection: 'prod-pg',
    protocol: 'postgres',
    identity: 'user:alice',
    source: '203.0.113.7:5000',
  };

  test('start and end write the row and the audit record in one transaction', async (t) => {
    const { store } = tempStore(t);
    const s = await store.sessions.start(start);
    assert.equal(s.status, 'active');
    assert.equal(s.endedAt, null);
    const [rec] = store.audit.listRecords({ sessionId: 's-1' });
    assert.equal(rec?.kind, 'session.start');
    assert.equal(rec?.seq, s.startSeq);
    assert.equal(rec?.ts, s.startedAt);
    assert.deepEqual([rec?.identity, rec?.source, rec?.connection], [start.identity, start.source, start.connection]);

    const e = await store.sessions.end('s-1', {
      status: 'error',
      errorCode: 'ERR_PG_BACKEND',
      errorMessage: 'backend closed the connection',
      summary: { statements: 4, bytes_out: 1024 },
    });
    assert.deepEqual(
      [e.status, e.errorCode, e.errorMessage, e.summary],
      ['error', 'ERR_PG_BACKEND', 'backend closed the connection', { bytes_out: 1024, statements: 4 }],
    );
    const records = store.audit.listRecords({ sessionId: 's-1' });
    assert.deepEqual(
      records.map((r) => r.kind),
      ['session.start', 'session.end'],
    );
    assert.equal(records[1]?.seq, e.endSeq);
    assert.deepEqual(records[1]?.data, {
      status: 'error',
      error_code: 'ERR_PG_BACKEND',
      error_message: 'backend closed the connection',
      summary: { bytes_out: 1024, statements: 4 },
    });
    assert.deepEqual(store.sessions.get('s-1'), e);
  });

  test('a duplicate start, an unknown id and a second end are refused and leave the chain intact', async (t) => {
    const { store } = tempStore(t);
    await store.sessions.start(start);
    // Same batch: the savepoint rejects only the duplicate; the other record commits.
    const [dup, other] = await Promise.allSettled([
      store.sessions.start(start),
      store.audit.append({ kind: 'pg.query', sessionId: 's-1' }),
    ]);
    assert.equal(dup.status === 'rejected' && dup.reason.code, 'ERR_STORE_SESSION_EXISTS');
    assert.equal(other.status, 'fulfilled');
    await assert.rejects(store.sessions.end('nope', { status: 'ok' }), { code: 'ERR_STORE_SESSION_NOT_FOUND' });
    await store.sessions.end('s-1', { status: 'cut' });
    await assert.rejects(store.sessions.end('s-1', { status: 'ok' }), { code: 'ERR_STORE_SESSION_ENDED' });
    await assert.rejects(store.sessions.start({ ...start, id: '' }), { code: 'ERR_STORE_INVALID' });
    await assert.rejects(store.sessions.end('s-1', { status: 'active' as never }), { code: 'ERR_STORE_INVALID' });
    await assert.rejects(
      store.sessions
        .start({ ...start, id: 's-2' })
        .then(() => store.sessions.end('s-2', { status: 'ok', summary: { api_key: 'sk' } })),
      { code: 'ERR_AUDIT_SECRET' },
    );
    assert.equal(store.audit.healthy, true);
    assert.deepEqual(
      store.audit.listRecords().map((r) => r.kind),
      ['session.start', 'pg.query', 'session.end', 'session.start'],
    );
    assert.equal(verifyStore(store).ok, true);
  });

  test('list filters by connection, identity and activity, newest first', async (t) => {
    const { store } = tempStore(t);
    await store.sessions.start(start);
    await store.sessions.start({ ...start, id: 's-2', identity: 'service:etl-bot' });
    await store.sessions.start({ ...start, id: 's-3', connection: 'prod-ssh', protocol: 'ssh' });
    await store.sessions.end('s-1', { status: 'ok' });
    const ids = (q: Parameters<typeof store.sessions.list>[0]) => store.sessions.list(q).map((s) => s.id);
    assert.deepEqual(ids({}), ['s-3', 's-2', 's-1']);
    assert.deepEqual(ids({ connection: 'prod-pg' }), ['s-2', 's-1']);
    assert.deepEqual(ids({ identity: 'service:etl-bot' }), ['s-2']);
    assert.deepEqual(ids({ activeOnly: true }), ['s-3', 's-2']);
    assert.deepEqual(ids({ limit: 1 }), ['s-3']);
    assert.equal(store.sessions.get('missing'), undefined);
  });
});

describe('store: blobs', () => {
  test('content-addressed: put returns the SHA-256, stores once, get returns the bytes', (t) => {
    const { store } = tempStore(t, { maxBlobBytes: 1024 });
    const bytes = new TextEncoder().encode('SELECT * FROM users;\n');
    const sha = store.blobs.put(bytes);
    assert.equal(sha, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(store.blobs.put(bytes), sha);
    assert.equal(store.db.prepare('SELECT count(*) FROM blobs').pluck().get(), 1);
    assert.deepEqual(store.blobs.get(sha), Buffer.from(bytes));
    assert.equal(store.blobs.has(sha), true);
    assert.equal(store.blobs.get('0'.repeat(64)), undefined);
    assert.equal(store.blobs.get("' OR 1=1 --"), undefined);
    assert.throws(() => store.blobs.put(new Uint8Array(1025)), { code: 'ERR_STORE_BLOB_TOO_LARGE' });
    // A caller's oversized blob is not a store failure.
    assert.equal(store.audit.healthy, true);
  });

  test('a failed put turns the audit log unhealthy like a failed append, and later writes are refused', async (t) => {
    const { store } = tempStore(t);
    await store.audit.append({ kind: 'session.start' });
    const events: WardError[] = [];
    store.audit.on('unhealthy', (err) => events.push(err));
    // The file may not grow: the next page it needs is SQLITE_FULL, as on a full disk.
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    assert.throws(
      () => store.blobs.put(new Uint8Array(64 * 1024).fill(7)),
      (err: unknown) => {
        assert.ok(err instanceof WardError);
        assert.equal(err.code, 'ERR_AUDIT_UNAVAILABLE');
        assert.equal(err.kind, 'unavailable');
        assert.equal((err.cause as { code?: string }).code, 'SQLITE_FULL');
        return true;
      },
    );
    assert.equal(store.audit.healthy, false);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.code, 'ERR_AUDIT_UNAVAILABLE');
    // Refused at once from now on, even writes that would fit; no second event.
    await assert.rejects(store.audit.append({ kind: 'pg.query' }), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.throws(() => store.blobs.put(new Uint8Array([1])), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(events.length, 1);
    assert.equal(store.db.prepare('SELECT count(*) FROM blobs').pluck().get(), 0);
    assert.equal(verifyStore(store).ok, true);
  });

  test('a staged blob is written in the transaction of the record that names it, once per content', async (t) => {
    const { store } = tempStore(t, { maxBlobBytes: 1024 });
    const body = new TextEncoder().encode('{"model":"gpt-4o-mini"}');
    const staged = store.blobs.stage(body);
    assert.equal(staged.sha256, createHash('sha256').update(body).digest('hex'));
    // The caller's bytes, not a copy.
    assert.equal(staged.bytes, body);
    // Nothing written yet: the record commits it.
    assert.equal(store.blobs.has(staged.sha256), false);
    const again = store.blobs.stage(body);
    const other = store.blobs.stage(new TextEncoder().encode('{"choices":[]}'));
    const appended = store.audit.appendWith(
      { kind: 'http.exchange', data: { requestBody: staged.sha256, responseBody: other.sha256 } },
      store.blobs.hook([staged, again, other]),
    );
    // A second record naming the same content in the same batch: still one row.
    const second = store.audit.appendWith(
      { kind: 'http.exchange', data: { requestBody: again.sha256 } },
      store.blobs.hook([again]),
    );
    await Promise.all([appended, second]);
    assert.equal(store.audit.stats().commits, 1);
    assert.deepEqual(store.blobs.get(staged.sha256), Buffer.from(body));
    assert.equal(store.blobs.has(other.sha256), true);
    assert.equal(store.db.prepare('SELECT count(*) FROM blobs').pluck().get(), 2);
    // Already stored by put: staging and recording it again adds no row.
    const put = store.blobs.put(new TextEncoder().encode('transcript'));
    await store.audit.appendWith(
      { kind: 'ssh.session', data: { recording: put } },
      store.blobs.hook([store.blobs.stage(new TextEncoder().encode('transcript'))]),
    );
    assert.equal(store.db.prepare('SELECT count(*) FROM blobs').pluck().get(), 3);
    // The size check and a refused store still throw at stage time, before any record.
    assert.throws(() => store.blobs.stage(new Uint8Array(1025)), { code: 'ERR_STORE_BLOB_TOO_LARGE' });
    assert.equal(store.audit.healthy, true);
    assert.equal(verifyStore(store).ok, true);
  });

  test('a staged blob that cannot be written fails its record with it and turns the store unhealthy', async (t) => {
    const { store } = tempStore(t);
    await store.audit.append({ kind: 'session.start' });
    const events: WardError[] = [];
    store.audit.on('unhealthy', (err) => events.push(err));
    const staged = store.blobs.stage(new Uint8Array(64 * 1024).fill(7));
    // The file may not grow: the blob's pages are SQLITE_FULL, as on a full disk.
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    await assert.rejects(
      store.audit.appendWith({ kind: 'ssh.session', data: { recording: staged.sha256 } }, store.blobs.hook([staged])),
      (err: unknown) => {
        assert.ok(err instanceof WardError);
        assert.equal(err.code, 'ERR_AUDIT_UNAVAILABLE');
        assert.equal((err.cause as { code?: string }).code, 'SQLITE_FULL');
        return true;
      },
    );
    assert.equal(store.audit.healthy, false);
    assert.equal(events.length, 1);
    // Neither the record nor its blob: they commit together or not at all.
    assert.equal(store.db.prepare('SELECT count(*) FROM blobs').pluck().get(), 0);
    assert.equal(store.db.prepare("SELECT count(*) FROM audit_records WHERE kind = 'ssh.session'").pluck().get(), 0);
    assert.throws(() => store.blobs.stage(new Uint8Array([1])), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(verifyStore(store).ok, true);
  });

  test('put on a read-only or closed store is refused with its own code', async (t) => {
    const ts = tempStore(t);
    await ts.store.audit.append({ kind: 'k' });
    const ro = ts.reopen({ readOnly: true });
    assert.throws(() => ro.blobs.put(new Uint8Array([1])), { code: 'ERR_STORE_READ_ONLY' });
    assert.throws(() => ro.blobs.stage(new Uint8Array([1])), { code: 'ERR_STORE_READ_ONLY' });
    await ts.store.close();
    assert.throws(() => ts.store.blobs.put(new Uint8Array([1])), { code: 'ERR_STORE_CLOSED' });
    assert.throws(() => ts.store.blobs.stage(new Uint8Array([1])), { code: 'ERR_STORE_CLOSED' });
  });
});
