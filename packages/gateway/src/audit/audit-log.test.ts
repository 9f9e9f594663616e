import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { WardError } from '@ward/protocol';
import Database from 'better-sqlite3';
import { tempStore } from '../store/test-support.js';
import { AuditLog } from './audit-log.js';
import { canonicalJson, GENESIS_HASH, recordHash } from './canonical.js';
import { AUDIT_REDACTED } from './secret-guard.js';
import { loadOrCreateSigningKey } from './signing-key.js';
import { verifyStore } from './verify.js';

function count(db: Database.Database, table: string): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

describe('audit log: append', () => {
  test('records chain from the genesis hash and each hash recomputes from the canonical encoding', async (t) => {
    const { store } = tempStore(t);
    const a = await store.audit.append({
      kind: 'auth.denied',
      identity: 'user:eve',
      source: '198.51.100.4:5000',
      data: { reason: 'expired' },
    });
    const b = await store.audit.append({
      kind: 'pg.query',
      sessionId: 's-1',
      identity: 'user:alice',
      connection: 'prod-pg',
      rule: 'read-only',
      decision: 'allow',
      data: { sql: 'SELECT 1', params: [1, 'two', null], nested: { b: 2, a: 1 } },
    });
    assert.equal(a.seq, 1);
    assert.equal(a.prevHash, GENESIS_HASH);
    assert.equal(b.seq, 2);
    assert.equal(b.prevHash, a.hash);
    assert.match(a.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const expected = recordHash(
      {
        seq: 2,
        ts: b.ts,
        kind: 'pg.query',
        session_id: 's-1',
        identity: 'user:alice',
        source: null,
        connection: 'prod-pg',
        rule: 'read-only',
        decision: 'allow',
        prev_hash: a.hash,
      },
      canonicalJson(b.data),
    );
    assert.equal(b.hash, expected);
    assert.deepEqual(store.audit.listRecords(), [a, b]);
    assert.deepEqual(verifyStore(store), { ok: true, records: 2, checkpoints: 2, keyId: store.audit.keyId });
  });

  test('a resolved append is visible to another connection (committed, not just queued)', async (t) => {
    for (const durability of ['group', 'strict'] as const) {
      const { store, options } = tempStore(t, { durability });
      const rec = await store.audit.append({ kind: 'http.exchange', data: { status: 200 } });
      const other = new Database(options.path, { readonly: true });
      try {
        const row = other.prepare('SELECT hash FROM audit_records WHERE seq = ?').get(rec.seq) as { hash: string };
        assert.equal(row.hash, rec.hash, durability);
        assert.equal(count(other, 'audit_checkpoints'), 1, durability);
      } finally {
        other.close();
      }
    }
  });

  test('group commit: 1000 appends issued together commit in ceil(1000 / maxBatch) transactions', async (t) => {
    const { store } = tempStore(t, { maxBatch: 256 });
    const records = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => store.audit.append({ kind: 'pg.query', data: { i } })),
    );
    assert.deepEqual(
      records.map((r) => r.seq),
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    assert.equal(store.audit.stats().commits, 4);
    // One checkpoint per committed transaction: the database agrees with the counter.
    assert.equal(count(store.db, 'audit_checkpoints'), 4);
    assert.equal(count(store.db, 'audit_records'), 1000);
  });

  test('group commit: 64 appenders looping share transactions instead of one fsync each', async (t) => {
    const { store } = tempStore(t);
    const perAppender = 20;
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        for (let i = 0; i < perAppender; i++) await store.audit.append({ kind: 'pg.query', data: { w, i } });
      }),
    );
    const { commits, records } = store.audit.stats();
    assert.equal(records, 64 * perAppender);
    assert.ok(commits <= (64 * perAppender) / 16, `${commits} commits for ${records} records`);
    assert.equal(count(store.db, 'audit_checkpoints'), commits);
    assert.equal(verifyStore(store).ok, true);
  });

  test('strict durability: every append is its own transaction, committed before it resolves', async (t) => {
    const { store } = tempStore(t, { durability: 'strict' });
    const pending = Array.from({ length: 50 }, (_, i) => store.audit.append({ kind: 'ssh.exec', data: { i } }));
    // Strict commits inside append(): the rows exist before any promise has been awaited.
    assert.equal(count(store.db, 'audit_records'), 50);
    await Promise.all(pending);
    assert.equal(store.audit.stats().commits, 50);
    assert.equal(count(store.db, 'audit_checkpoints'), 50);
  });

  test('invalid input is refused and nothing is written', async (t) => {
    const { store } = tempStore(t);
    const bad: unknown[] = [
      { kind: '' },
      { kind: 'x'.repeat(129) },
      { kind: 'pg.query', data: [] },
      { kind: 'pg.query', data: { n: Number.NaN } },
      { kind: 'pg.query', data: { when: new Date() } },
      { kind: 'pg.query', data: { big: 10n } },
      { kind: 'pg.query', identity: 42 },
    ];
    for (const input of bad) {
      await assert.rejects(
        store.audit.append(input as never),
        { code: 'ERR_AUDIT_INVALID' },
        JSON.stringify(String(input)),
      );
    }
    assert.equal(count(store.db, 'audit_records'), 0);
    assert.equal(store.audit.healthy, true);
  });

  test('secret guard: refuses credential-shaped data, accepts redacted values, writes nothing', async (t) => {
    const { store } = tempStore(t);
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
    const refused: Record<string, unknown>[] = [
      { password: 'hunter2' },
      { Authorization: 'Basic YWxpY2U6aHVudGVyMg==' },
      { headers: { 'X-Api-Key': 'sk-123' } },
      { api_key: 'sk-123' },
      { client_secret: 's3cr3t' },
      { access_token: 'opaque' },
      { items: [{ ok: 1 }, { Token: 'abc' }] },
      { note: `header was ${jwt}` },
      { header: 'bearer abcdefgh12345678' },
    ];
    for (const data of refused) {
      await assert.rejects(
        store.audit.append({ kind: 'http.exchange', data }),
        { code: 'ERR_AUDIT_SECRET' },
        JSON.stringify(data),
      );
    }
    assert.equal(count(store.db, 'audit_records'), 0);
    const accepted: Record<string, unknown>[] = [
      { password: AUDIT_REDACTED, token: null, secret: true },
      { usage: { prompt_tokens: 12, total_tokens: 30 }, tokenizer: 'cl100k' },
      { sql: "SELECT * FROM users WHERE name = 'eyJ'" },
      // Over 16 KiB strings are not scanned (cost); bodies that size belong in blobs.
      { body: 'a'.repeat(16 * 1024) + jwt },
    ];
    for (const data of accepted) await store.audit.append({ kind: 'http.exchange', data });
    assert.equal(count(store.db, 'audit_records'), accepted.length);
  });
});

