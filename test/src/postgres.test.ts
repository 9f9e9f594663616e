// Postgres through ward with real clients: psql (simple, multi-statement, \copy both ways,
// cancel by SIGINT), pgbench, node-postgres with prepared statements and binary parameters,
// through the direct listener and through `ward connect`. The backend is a real cluster with
// SCRAM auth, so only the agent's password handling can get in.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PgCluster, startPgCluster } from '@ward/agent/testing';
import { PgCodec } from '@ward/gateway';
import pg from 'pg';
import { eventually, pgConnection, startStack, type WardStack } from './helpers/ward-stack.js';

const DB_PASSWORD = 'db-password-only-the-agent-knows';
const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

describe('Postgres through gateway and agent', () => {
  let cluster: PgCluster;
  let stack: WardStack;
  let port: number;
  const psql = (args: string[], token: string, input?: string) =>
    run(
      'psql',
      [
        '-X',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'whoever',
        '-d',
        'appdb',
        ...args,
      ],
      { PGPASSWORD: token, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10' },
      input,
    );

  before(async () => {
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    await cluster.sql(`ALTER DATABASE app OWNER TO app; GRANT ALL ON SCHEMA public TO app;`);
    stack = await startStack({
      postgres: true,
      gatewayConnections: [
        { name: 'appdb', type: 'postgres', agent: 'e2e-agent' },
        { name: 'llm', type: 'http', agent: 'e2e-agent' },
      ],
      agentConnections: [pgConnection(cluster, DB_PASSWORD)],
    });
    port = stack.gateway.postgresPort ?? 0;
    assert.ok(port > 0);
  });

  after(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  test('psql runs a query with the ward token as its password', async () => {
    const r = await psql(['-c', 'select current_user, 40 + 2'], stack.userToken);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'app|42');
  });

  test('a multi-statement query runs whole, and each result is recorded', async () => {
    const r = await psql(
      [
        '-c',
        'create table notes(id int, body text); insert into notes values (1, $$a$$), (2, $$b$$); select count(*) from notes',
      ],
      stack.userToken,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'CREATE TABLE\nINSERT 0 2\n2');
    await stack.gateway.store.audit.flush();
    const q = stack.gateway.store.audit
      .listRecords({ kind: 'pg.query', limit: 1000 })
      .find((x) => String(x.data['sql']).startsWith('create table notes'));
    assert.ok(q, 'the statement was recorded');
    assert.deepEqual(q.data['tags'], ['CREATE TABLE', 'INSERT 0 2', 'SELECT 1']);
    assert.equal(q.identity, 'user:bob');
    assert.equal(q.connection, 'appdb');
  });

  test('\\copy works both ways', async () => {
    const r1 = await psql(
      ['-c', 'create table copied(a int, b text)', '-c', '\\copy copied from stdin'],
      stack.userToken,
      '1\tone\n2\ttwo\n3\tthree\n\\.\n',
    );
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await psql(['-c', '\\copy (select * from copied order by a) to stdout'], stack.userToken);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, '1\tone\n2\ttwo\n3\tthree\n');
  });

  test('SQL errors come back with their SQLSTATE and the session goes on', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', password: stack.userToken, database: 'appdb' });
    await client.connect();
    try {
      await assert.rejects(
        client.query('select * from no_such_table'),
        (err: { code?: string }) => err.code === '42P01',
      );
      const { rows } = await client.query('select 1 as one');
      assert.equal(rows[0].one, 1);
    } finally {
      await client.end();
    }
  });

  test('node-postgres: prepared statements and binary parameters, recorded with their values', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', password: stack.userToken, database: 'appdb' });
    await client.connect();
    try {
      for (let i = 0; i < 3; i++) {
        const { rows } = await client.query({ name: 'sum', text: 'select $1::int + $2::int as s', values: [i, 10] });
        assert.equal(rows[0].s, i + 10);
      }
      const blob = Buffer.from([0, 1, 2, 250, 255]);
      const { rows } = await client.query('select length($1::bytea) as n, $1::bytea as b', [blob]);
      assert.equal(rows[0].n, 5);
      assert.deepEqual(rows[0].b, blob);
    } finally {
      await client.end();
    }
    await stack.gateway.store.audit.flush();
    const records = stack.gateway.store.audit
      .listRecords({ kind: 'pg.query', limit: 1000 })
      .filter((r) => r.data['protocol'] === 'extended');
    const sum = records.filter((r) => r.data['sql'] === 'select $1::int + $2::int as s');
    assert.equal(sum.length, 3);
    assert.deepEqual(sum[2]?.data['params'], ['2', '10']);
    const bytea = records.find((r) => String(r.data['sql']).startsWith('select length($1::bytea)'));
    assert.ok(bytea);
    assert.deepEqual(bytea.data['params'], [{ binary: Buffer.from([0, 1, 2, 250, 255]).toString('base64') }]);
  });

  test('pgbench runs in simple, extended and prepared modes', async () => {
    const env = { PGPASSWORD: stack.userToken };
    const base = ['-h', '127.0.0.1', '-p', String(port), '-U', 'x'];
    const init = await run('pgbench', [...base, '-i', '-s', '1', '-q', 'appdb'], env);
    assert.equal(init.code, 0, init.stderr);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const r = await run('pgbench', [...base, '-S', '-M', mode, '-c', '2', '-j', '1', '-t', '100', 'appdb'], env);
      assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
      assert.match(r.stdout, /number of transactions actually processed: 200\/200/, mode);
    }
  });

  test('Ctrl-C in psql cancels the running query through ward', async () => {
    const child: ChildProcess = spawn(
      'psql',
      ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'x', '-d', 'appdb', '-c', 'select pg_sleep(60)'],
      {
        env: { ...process.env, PGPASSWORD: stack.userToken },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await eventually(
      async () =>
        (
          await cluster.sql(
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'",
          )
        ).trim() === '1',
      15_000,
      'the query to start',
    );
    child.kill('SIGINT');
    const code = await Promise.race([closed, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    assert.notEqual(code, 'timeout', 'psql did not end after SIGINT');
    assert.match(stderr, /canceling statement due to user request/);
    await stack.gateway.store.audit.flush();
    const cancels = stack.gateway.store.audit.listRecords({ kind: 'pg.cancel', limit: 100 });
    assert.ok(cancels.some((r) => r.data['matched'] === true));
  });

  test('a client killed mid-statement still leaves the statement in the audit log, marked interrupted', async () => {
    const sql = 'select pg_sleep(30), 1 as interrupted_probe';
    const child: ChildProcess = spawn(
      'psql',
      ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'x', '-d', 'appdb', '-c', sql],
      { env: { ...process.env, PGPASSWORD: stack.userToken }, stdio: 'ignore' },
    );
    const closed = new Promise((resolve) => child.on('close', resolve));
    await eventually(
      async () =>
        (
          await cluster.sql(`select count(*) from pg_stat_activity where query = '${sql}' and state = 'active'`)
        ).trim() === '1',
      15_000,
      'the query to start',
    );
    child.kill('SIGKILL');
    await closed;
    await eventually(
      () => {
        const found = stack.gateway.store.audit
          .listRecords({ kind: 'pg.query', limit: 1000 })
          .find((r) => r.data['sql'] === sql);
        return found?.data['interrupted'] === true;
      },
      15_000,
      'the interrupted statement to be recorded',
    );
  });

  test('a wrong token and an unknown connection get FATAL errors with their SQLSTATE', async () => {
    const bad = await psql(['-c', 'select 1'], 'not-a-token');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ERR_AUTH_TOKEN_INVALID/);
    const unknown = await run(
      'psql',
      ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'x', '-d', 'nosuchdb', '-c', 'select 1'],
      { PGPASSWORD: stack.userToken },
    );
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /ERR_CONN_UNKNOWN/);
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'x', password: 'nope', database: 'appdb' });
    await assert.rejects(client.connect(), (err: { code?: string }) => err.code === '28P01');
  });

  test('malformed and oversized startup packets end only their own connection', async () => {
    const exchange = (bytes: Buffer) =>
      new Promise<Buffer>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
        const chunks: Buffer[] = [];
        socket.on('data', (d) => chunks.push(d));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', () => {});
        setTimeout(() => socket.destroy(), 5_000);
      });
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(0x7fffffff, 0);
    huge.writeInt32BE(196608, 4);
    const reply = await exchange(huge);
    assert.equal(String.fromCharCode(reply[0] ?? 0), 'E');
    assert.match(reply.toString('latin1'), /ERR_PG_MESSAGE_TOO_LARGE|ERR_PG_PROTOCOL/);
    const garbage = await exchange(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(String.fromCharCode(garbage[0] ?? 0), 'E');
    // Other sessions are unaffected.
    const r = await psql(['-c', 'select 7'], stack.userToken);
    assert.equal(r.stdout.trim(), '7');
  });

  test('a fast-path FunctionCall is refused and never reaches the database', async () => {
    // node-postgres has no fast-path API, so speak the protocol on a raw socket.
    const socket = net.connect(port, '127.0.0.1');
    const splitter = new PgCodec.BackendMessageSplitter();
    const inbox: Array<{ tag: string; raw: Buffer }> = [];
    let wake: (() => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      for (const p of splitter.push(chunk)) inbox.push({ tag: String.fromCharCode(p.tag), raw: p.raw });
      wake?.();
    });
    const until = async (tag: string) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const i = inbox.findIndex((m) => m.tag === tag);
        if (i >= 0) return inbox.splice(0, i + 1);
        if (Date.now() > deadline) throw new Error(`no ${tag} message; got ${inbox.map((m) => m.tag).join('')}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    };
    try {
      socket.write(PgCodec.FrontendSerializer.startupMessage({ user: 'x', database: 'appdb' }));
      await until('R');
      socket.write(PgCodec.FrontendSerializer.passwordMessage(stack.userToken));
      await until('Z');
      // pg_advisory_lock(bigint), OID 2880: had it run, the lock would show in pg_locks.
      const key = Buffer.alloc(8);
      key.writeBigInt64BE(4242n);
      socket.write(
        PgCodec.FrontendSerializer.functionCall({ functionOid: 2880, argFormats: [1], args: [key], resultFormat: 1 }),
      );
      const reply = await until('Z');
      const error = reply.find((m) => m.tag === 'E');
      assert.ok(error, 'an ErrorResponse came back');
      const parsed = PgCodec.parseBackendMessage(error.raw);
      assert.equal(parsed.type, 'ErrorResponse');
      if (parsed.type === 'ErrorResponse') {
        assert.equal(parsed.fields.code, '42501');
        assert.match(parsed.fields.message ?? '', /^ERR_PG_FUNCTION_CALL_REFUSED/);
      }
      const locks = await cluster.sql("select count(*) from pg_locks where locktype = 'advisory'");
      assert.equal(locks.trim(), '0', 'the function never ran on the database');
      // The session goes on after the refusal.
      socket.write(PgCodec.FrontendSerializer.query('select 1'));
      const after = await until('Z');
      assert.ok(after.some((m) => m.tag === 'C'));
    } finally {
      socket.destroy();
    }
  });

  test('ward connect: psql with no password, as the logged-in user', async () => {
    const child = spawn(process.execPath, [join(root, 'packages/cli/bin/ward.js'), 'connect', 'appdb', '--port', '0'], {
      env: { ...process.env, WARD_GATEWAY: stack.gateway.httpUrl, WARD_TOKEN: stack.adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await eventually(() => /on 127\.0\.0\.1:(\d+)/.test(out), 15_000, 'ward connect to listen');
      const localPort = Number(/on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
      const r = await run(
        'psql',
        [
          '-X',
          '-A',
          '-t',
          '-h',
          '127.0.0.1',
          '-p',
          String(localPort),
          '-U',
          'anyone',
          '-d',
          'anything',
          '-c',
          'select 6 * 7',
          '-w',
        ],
        { PGPASSWORD: '' },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '42');
      await stack.gateway.store.audit.flush();
      const q = stack.gateway.store.audit
        .listRecords({ kind: 'pg.query', limit: 1000 })
        .find((x) => x.data['sql'] === 'select 6 * 7');
      assert.equal(q?.identity, 'user:alice');
    } finally {
      child.kill('SIGINT');
    }
  });

  test('the database password never reaches the gateway store or logs', async () => {
    await stack.gateway.store.audit.flush();
    for (const file of [join(stack.dataDir, 'ward.db'), stack.logFile]) {
      const bytes = readFileSync(file);
      assert.equal(bytes.includes(DB_PASSWORD), false, `${file} holds the database password`);
      assert.equal(bytes.includes(stack.userToken), false, `${file} holds a token`);
    }
  });
});
