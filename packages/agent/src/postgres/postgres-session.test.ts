/**
 * servePostgresSession against a real PostgreSQL 15 cluster started by the test, driven through
 * an in-memory SessionChannel pair with this file playing the gateway.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { create, PostgresStartSchema, type WardError } from '@ward/protocol';
import { serialize } from 'pg-protocol';
import type { PostgresBackend } from './postgres-backend.js';
import { servePostgresSession } from './postgres-session.js';
import { createChannelPair } from './testing/channel-pair.js';
import { GatewaySide } from './testing/gateway-side.js';
import { type PgCluster, startPgCluster } from './testing/pg-cluster.js';

const SCRAM_PASSWORD = "s3cr3t-'scram'-pässwort";
const MD5_PASSWORD = 'md5-secret-Pw';
const CLEAR_PASSWORD = 'clear-secret-Pw';
// Needs SASLprep to match: NBSP maps to a space, U+2168 (Ⅸ) NFKC-normalises to "IX".
const UNICODE_PASSWORD = 'ümlaut\u00A0\u2168';

let pg: PgCluster;
let appCounter = 0;

before(async () => {
  pg = await startPgCluster({
    ssl: true,
    users: [
      { name: 'scram_user', password: SCRAM_PASSWORD, method: 'scram-sha-256' },
      { name: 'unicode_user', password: UNICODE_PASSWORD, method: 'scram-sha-256' },
      { name: 'md5_user', password: MD5_PASSWORD, method: 'md5' },
      { name: 'clear_user', password: CLEAR_PASSWORD, method: 'password' },
      { name: 'trust_user', method: 'trust' },
    ],
    databases: ['other'],
  });
});

after(async () => {
  await pg?.stop();
});

function backendFor(user: string, password: string | undefined, extra: Partial<PostgresBackend> = {}): PostgresBackend {
  return {
    name: 'testdb',
    host: pg.host,
    port: pg.port,
    database: 'postgres',
    user,
    ...(password === undefined ? {} : { password }),
    tls: { mode: 'disable' },
    maxScramIterations: 100_000,
    ...extra,
  };
}

/** Starts a session; `app` is its application_name, to find it in pg_stat_activity. */
function open(backend: PostgresBackend, options: { database?: string; windowBytes?: number } = {}) {
  const app = `ward-test-${process.pid}-${++appCounter}`;
  const pair = createChannelPair(options.windowBytes === undefined ? {} : { windowBytes: options.windowBytes });
  const gateway = new GatewaySide(pair.gateway);
  const start = create(PostgresStartSchema, {
    database: options.database ?? '',
    parameters: [
      { name: 'application_name', value: app },
      { name: 'DateStyle', value: 'ISO, DMY' },
      // A client may not choose who it logs in as, or turn the session into replication.
      { name: 'user', value: 'postgres' },
      { name: 'replication', value: 'database' },
    ],
  });
  servePostgresSession(pair.agent, start, backend);
  return { gateway, app, pair };
}

async function expectFailure(backend: PostgresBackend): Promise<WardError> {
  const { gateway } = open(backend);
  await assert.rejects(gateway.ready);
  const reason = await gateway.closed;
  assert.ok(reason, 'the session must end with an error');
  return reason;
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  // Bounded by a count of polls, not asserted on time: slow CI only makes it take longer.
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`gave up waiting for ${what}`);
}

const errorCode = (m: unknown) => (m as { code?: string }).code;
const text = (m: unknown) => (m as { text?: string }).text;