describe('audit log: write failure', () => {
  function fillUp(db: Database.Database): void {
    // The store may not grow past its current size: the next page it needs is SQLITE_FULL.
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
  }

  test('a failed batch rejects every append in it with ERR_AUDIT_UNAVAILABLE and fires unhealthy once', async (t) => {
    const { store } = tempStore(t);
    await store.audit.append({ kind: 'session.start', data: {} });
    const events: WardError[] = [];
    store.audit.on('unhealthy', (err) => events.push(err));
    fillUp(store.db);
    const big = 'x'.repeat(3000);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => store.audit.append({ kind: 'pg.query', data: { i, big } })),
    );
    assert.equal(results.length, 20);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof WardError);
      assert.equal(r.reason.code, 'ERR_AUDIT_UNAVAILABLE');
      assert.equal(r.reason.kind, 'unavailable');
    }
    assert.equal(store.audit.healthy, false);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.code, 'ERR_AUDIT_UNAVAILABLE');
    assert.equal((events[0]!.cause as { code?: string }).code, 'SQLITE_FULL');
    // Later appends are refused at once, even small ones that would fit; no second event.
    await assert.rejects(store.audit.append({ kind: 'pg.query' }), { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(store.audit.flush(), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(events.length, 1);
    // The failed transaction left nothing behind: the chain still ends at the first record.
    assert.equal(count(store.db, 'audit_records'), 1);
    assert.equal(verifyStore(store).ok, true);
  });

  test('strict mode: the failing append rejects, the log turns unhealthy', async (t) => {
    const { store } = tempStore(t, { durability: 'strict' });
    let fired = 0;
    store.audit.on('unhealthy', () => fired++);
    fillUp(store.db);
    await assert.rejects(store.audit.append({ kind: 'pg.query', data: { big: 'y'.repeat(5000) } }), {
      code: 'ERR_AUDIT_UNAVAILABLE',
    });
    assert.equal(fired, 1);
    assert.equal(store.audit.healthy, false);
  });

  test('reopening after the failure continues the chain', async (t) => {
    const ts = tempStore(t);
    const first = await ts.store.audit.append({ kind: 'a' });
    fillUp(ts.store.db);
    await assert.rejects(ts.store.audit.append({ kind: 'b', data: { big: 'z'.repeat(5000) } }), {
      code: 'ERR_AUDIT_UNAVAILABLE',
    });
    await ts.store.close();
    const again = ts.reopen();
    assert.equal(again.audit.healthy, true);
    const next = await again.audit.append({ kind: 'b' });
    assert.equal(next.seq, 2);
    assert.equal(next.prevHash, first.hash);
  });
});

