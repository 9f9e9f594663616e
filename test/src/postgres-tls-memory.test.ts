// The Postgres listener with TLS (psql verify-full against ward's certificate), and a huge
// result whose client stops reading: memory stays bounded and the database itself waits.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type PgCluster, startPgCluster } from '@ward/agent/testing';
import { PgCodec } from '@ward/gateway';
import { eventually, pgConnection, startStack, type WardStack } from './helpers/ward-stack.js';

const exec = promisify(execFile);

describe('Postgres listener: TLS and bounded memory', () => {
  let cluster: PgCluster;
  let stack: WardStack;
  let port: number;
  let ca: string;
  const dir = mkdtempSync(join(tmpdir(), 'ward-pg-tls-'));

  before(async () => {
    // The server certificate names localhost and 127.0.0.1, signed by a throwaway CA.
    const r = spawnSync('sh', ['-c', "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext"], { cwd: dir });
    assert.equal(r.status, 0);
    const run = (args: string[]) => {
      const x = spawnSync('openssl', args, { cwd: dir });
      assert.equal(x.status, 0, `openssl ${args[0]}: ${x.stderr}`);
    };
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=ward test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ]);
    run([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      'pg.key',
      '-out',
      'pg.csr',
    ]);
    run([
      'x509',
      '-req',
      '-in',
      'pg.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'san.ext',
      '-out',
      'pg.crt',
    ]);
    ca = join(dir, 'ca.crt');
    cluster = await startPgCluster({
      users: [{ name: 'app', password: 'pw', method: 'scram-sha-256' }],
      databases: ['app'],
    });
    stack = await startStack({
      postgres: true,
      postgresTls: { cert: readFileSync(join(dir, 'pg.crt')), key: readFileSync(join(dir, 'pg.key')) },
      gatewayConnections: [{ name: 'appdb', type: 'postgres', agent: 'e2e-agent' }],
      agentConnections: [pgConnection(cluster, 'pw')],
    });
    port = stack.gateway.postgresPort ?? 0;
  });

  after(async () => {
    await stack?.stop();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('psql with sslmode=verify-full gets TLS with ward’s certificate', async () => {
    const { stdout } = await exec(
      'psql',
      [
        '-X',
        `host=localhost port=${port} dbname=appdb user=x sslmode=verify-full sslrootcert=${ca}`,
        '-c',
        '\\conninfo',
        '-c',
        'select 1',
      ],
      {
        env: { ...process.env, PGPASSWORD: stack.userToken },
      },
    );
    assert.match(stdout, /SSL connection \(protocol: TLSv1\.[23]/);
  });

  test('plaintext still works for clients that do not ask for TLS', async () => {
    const { stdout } = await exec(
      'psql',
      ['-X', '-A', '-t', `host=127.0.0.1 port=${port} dbname=appdb user=x sslmode=disable`, '-c', 'select 5'],
      {
        env: { ...process.env, PGPASSWORD: stack.userToken },
      },
    );
    assert.equal(stdout.trim(), '5');
  });

  test('bytes sent after SSLRequest, before the handshake, are refused', async () => {
    const reply = await new Promise<Buffer>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          Buffer.concat([
            PgCodec.FrontendSerializer.sslRequest(),
            PgCodec.FrontendSerializer.startupMessage({ user: 'x', database: 'appdb' }),
          ]),
        );
      });
      const chunks: Buffer[] = [];
      socket.on('data', (d) => chunks.push(d));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', () => {});
    });
    assert.equal(String.fromCharCode(reply[0] ?? 0), 'E');
    assert.match(reply.toString('latin1'), /ERR_PG_PROTOCOL/);
  });

  test('a 10-million-row result read by a stuck client keeps memory bounded; the database waits', async (t) => {
    const socket = net.connect(port, '127.0.0.1');
    const splitter = new PgCodec.BackendMessageSplitter();
    let stage: 'auth' | 'ready' | 'query' = 'auth';
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        for (const p of splitter.push(chunk)) {
          const tag = String.fromCharCode(p.tag);
          if (stage === 'auth' && tag === 'R' && p.raw.readInt32BE(5) === 3)
            socket.write(PgCodec.FrontendSerializer.passwordMessage(stack.userToken));
          if (stage === 'auth' && tag === 'Z') {
            stage = 'ready';
            resolve();
          }
        }
      });
      socket.write(PgCodec.FrontendSerializer.startupMessage({ user: 'x', database: 'appdb' }));
    });
    // Ask for ~600 MB of rows, then stop reading entirely.
    socket.removeAllListeners('data');
    socket.pause();
    stage = 'query';
    const before = process.memoryUsage().rss;
    socket.write(PgCodec.FrontendSerializer.query('select g, md5(g::text) as h from generate_series(1, 10000000) g'));
    // The backend fills every buffer between it and the stuck client, then blocks on its socket.
    await eventually(
      async () =>
        (
          await cluster.sql(
            "select count(*) from pg_stat_activity where query like 'select g, md5%' and wait_event = 'ClientWrite'",
          )
        ).trim() === '1',
      60_000,
      'the database to block writing to the agent',
    );
    const peak = Math.max(before, process.memoryUsage().rss);
    await new Promise((r) => setTimeout(r, 1_000));
    const after = process.memoryUsage().rss;
    const growth = Math.max(peak, after) - before;
    // Gateway and agent run in this process: both windows (1 MiB each way), socket buffers
    // and the runtime's own churn fit well under this; buffering the result would not.
    t.diagnostic(`gateway+agent RSS growth with a stuck reader: ${(growth / 1048576).toFixed(1)} MiB`);
    assert.ok(growth < 64 * 1024 * 1024, `memory grew by ${(growth / 1048576).toFixed(1)} MiB`);
    assert.equal(stack.gateway.sessions.size, 1);
    socket.destroy();
    // The session ends and the database stops the query when the agent hangs up.
    await eventually(
      async () =>
        (await cluster.sql("select count(*) from pg_stat_activity where query like 'select g, md5%'")).trim() === '0',
      30_000,
      'the backend query to end',
    );
    await eventually(() => stack.gateway.sessions.size === 0, 10_000, 'the session to end');
  });
});