describe('servePostgresSession: authentication', () => {
  test('SCRAM-SHA-256: ready with ParameterStatus values, the agent chooses the user', async () => {
    const { gateway, app } = open(backendFor('scram_user', SCRAM_PASSWORD));
    const ready = await gateway.ready;
    const params = new Map(ready.parameters.map((p) => [p.name, p.value]));
    assert.match(params.get('server_version') ?? '', /^\d+/);
    assert.equal(params.get('application_name'), app);
    assert.equal(params.get('DateStyle'), 'ISO, DMY');
    const result = await gateway.query("select current_user, current_database(), current_setting('DateStyle')");
    assert.deepEqual(result.rows, [['scram_user', 'postgres', 'ISO, DMY']]);
    const auth = await pg.sql(`select count(*) from pg_stat_activity where application_name = '${app}'`);
    assert.equal(auth, '1');
    gateway.channel.close();
  });

  test('SCRAM-SHA-256 with a non-ASCII password goes through SASLprep like libpq', async () => {
    const { gateway } = open(backendFor('unicode_user', UNICODE_PASSWORD));
    await gateway.ready;
    const result = await gateway.query('select current_user');
    assert.deepEqual(result.rows, [['unicode_user']]);
    gateway.channel.close();
  });

  test('SCRAM-SHA-256 with a wrong password: ERR_PG_BACKEND_AUTH with SQLSTATE 28P01, no password', async () => {
    const wrong = 'not-the-right-password-xyz';
    const err = await expectFailure(backendFor('scram_user', wrong));
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH');
    assert.equal(err.kind, 'unavailable');
    assert.ok(err.message.includes('28P01'));
    assert.ok(!err.message.includes(wrong));
    assert.ok(!err.message.includes(SCRAM_PASSWORD));
  });

  test('md5', async () => {
    const { gateway } = open(backendFor('md5_user', MD5_PASSWORD));
    await gateway.ready;
    assert.deepEqual((await gateway.query('select current_user')).rows, [['md5_user']]);
    gateway.channel.close();
    assert.match(await pg.sql("select left(rolpassword, 3) from pg_authid where rolname = 'md5_user'"), /^md5$/);
  });

  test('md5 with a wrong password never shows the password', async () => {
    const err = await expectFailure(backendFor('md5_user', 'wrong-md5-pw'));
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH');
    assert.ok(!err.message.includes('wrong-md5-pw'));
  });

  test('cleartext password', async () => {
    const { gateway } = open(backendFor('clear_user', CLEAR_PASSWORD));
    await gateway.ready;
    assert.deepEqual((await gateway.query('select current_user')).rows, [['clear_user']]);
    gateway.channel.close();
  });

  test('trust, and the client-chosen database', async () => {
    const { gateway } = open(backendFor('trust_user', undefined), { database: 'other' });
    await gateway.ready;
    assert.deepEqual((await gateway.query('select current_user, current_database()')).rows, [['trust_user', 'other']]);
    gateway.channel.close();
  });

  test('a password is asked for and none is configured: ERR_PG_BACKEND_PASSWORD_MISSING', async () => {
    const err = await expectFailure(backendFor('scram_user', undefined));
    assert.equal(err.code, 'ERR_PG_BACKEND_PASSWORD_MISSING');
    const clear = await expectFailure(backendFor('clear_user', undefined));
    assert.equal(clear.code, 'ERR_PG_BACKEND_PASSWORD_MISSING');
  });

  test('a server asking for more SCRAM iterations than allowed is refused', async () => {
    const err = await expectFailure(backendFor('scram_user', SCRAM_PASSWORD, { maxScramIterations: 1000 }));
    assert.equal(err.code, 'ERR_PG_SCRAM_ITERATIONS');
    assert.ok(err.message.includes('4096'));
  });

  test('an ErrorResponse during startup (unknown database) ends the session with ERR_PG_BACKEND_AUTH', async () => {
    const { gateway } = open(backendFor('trust_user', undefined), { database: 'no_such_db' });
    await assert.rejects(gateway.ready);
    const err = await gateway.closed;
    assert.equal(err?.code, 'ERR_PG_BACKEND_AUTH');
    assert.ok(err?.message.includes('3D000'));
  });
});