describe('audit log: reopen', () => {
  test('a reopened store continues the chain where it stopped', async (t) => {
    const ts = tempStore(t);
    for (let i = 0; i < 5; i++) await ts.store.audit.append({ kind: 'pg.query', data: { i } });
    const last = ts.store.audit.head();
    await ts.store.close();
    const again = ts.reopen();
    assert.deepEqual(again.audit.head(), last);
    const next = await again.audit.append({ kind: 'pg.query', data: { i: 5 } });
    assert.equal(next.seq, 6);
    assert.equal(next.prevHash, last.hash);
    assert.deepEqual(verifyStore(again), { ok: true, records: 6, checkpoints: 6, keyId: again.audit.keyId });
  });

  test('close flushes what is pending, then refuses appends', async (t) => {
    const { store } = tempStore(t);
    const pending = Array.from({ length: 10 }, (_, i) => store.audit.append({ kind: 'k', data: { i } }));
    await store.close();
    assert.equal((await Promise.all(pending)).length, 10);
    await assert.rejects(store.audit.append({ kind: 'k' }), { code: 'ERR_STORE_CLOSED' });
  });

  test('listRecords filters by session, kind and seq, in seq order', async (t) => {
    const { store } = tempStore(t);
    for (let i = 0; i < 6; i++) {
      await store.audit.append({ kind: i % 2 ? 'pg.query' : 'pg.row', sessionId: i < 3 ? 's-a' : 's-b', data: { i } });
    }
    assert.deepEqual(
      store.audit.listRecords({ sessionId: 's-a' }).map((r) => r.seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      store.audit.listRecords({ kind: 'pg.query', afterSeq: 2 }).map((r) => r.seq),
      [4, 6],
    );
    assert.deepEqual(
      store.audit.listRecords({ afterSeq: 1, limit: 2 }).map((r) => r.seq),
      [2, 3],
    );
    assert.throws(() => store.audit.listRecords({ limit: 0 }), { code: 'ERR_AUDIT_INVALID' });
  });

  test('session lookups are exact below, across and above the side-table watermark', async (t) => {
    const { store } = tempStore(t);
    const total = 9000; // two fills of the 4096-record side table, then an unindexed tail
    const sessions = ['s-0', 's-1', 's-2', 's-3', 's-4'];
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        store.audit.append({
          kind: i % 3 === 0 ? 'pg.row' : 'pg.query',
          // Every seventh record belongs to no session.
          sessionId: i % 7 === 6 ? undefined : sessions[i % sessions.length],
          data: { i },
        }),
      ),
    );
    const watermark = Number(
      store.db.prepare("SELECT value FROM meta WHERE key = 'audit_session_indexed_to'").pluck().get(),
    );
    assert.ok(watermark >= 8192 && watermark < total, `watermark ${watermark}`);
    assert.equal(
      count(store.db, 'audit_session_index'),
      store.db
        .prepare('SELECT count(*) FROM audit_records WHERE seq <= ? AND session_id IS NOT NULL')
        .pluck()
        .get(watermark),
    );
    const expected = (session: string, after: number, kind?: string) =>
      store.db
        .prepare(
          `SELECT seq FROM audit_records WHERE session_id = ? AND seq > ?${kind ? ' AND kind = ?' : ''} ORDER BY seq`,
        )
        .pluck()
        .all(...[session, after, ...(kind ? [kind] : [])]) as number[];
    let checked = 0;
    for (const session of [...sessions, 'no-such-session']) {
      for (const after of [0, 4000, watermark - 12, watermark, total - 30]) {
        for (const kind of [undefined, 'pg.row']) {
          const want = expected(session, after, kind);
          const got = store.audit.listRecords({ sessionId: session, afterSeq: after, kind, limit: 10_000 });
          assert.deepEqual(
            got.map((r) => r.seq),
            want,
          );
          for (const r of got) assert.equal(r.sessionId, session);
          // A page that starts below the watermark and ends above it.
          const page = store.audit.listRecords({ sessionId: session, afterSeq: after, kind, limit: 7 });
          assert.deepEqual(
            page.map((r) => r.seq),
            want.slice(0, 7),
          );
          checked++;
        }
      }
    }
    assert.equal(checked, 60);
    assert.ok(expected('s-0', watermark - 12).length > 0);
  });
});

