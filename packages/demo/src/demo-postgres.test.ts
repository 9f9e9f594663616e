import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { type DemoPostgres, demoRows, ibanValid, luhnValid, SEED_COUNTS, startDemoPostgres } from './index.js';

const run = promisify(execFile);
const PSQL = '/usr/bin/psql';

function client(db: DemoPostgres): pg.Client {
  return new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database });
}

/** psql in a child process: async, because the server lives in this process's event loop. */
async function psql(db: DemoPostgres, sql: string): Promise<string> {
  const { stdout } = await run(
    PSQL,
    ['-X', '-A', '-t', '-h', db.host, '-p', String(db.port), '-U', db.user, '-d', db.database, '-c', sql],
    {
      env: { ...process.env, PGCONNECT_TIMEOUT: '20' },
    },
  );
  return stdout.trim();
}

describe('demo Postgres (in memory)', () => {
  let db: DemoPostgres;
  before(async () => {
    db = await startDemoPostgres({ port: 0 });
  });
  after(() => db.close());

  test('first start seeds the documented row counts', async () => {
    assert.equal(db.seeded, true);
    const c = client(db);
    await c.connect();
    try {
      const { rows } = await c.query<{ customers: number; payments: number; notes: number; sentinel: number }>(
        `SELECT (SELECT count(*) FROM customers)::int AS customers, (SELECT count(*) FROM payments)::int AS payments,
                (SELECT count(*) FROM audit_notes)::int AS notes, (SELECT count(*) FROM sentinel)::int AS sentinel`,
      );
      assert.deepEqual(rows[0], {
        customers: SEED_COUNTS.customers,
        payments: SEED_COUNTS.payments,
        notes: SEED_COUNTS.auditNotes,
        sentinel: 1,
      });
    } finally {
      await c.end();
    }
  });

  test('every seeded card number passes Luhn and every IBAN passes mod-97', async () => {
    const c = client(db);
    await c.connect();
    try {
      const { rows } = await c.query<{ card_number: string; iban: string }>('SELECT card_number, iban FROM payments');
      assert.equal(rows.length, SEED_COUNTS.payments);
      assert.equal(rows.filter((r) => luhnValid(r.card_number) && r.card_number.length === 16).length, rows.length);
      assert.equal(rows.filter((r) => ibanValid(r.iban)).length, rows.length);
      const orphans = await c.query(
        'SELECT 1 FROM payments p LEFT JOIN customers c ON c.id = p.customer_id WHERE c.id IS NULL',
      );
      assert.equal(orphans.rowCount, 0);
    } finally {
      await c.end();
    }
  });

  test('real psql connects and runs a query', async () => {
    assert.equal(await psql(db, 'SELECT count(*) FROM sentinel'), '1');
    const { customers } = demoRows();
    assert.equal(await psql(db, 'SELECT email FROM customers WHERE id = 1'), customers[0]?.email);
  });

  test('three pg clients and a psql session at the same time, parameterised queries interleaved', async () => {
    const clients = [client(db), client(db), client(db)];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      let correct = 0;
      const work = clients.map(async (c, i) => {
        for (let k = 0; k < 40; k++) {
          const id = ((i * 40 + k) % SEED_COUNTS.customers) + 1;
          const { rows } = await c.query<{ id: number; n: string }>(
            'SELECT id, $2::text AS n FROM customers WHERE id = $1',
            [id, `c${i}-${k}`],
          );
          if (rows.length === 1 && rows[0]?.id === id && rows[0]?.n === `c${i}-${k}`) correct++;
        }
      });
      const [psqlOut] = await Promise.all([psql(db, 'SELECT count(*) FROM payments'), ...work]);
      assert.equal(psqlOut, String(SEED_COUNTS.payments));
      assert.equal(correct, 3 * 40);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  test('an open transaction on one connection is not seen half-done by another', async () => {
    const a = client(db);
    const b = client(db);
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.query('CREATE TABLE IF NOT EXISTS tx_probe (v int)');
      await a.query('BEGIN');
      await a.query('INSERT INTO tx_probe VALUES (1)');
      const order: string[] = [];
      const bCount = b.query<{ n: number }>('SELECT count(*)::int AS n FROM tx_probe').then((r) => {
        order.push('b');
        return r.rows[0]?.n;
      });
      // Give b's query time to reach the server; correctness does not depend on it.
      await sleep(100);
      await a.query('INSERT INTO tx_probe VALUES (2)');
      await a.query('COMMIT');
      order.push('a-commit');
      assert.equal(await bCount, 2);
      assert.deepEqual(order, ['a-commit', 'b']);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  test('a client that disconnects inside a transaction is rolled back and frees the database', async () => {
    const a = client(db);
    await a.connect();
    await a.query('CREATE TABLE IF NOT EXISTS drop_probe (v int)');
    await a.query('BEGIN');
    await a.query('INSERT INTO drop_probe VALUES (1)');
    const aErrors: unknown[] = [];
    a.on('error', (err) => aErrors.push(err));
    // Not a clean Terminate: the socket just goes away, as when psql is killed.
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const b = client(db);
    await b.connect();
    try {
      const { rows } = await b.query<{ n: number }>('SELECT count(*)::int AS n FROM drop_probe');
      assert.equal(rows[0]?.n, 0);
      assert.equal(aErrors.length, 1);
    } finally {
      await b.end();
    }
  });
});

describe('demo Postgres (data dir)', () => {
  test('persists across a restart and does not seed twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ward-demo-pg-'));
    try {
      const first = await startDemoPostgres({ port: 0, dataDir: join(dir, 'pgdata') });
      try {
        assert.equal(first.seeded, true);
        const c = client(first);
        await c.connect();
        await c.query("UPDATE customers SET full_name = 'Persisted Person' WHERE id = 7");
        await c.query('DELETE FROM audit_notes WHERE id = 1');
        await c.end();
      } finally {
        await first.close();
      }
      const second = await startDemoPostgres({ port: 0, dataDir: join(dir, 'pgdata') });
      try {
        assert.equal(second.seeded, false);
        assert.equal(await psql(second, 'SELECT full_name FROM customers WHERE id = 7'), 'Persisted Person');
        assert.equal(await psql(second, 'SELECT count(*) FROM audit_notes'), String(SEED_COUNTS.auditNotes - 1));
        assert.equal(await psql(second, 'SELECT count(*) FROM customers'), String(SEED_COUNTS.customers));
        assert.equal(await psql(second, 'SELECT count(*) FROM sentinel'), '1');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options are refused with ERR_DEMO_INVALID_OPTIONS', async () => {
    await assert.rejects(startDemoPostgres({ port: 70000 }), { code: 'ERR_DEMO_INVALID_OPTIONS' });
    await assert.rejects(startDemoPostgres({ maxConnections: 0 }), { code: 'ERR_DEMO_INVALID_OPTIONS' });
  });
});
