// Invariant 3: when the audit store cannot write, open sessions end with a reason the client
// sees and new work is refused, in every protocol, until the store can write again.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type PgCluster, startPgCluster } from '@ward/agent/testing';
import { startDemoUpstream } from '@ward/demo';
import pg from 'pg';
import { eventually, pgConnection, startStack, type WardStack } from './helpers/ward-stack.js';

interface WithDb {
  db: { pragma(sql: string, options?: { simple: boolean }): unknown };
}

describe('audit store failure', () => {
  let cluster: PgCluster;
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let stack: WardStack;

  before(async () => {
    cluster = await startPgCluster({
      users: [{ name: 'app', password: 'pw', method: 'scram-sha-256' }],
      databases: ['app'],
    });
    upstream = await startDemoUpstream({ port: 0, apiKey: 'k' });
    stack = await startStack({
      postgres: true,
      gatewayConnections: [
        { name: 'appdb', type: 'postgres', agent: 'e2e-agent' },
        { name: 'llm', type: 'http', agent: 'e2e-agent' },
      ],
      agentConnections: [
        pgConnection(cluster, 'pw'),
        {
          type: 'http',
          name: 'llm',
          url: upstream.url,
          auth: { header: 'authorization', scheme: 'Bearer', secret: 'k' },
          timeoutMs: 5_000,
        },
      ],
    });
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
    await cluster?.stop();
  });

  test('a full disk ends open sessions and refuses new ones in every protocol', async () => {
    const port = stack.gateway.postgresPort ?? 0;
    const open = new pg.Client({ host: '127.0.0.1', port, user: 'x', password: stack.userToken, database: 'appdb' });
    const ended = new Promise<{ code?: string; message?: string }>((resolve) => open.on('error', resolve));
    await open.connect();
    assert.equal((await open.query('select 1 as one')).rows[0].one, 1);
    await stack.gateway.store.audit.flush();

    // The database may not grow by one more page: the next commit fails with SQLITE_FULL,
    // as on a full disk.
    const { db } = stack.gateway.store as unknown as WithDb;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    // Anything that records trips it; this query's own record (its 50 KB of SQL text) is the
    // first write that needs a new page.
    await open.query(`select length('${'x'.repeat(50_000)}') as big`).catch(() => {});
    await eventually(() => !stack.gateway.store.audit.healthy, 10_000, 'the audit log to report the failure');

    const reason = await ended;
    assert.match(String(reason.message), /ERR_AUDIT_UNAVAILABLE/);
    await open.end().catch(() => {});

    const health = await fetch(`${stack.gateway.httpUrl}/healthz`);
    assert.equal(health.status, 503);

    const http = await fetch(`${stack.gateway.httpUrl}/c/llm/v1/models`, {
      headers: { authorization: `Bearer ${stack.userToken}` },
    });
    assert.equal(http.status, 503);
    assert.equal(((await http.json()) as { error: { code: string } }).error.code, 'ERR_AUDIT_UNAVAILABLE');

    const fresh = new pg.Client({ host: '127.0.0.1', port, user: 'x', password: stack.userToken, database: 'appdb' });
    await assert.rejects(
      fresh.connect(),
      (err: { code?: string; message?: string }) =>
        err.code === '08006' && /ERR_AUDIT_UNAVAILABLE/.test(String(err.message)),
    );
  });
});