describe('audit log: durability sync off the event loop', () => {
  /** An AuditLog on a test store's connection whose WAL sync the test completes by hand. */
  function withManualSync(t: TestContext, syncTimeoutMs?: number) {
    const { store, options } = tempStore(t);
    const syncs: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
    const audit = new AuditLog({
      db: store.db,
      key: loadOrCreateSigningKey(options.signingKeyPath),
      gatewayId: store.gatewayId,
      sync: () => new Promise<void>((resolve, reject) => syncs.push({ resolve, reject })),
      syncTimeoutMs,
    });
    return { store, audit, syncs };
  }
  const turn = () => new Promise((r) => setImmediate(r));

  test('an append resolves only after a sync that began after its commit; appends made meanwhile share the next commit', async (t) => {
    const { store, audit, syncs } = withManualSync(t);
    const settled: number[] = [];
    const first = audit.append({ kind: 'pg.query', data: { i: 1 } }).then((r) => settled.push(r.seq));
    await turn();
    assert.equal(count(store.db, 'audit_records'), 1); // committed ...
    assert.equal(syncs.length, 1);
    await turn();
    assert.equal(settled.length, 0); // ... but not durable yet
    const later = [2, 3].map((i) => audit.append({ kind: 'pg.query', data: { i } }).then((r) => settled.push(r.seq)));
    await turn();
    // While the sync is in flight the new records wait, to commit together after it.
    assert.equal(count(store.db, 'audit_records'), 1);
    assert.equal(audit.stats().pending, 2);
    syncs[0]!.resolve();
    await first;
    assert.deepEqual(settled, [1]);
    assert.equal(count(store.db, 'audit_records'), 3);
    assert.equal(syncs.length, 2);
    const flushed = audit.flush();
    syncs[1]!.resolve();
    await Promise.all([...later, flushed]);
    assert.deepEqual(settled, [1, 2, 3]);
    assert.deepEqual(
      { ...audit.stats(), lastSeq: undefined },
      { commits: 2, records: 3, failedCommits: 0, syncs: 2, pending: 0, unsynced: 0, lastSeq: undefined },
    );
    assert.deepEqual(audit.durableHead(), audit.head());
    assert.equal(verifyStore(store).ok, true);
  });

  test('a failed sync rejects what it covered with ERR_AUDIT_UNAVAILABLE, turns the log unhealthy, and nothing committed after it resolves', async (t) => {
    const { audit, syncs } = withManualSync(t);
    const events: WardError[] = [];
    audit.on('unhealthy', (err) => events.push(err));
    const covered = audit.append({ kind: 'pg.query', data: { i: 1 } });
    await turn();
    // Committed while the failing sync is in flight: refused too.
    const flushedDuring = (async () => {
      const p = audit.append({ kind: 'pg.query', data: { i: 2 } });
      await audit.flush().catch(() => {});
      return p;
    })();
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    syncs[0]!.reject(eio);
    await assert.rejects(covered, { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(flushedDuring, { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(audit.healthy, false);
    assert.equal(events.length, 1);
    assert.equal((events[0]!.cause as { code?: string }).code, 'EIO');
    await assert.rejects(audit.append({ kind: 'pg.query' }), { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(audit.flush(), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(syncs.length, 1);
  });

  test('a sync that never completes turns the log unhealthy instead of letting records pile up', async (t) => {
    const { audit, syncs } = withManualSync(t, 50);
    // The watchdog's timer is unreferenced (a real fdatasync holds the loop open; this fake does not).
    const alive = setInterval(() => {}, 1000);
    t.after(() => clearInterval(alive));
    const events: WardError[] = [];
    audit.on('unhealthy', (err) => events.push(err));
    const stuck = audit.append({ kind: 'pg.query', data: { i: 1 } });
    const waiting = audit.append({ kind: 'pg.query', data: { i: 2 } });
    await assert.rejects(stuck, { code: 'ERR_AUDIT_UNAVAILABLE' });
    await assert.rejects(waiting, { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(events.length, 1);
    assert.equal((events[0]!.cause as { code?: string }).code, 'ETIMEDOUT');
    // The late completion changes nothing, and no further sync is attempted.
    syncs[0]!.resolve();
    await assert.rejects(audit.append({ kind: 'pg.query' }), { code: 'ERR_AUDIT_UNAVAILABLE' });
    assert.equal(syncs.length, 1);
    assert.equal(audit.healthy, false);
  });

  test('a store syncs its WAL before an append resolves', async (t) => {
    const { store } = tempStore(t);
    const records = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.audit.append({ kind: 'k', data: { i } })),
    );
    assert.equal(records.length, 100);
    const stats = store.audit.stats();
    assert.ok(stats.syncs >= 1 && stats.syncs <= stats.commits, JSON.stringify(stats));
    assert.equal(stats.unsynced, 0);
    assert.deepEqual(store.audit.durableHead(), store.audit.head());
  });
});