describe('servePostgresSession: reaching the backend', () => {
  test('a closed port: ERR_PG_BACKEND_UNREACHABLE', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const err = await expectFailure(backendFor('scram_user', SCRAM_PASSWORD, { port }));
    assert.equal(err.code, 'ERR_PG_BACKEND_UNREACHABLE');
    assert.ok(err.message.includes('ECONNREFUSED'));
  });

  test('a name that does not resolve: ERR_PG_BACKEND_UNREACHABLE', async () => {
    const err = await expectFailure(backendFor('scram_user', SCRAM_PASSWORD, { host: 'no-such-host.invalid' }));
    assert.equal(err.code, 'ERR_PG_BACKEND_UNREACHABLE');
  });

  test('an address that never answers: ERR_PG_BACKEND_UNREACHABLE within the connect timeout', async () => {
    // TEST-NET-1 (RFC 5737): either the timeout fires or the network says unreachable.
    const err = await expectFailure(
      backendFor('scram_user', SCRAM_PASSWORD, { host: '192.0.2.1', connectTimeoutMs: 300 }),
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_UNREACHABLE');
  });

  test('tls require: the session is encrypted', async () => {
    const { gateway } = open(backendFor('scram_user', SCRAM_PASSWORD, { tls: { mode: 'require' } }));
    await gateway.ready;
    const result = await gateway.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    assert.deepEqual(result.rows, [['t']]);
    gateway.channel.close();
  });

  test('tls verify-full with the right CA: encrypted and verified', async () => {
    const ca = pg.ca as Buffer;
    const { gateway } = open(backendFor('scram_user', SCRAM_PASSWORD, { tls: { mode: 'verify-full', ca } }));
    await gateway.ready;
    const result = await gateway.query('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    assert.deepEqual(result.rows, [['t']]);
    gateway.channel.close();
  });

  test('tls verify-full without the CA: ERR_PG_BACKEND_TLS', async () => {
    const err = await expectFailure(backendFor('scram_user', SCRAM_PASSWORD, { tls: { mode: 'verify-full' } }));
    assert.equal(err.code, 'ERR_PG_BACKEND_TLS');
  });
});

describe('servePostgresSession: relay', () => {
  test('queries round-trip; Terminate ends the session normally', async () => {
    const { gateway } = open(backendFor('scram_user', SCRAM_PASSWORD));
    await gateway.ready;
    const r = await gateway.query('select 1 as a; select 2 as b');
    assert.deepEqual(r.rows, [['1'], ['2']]);
    assert.deepEqual(r.messages.filter((m) => m.name === 'commandComplete').map(text), ['SELECT 1', 'SELECT 1']);
    const bad = await gateway.query('select * from no_such_table');
    assert.equal(errorCode(bad.messages.find((m) => m.name === 'error')), '42P01');
    await gateway.send(serialize.end());
    assert.equal(await gateway.closed, undefined);
  });

  test('the backend killed mid-query: FATAL relayed, then ERR_PG_BACKEND_CLOSED', async () => {
    const { gateway, app } = open(backendFor('scram_user', SCRAM_PASSWORD));
    await gateway.ready;
    const running = gateway.query('select pg_sleep(30)');
    await waitUntil(
      'the query to run',
      async () =>
        (await pg.sql(
          `select count(*) from pg_stat_activity where application_name = '${app}' and state = 'active'`,
        )) === '1',
    );
    assert.equal(
      await pg.sql(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = '${app}'`),
      't',
    );
    const result = await running;
    const reason = await gateway.closed;
    assert.equal(reason?.code, 'ERR_PG_BACKEND_CLOSED');
    assert.equal(reason?.kind, 'unavailable');
    // The server's own goodbye (57P01 admin_shutdown) reached the client before the close.
    assert.equal(errorCode(result.messages.find((m) => m.name === 'error')), '57P01');
  });

  test('PgCancel cancels the running query (57014) and the session goes on', async () => {
    const { gateway, app } = open(backendFor('scram_user', SCRAM_PASSWORD, { tls: { mode: 'require' } }));
    await gateway.ready;
    const running = gateway.query('select pg_sleep(30)');
    await waitUntil(
      'the query to run',
      async () =>
        (await pg.sql(
          `select count(*) from pg_stat_activity where application_name = '${app}' and state = 'active' and query like '%pg_sleep%'`,
        )) === '1',
    );
    gateway.cancel();
    const result = await running;
    assert.equal(errorCode(result.messages.find((m) => m.name === 'error')), '57014');
    assert.equal(gateway.channel.closed, false);
    assert.deepEqual((await gateway.query('select 42')).rows, [['42']]);
    gateway.channel.close();
  });

  test('the gateway closing the session closes the backend connection', async () => {
    const { gateway, app } = open(backendFor('scram_user', SCRAM_PASSWORD));
    await gateway.ready;
    await gateway.query('select 1');
    gateway.channel.close();
    await waitUntil(
      'the backend to go away',
      async () => (await pg.sql(`select count(*) from pg_stat_activity where application_name = '${app}'`)) === '0',
    );
  });

  test('a large result is relayed intact, and a client that stops reading stops the backend', async () => {
    const windowBytes = 256 * 1024;
    const n = 1_000_000;
    const { gateway, app } = open(backendFor('scram_user', SCRAM_PASSWORD), { windowBytes });
    await gateway.ready;
    let sum = 0n;
    let ordered = true;
    let expected = 1;
    const result = gateway.collect({
      keepRows: 0,
      onRow: (fields) => {
        const v = Number(fields[0]);
        if (v !== expected++) ordered = false;
        sum += BigInt(v);
      },
    });
    gateway.hold();
    await gateway.send(serialize.query(`select generate_series(1, ${n})`));
    // With no credit coming back the agent stops reading its socket, the kernel buffers fill,
    // and the server blocks writing: the backpressure reached the database.
    await waitUntil(
      'the backend to block on ClientWrite',
      async () =>
        (await pg.sql(
          `select count(*) from pg_stat_activity where application_name = '${app}' and wait_event = 'ClientWrite'`,
        )) === '1',
    );
    assert.ok(gateway.received <= windowBytes, `received ${gateway.received} bytes against a ${windowBytes} window`);
    assert.equal(gateway.channel.bufferedBytes, gateway.received);
    gateway.release();
    const done = await result;
    assert.equal(done.rowCount, n);
    assert.ok(ordered, 'rows arrived in order');
    assert.equal(sum, (BigInt(n) * BigInt(n + 1)) / 2n);
    assert.equal(text(done.messages.find((m) => m.name === 'commandComplete')), `SELECT ${n}`);
    assert.ok(gateway.maxUncredited <= windowBytes);
    gateway.channel.close();
  });
});
