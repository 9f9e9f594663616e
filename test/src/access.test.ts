// Access end to end with real clients: psql, OpenSSH and the openai SDK refused without a
// grant (42501 / SSH disconnect / 403) and allowed with one; group grants; a time window that
// closes mid-session; just-in-time requests (requester ≠ approver) whose grants expire or are
// revoked mid-session, ending psql's, ssh's and a streamed HTTP answer's session with the reason.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PgCluster, type Sshd, startPgCluster, startSshd } from '@ward/agent/testing';
import { startDemoUpstream } from '@ward/demo';
import OpenAI, { APIError } from 'openai';
import pg from 'pg';
import WebSocket from 'ws';
import { runWard } from './helpers/ward-cli.js';
import { eventually, pgConnection, startStack, type WardStack } from './helpers/ward-stack.js';

const DB_PASSWORD = 'db-password-only-the-agent-knows';
const UPSTREAM_KEY = 'sk-upstream-secret-held-by-the-agent-only';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A child process whose stdin stays open until `end()`, with its output collected. */
function spawnOpen(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    done,
    out: () => stdout,
    write: (text: string) => child.stdin?.write(text),
    end: (text?: string) => child.stdin?.end(text ?? ''),
  };
}

async function runToEnd(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> {
  const p = spawnOpen(cmd, args, env);
  p.end(input);
  return p.done;
}

/** The fields these tests read from API answers. */
interface ApiAnswer {
  error: { code: string };
  request: { id: string; status: string };
  grant: { id: string; expiresAt: string };
  sessionsEnded: number;
}

describe('access: grants, just-in-time access, time windows', () => {
  let cluster: PgCluster;
  let sshd: Sshd;
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let stack: WardStack;
  let keyDir: string;
  const tokens: Record<string, string> = {};

  before(async () => {
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    sshd = await startSshd();
    // Slow tokens: a streamed answer is still going when a short grant expires.
    upstream = await startDemoUpstream({ host: '127.0.0.1', port: 0, apiKey: UPSTREAM_KEY, tokenDelayMs: 1000 });
    stack = await startStack({
      postgres: true,
      ssh: true,
      gatewayConnections: [
        { name: 'appdb', type: 'postgres', agent: 'e2e-agent' },
        { name: 'host', type: 'ssh', agent: 'e2e-agent' },
        { name: 'llm', type: 'http', agent: 'e2e-agent' },
      ],
      agentConnections: [
        pgConnection(cluster, DB_PASSWORD),
        {
          type: 'ssh',
          name: 'host',
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          privateKey: sshd.clientKey,
          hostKey: { fingerprint: sshd.hostKeyFingerprint },
        },
        {
          type: 'http',
          name: 'llm',
          url: upstream.url,
          auth: { header: 'authorization', scheme: 'Bearer', secret: UPSTREAM_KEY },
          timeoutMs: 60_000,
        },
      ],
      access: {
        grants: [
          {
            id: 'dba',
            identities: [],
            groups: ['dba'],
            connections: ['app*'],
            actions: ['connect'],
            windows: [],
          },
          {
            // Open only on a day that never matches: the grant exists but its window is shut.
            id: 'walt-never',
            identities: ['user:walt'],
            groups: [],
            connections: ['*'],
            actions: ['connect', 'exec'],
            windows: [{ days: [closedDay()], from: 0, to: 60 }],
          },
        ],
        maxJitDurationMs: 3_600_000,
      },
    });
    const issue = (subject: string, roles: ('user' | 'approver' | 'auditor' | 'admin')[], groups: string[] = []) =>
      stack.gateway.tokens.issue({ subject, roles, groups, ttlSeconds: 600 });
    tokens['dave'] = await issue('dave', ['user']);
    tokens['dora'] = await issue('dora', ['user'], ['dba']);
    tokens['walt'] = await issue('walt', ['user']);
    tokens['audrey'] = await issue('audrey', ['auditor']);
    tokens['carol'] = await issue('carol', ['approver']);
    tokens['erin'] = await issue('erin', ['user']);
    tokens['alice'] = stack.adminToken;

    // dave's SSH key, registered through the API as dave.
    keyDir = mkdtempSync(join(tmpdir(), 'ward-access-key-'));
    const kg = await runToEnd('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dave', '-f', join(keyDir, 'id')]);
    assert.equal(kg.code, 0, kg.stderr);
    const added = await api('dave', 'POST', '/api/v1/ssh-keys', {
      publicKey: readFileSync(join(keyDir, 'id.pub'), 'utf8').trim(),
    });
    assert.equal(added.status, 201, JSON.stringify(added.json));
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
    await sshd?.stop();
    await cluster?.stop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  function closedDay(): 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun' {
    // Two days from now (UTC): the window (00:00-00:01 on that day) cannot be open today or yesterday.
    const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
    return days[(new Date().getUTCDay() + 2) % 7] as (typeof days)[number];
  }

  async function api(who: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${stack.gateway.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as ApiAnswer };
  }

  const psqlArgs = () => [
    '-X',
    '-A',
    '-t',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    '127.0.0.1',
    '-p',
    String(stack.gateway.postgresPort),
    '-U',
    'whoever',
    '-d',
    'appdb',
  ];
  const psql = (who: string, sql: string) =>
    runToEnd('psql', [...psqlArgs(), '-c', sql], { PGPASSWORD: tokens[who], PGCONNECT_TIMEOUT: '10' });

  const sshArgs = (logLevel = 'ERROR') => [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `LogLevel=${logLevel}`,
    '-i',
    join(keyDir, 'id'),
    '-p',
    String(stack.gateway.ssh?.port),
    '-l',
    'host',
    '127.0.0.1',
  ];

  const openai = (who: string) =>
    new OpenAI({ baseURL: `${stack.gateway.httpUrl}/c/llm/v1`, apiKey: tokens[who], maxRetries: 0 });
  const chat = (who: string) =>
    openai(who).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });

  const records = (kind: string) => stack.gateway.store.audit.listRecords({ kind, limit: 10_000 });

  async function requestAndApprove(who: string, connection: string, action: 'connect' | 'exec', duration: string) {
    const r = await api(who, 'POST', '/api/v1/access/requests', { connection, action, duration, reason: 'INC-7 test' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const a = await api('carol', 'POST', `/api/v1/access/requests/${r.json.request.id}/approve`, { comment: 'ok' });
    assert.equal(a.status, 200, JSON.stringify(a.json));
    return a.json.grant;
  }

  test('without a grant: psql gets 42501, ssh a disconnect with the code, the openai SDK a 403; all recorded', async () => {
    const p = await psql('dave', 'select 1');
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /ERR_ACCESS_NO_GRANT/);
    const s = await runToEnd('ssh', [...sshArgs('INFO'), 'true']);
    assert.equal(s.code, 255);
    assert.match(s.stderr, /ERR_ACCESS_NO_GRANT/);
    await assert.rejects(chat('dave'), (err: unknown) => {
      assert.ok(err instanceof APIError);
      assert.equal(err.status, 403);
      assert.equal(err.code, 'ERR_ACCESS_NO_GRANT');
      return true;
    });
    const denies = records('access.deny').filter((r) => r.identity === 'user:dave');
    for (const protocol of ['postgres', 'ssh', 'http']) {
      const d = denies.find((r) => r.data['protocol'] === protocol);
      assert.ok(d, `no access.deny for ${protocol}`);
      assert.equal(d.decision, 'deny');
      assert.equal(d.rule, 'no-grant');
      assert.match(d.source ?? '', /^127\.0\.0\.1:\d+$/);
      assert.equal(d.data['code'], 'ERR_ACCESS_NO_GRANT');
    }
    // The SQLSTATE on the wire: 42501 insufficient_privilege.
    const client = new pg.Client({
      host: '127.0.0.1',
      port: stack.gateway.postgresPort,
      user: 'x',
      password: tokens['dave'],
      database: 'appdb',
    });
    await assert.rejects(client.connect(), (err: Error & { code?: string }) => err.code === '42501');
  });

  test('ward connect: the WebSocket upgrade is refused with a 403 JSON without a grant, accepted with one', async () => {
    const upgrade = (who: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`${stack.gateway.httpUrl.replace('http', 'ws')}/connect/appdb`, {
          headers: { authorization: `Bearer ${tokens[who]}` },
        });
        ws.on('open', () => {
          resolve({ status: 101, body: '' });
          ws.terminate();
        });
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on('error', reject);
      });
    const refused = await upgrade('dave');
    assert.equal(refused.status, 403);
    assert.equal((JSON.parse(refused.body) as ApiAnswer).error.code, 'ERR_ACCESS_NO_GRANT');
    assert.ok(records('access.deny').some((r) => r.identity === 'user:dave' && r.data['protocol'] === 'connect'));
    assert.equal((await upgrade('dora')).status, 101);
  });

  test('an auditor never opens a session (42501); an admin opens any (role:admin)', async () => {
    const p = await psql('audrey', 'select 1');
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /ERR_ACCESS_DENIED/);
    const a = await psql('alice', 'select 40 + 2');
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.trim(), '42');
    assert.ok(records('access.allow').some((r) => r.identity === 'user:alice' && r.rule === 'role:admin'));
    assert.ok(records('access.deny').some((r) => r.identity === 'user:audrey' && r.rule === 'role:auditor'));
  });

  test('a group grant allows what it names and nothing else', async () => {
    const p = await psql('dora', 'select 7');
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout.trim(), '7');
    const allow = records('access.allow').find((r) => r.identity === 'user:dora');
    assert.equal(allow?.rule, 'grant:dba');
    assert.equal(allow?.connection, 'appdb');
    assert.ok(allow?.sessionId, 'the allow names its session');
    // The grant covers app* and connect only: not the LLM connection.
    await assert.rejects(chat('dora'), (err: unknown) => err instanceof APIError && err.code === 'ERR_ACCESS_NO_GRANT');
  });

  test('a grant whose window is shut does not allow', async () => {
    const p = await psql('walt', 'select 1');
    assert.notEqual(p.code, 0);
    assert.match(p.stderr, /ERR_ACCESS_NO_GRANT/);
  });

  test('requester ≠ approver; approval needs the approver role; the reason is required', async () => {
    const noReason = await api('dave', 'POST', '/api/v1/access/requests', {
      connection: 'appdb',
      duration: '1h',
      reason: '  ',
    });
    assert.equal(noReason.status, 400);
    assert.equal(noReason.json.error.code, 'ERR_ACCESS_REASON_REQUIRED');
    const tooLong = await api('dave', 'POST', '/api/v1/access/requests', {
      connection: 'appdb',
      duration: '2h',
      reason: 'x',
    });
    assert.equal(tooLong.json.error.code, 'ERR_ACCESS_BAD_DURATION');
    // A reason holding a token is refused before anything is stored (the audit log keeps no tokens).
    const leaky = await api('dave', 'POST', '/api/v1/access/requests', {
      connection: 'appdb',
      duration: '1h',
      reason: `my token is ${tokens['dave']}`,
    });
    assert.equal(leaky.status, 400);
    assert.equal(leaky.json.error.code, 'ERR_API_BAD_BODY');
    const r = await api('carol', 'POST', '/api/v1/access/requests', {
      connection: 'appdb',
      duration: '1h',
      reason: 'own',
    });
    assert.equal(r.status, 201);
    const id = r.json.request.id as string;
    const self = await api('carol', 'POST', `/api/v1/access/requests/${id}/approve`, {});
    assert.equal(self.status, 403);
    assert.equal(self.json.error.code, 'ERR_ACCESS_SELF_APPROVAL');
    // Not even an admin approves their own request.
    const ra = await api('alice', 'POST', '/api/v1/access/requests', {
      connection: 'appdb',
      duration: '1h',
      reason: 'own',
    });
    const selfAdmin = await api('alice', 'POST', `/api/v1/access/requests/${ra.json.request.id}/approve`, {});
    assert.equal(selfAdmin.json.error.code, 'ERR_ACCESS_SELF_APPROVAL');
    const plain = await api('erin', 'POST', `/api/v1/access/requests/${id}/approve`, {});
    assert.equal(plain.status, 403);
    assert.equal(plain.json.error.code, 'ERR_ACCESS_DENIED');
    const rejected = await api('alice', 'POST', `/api/v1/access/requests/${id}/reject`, { reason: 'not needed' });
    assert.equal(rejected.json.request.status, 'rejected');
    const again = await api('alice', 'POST', `/api/v1/access/requests/${id}/approve`, {});
    assert.equal(again.json.error.code, 'ERR_ACCESS_REQUEST_DECIDED');
    const refusals = records('access.approve').filter((x) => x.decision === 'deny');
    assert.ok(refusals.some((x) => x.rule === 'jit.requester-not-approver' && x.identity === 'user:carol'));
    assert.ok(refusals.some((x) => x.rule === 'jit.approver-role' && x.identity === 'user:erin'));
    assert.ok(records('access.reject').some((x) => x.identity === 'user:alice'));
  });

  test('JIT: approve → connect; the grant expires mid-session and psql, ssh and a streamed HTTP answer end with the reason', async () => {
    // Three short grants, approved together; the sessions open at once, before they expire.
    const [pgGrant, sshGrant, httpGrant] = await Promise.all([
      requestAndApprove('dave', 'appdb', 'connect', '8s'),
      requestAndApprove('dave', 'host', 'exec', '8s'),
      requestAndApprove('dave', 'llm', 'connect', '8s'),
    ]);
    const p = spawnOpen('psql', psqlArgs(), { PGPASSWORD: tokens['dave'], PGCONNECT_TIMEOUT: '10' });
    p.write('select 41 + 1;\n');
    const s = spawnOpen('ssh', [...sshArgs(), 'echo started; sleep 60']);
    const stream = await openai('dave').chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'tell me a long story about access' }],
      stream: true,
    });
    let chunks = 0;
    const streamed = (async () => {
      for await (const _ of stream) chunks++;
    })();
    await eventually(() => p.out().includes('42'), 10_000, 'psql answered');
    await eventually(() => s.out().includes('started'), 10_000, 'ssh command started');

    // Expiry: the HTTP stream ends with an error event the SDK raises with the code.
    await assert.rejects(streamed, (err: unknown) => {
      assert.ok(err instanceof APIError, String(err));
      assert.equal(err.code, 'ERR_ACCESS_GRANT_EXPIRED');
      return true;
    });
    assert.ok(chunks > 0, 'some chunks arrived before the expiry');
    // ssh: the reason on stderr, exit status 255.
    const sr = await s.done;
    assert.equal(sr.code, 255);
    assert.match(sr.stderr, /ERR_ACCESS_GRANT_EXPIRED/);
    // psql: the FATAL is there when it next talks to the server.
    p.end('select 2;\n');
    const pr = await p.done;
    assert.notEqual(pr.code, 0);
    assert.match(pr.stderr, /FATAL: +ERR_ACCESS_GRANT_EXPIRED/);

    const ended = records('access.expired').filter((r) => r.identity === 'user:dave');
    assert.deepEqual(new Set(ended.map((r) => r.data['protocol'])), new Set(['postgres', 'ssh', 'http']));
    for (const g of [pgGrant, sshGrant, httpGrant]) {
      assert.ok(
        records('access.grant_expired').some((r) => r.data['grant'] === g.id),
        `expiry of ${g.id} recorded`,
      );
    }
    const pgSession = stack.gateway.store.sessions
      .list({ identity: 'user:dave', connection: 'appdb' })
      .find((x) => x.errorCode === 'ERR_ACCESS_GRANT_EXPIRED');
    assert.ok(pgSession, 'the Postgres session ended with the expiry');
    // New work after the expiry is refused.
    await assert.rejects(chat('dave'), (err: unknown) => err instanceof APIError && err.status === 403);
    // The allows named the JIT grants.
    assert.ok(records('access.allow').some((r) => r.rule === `jit:${pgGrant.id}`));
  });

  test('the CLI: request --wait, list --pending, approve, list --grants, reject, revoke', async () => {
    const ward = (who: string, ...args: string[]) => runWard(stack.gateway.httpUrl, tokens[who] ?? '', ...args);
    // dave waits; carol approves through the API while the CLI polls.
    const waiting = ward(
      'dave',
      'access',
      'request',
      'host',
      '--for',
      '30m',
      '--action',
      'exec',
      '--reason',
      'deploy',
      '--wait',
      '--json',
    );
    let id = '';
    await eventually(
      async () => {
        const pending = (await api('carol', 'GET', '/api/v1/access/requests?status=pending')).json as unknown as {
          requests: Array<{ id: string; requester: string; connection: string }>;
        };
        id = pending.requests.find((r) => r.requester === 'user:dave' && r.connection === 'host')?.id ?? '';
        return id !== '';
      },
      10_000,
      'the request to be pending',
    );
    const approved = await api('carol', 'POST', `/api/v1/access/requests/${id}/approve`, {});
    assert.equal(approved.status, 200);
    const done = JSON.parse(await waiting) as { status: string; grantId: string; decidedBy: string };
    assert.deepEqual([done.status, done.decidedBy], ['approved', 'user:carol']);
    assert.match(await ward('dave', 'access', 'list', '--grants'), new RegExp(done.grantId));
    assert.match(
      await ward('carol', 'access', 'revoke', done.grantId, '--reason', 'deployed'),
      /revoked grt_.+; 0 open session/,
    );

    const out = await ward('dave', 'access', 'request', 'appdb', '--for', '10m', '--reason', 'look at a row');
    const reqId = /(req_[0-9a-f-]{36})/.exec(out)?.[1] ?? '';
    assert.ok(reqId, out);
    assert.match(await ward('carol', 'access', 'list', '--pending'), new RegExp(reqId));
    await assert.rejects(
      ward('dave', 'access', 'approve', reqId),
      (err: Error & { code?: string }) => err.code === 'ERR_ACCESS_SELF_APPROVAL',
    );
    assert.match(await ward('carol', 'access', 'reject', reqId, '--reason', 'use staging'), /rejected/);
    const mine = JSON.parse(await ward('dave', 'access', 'list', '--json')) as Array<{
      id: string;
      status: string;
      decisionComment: string;
    }>;
    assert.deepEqual(
      mine.filter((r) => r.id === reqId).map((r) => [r.status, r.decisionComment]),
      [['rejected', 'use staging']],
    );
  });

  test('revoking a grant ends the session it allowed and refuses new ones', async () => {
    const grant = await requestAndApprove('dave', 'appdb', 'connect', '1h');
    const p = spawnOpen('psql', psqlArgs(), { PGPASSWORD: tokens['dave'], PGCONNECT_TIMEOUT: '10' });
    p.write('select 5 * 5;\n');
    await eventually(() => p.out().includes('25'), 10_000, 'psql answered');
    // The grantee cannot see another's grant; an approver revokes.
    const r = await api('carol', 'POST', `/api/v1/access/grants/${grant.id}/revoke`, { reason: 'incident closed' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.sessionsEnded, 1);
    p.end('select 2;\n');
    const pr = await p.done;
    assert.match(pr.stderr, /ERR_ACCESS_GRANT_REVOKED/);
    assert.match(pr.stderr, /incident closed/);
    const again = await psql('dave', 'select 1');
    assert.match(again.stderr, /ERR_ACCESS_NO_GRANT/);
    assert.ok(records('access.revoke').some((x) => x.data['grant'] === grant.id && x.identity === 'user:carol'));
  });
});

describe('access: a time window that closes mid-session', () => {
  let cluster: PgCluster;
  let stack: WardStack;
  let token: string;

  before(async () => {
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    // A window from an hour ago to 12 s from now (UTC, to the second); it may wrap past midnight.
    const now = Date.now();
    const secondsOfDay = (t: number) => Math.floor((t % 86_400_000) / 1000);
    stack = await startStack({
      postgres: true,
      gatewayConnections: [{ name: 'appdb', type: 'postgres', agent: 'e2e-agent' }],
      agentConnections: [pgConnection(cluster, DB_PASSWORD)],
      access: {
        grants: [
          {
            id: 'office-hours',
            identities: ['user:olga'],
            groups: [],
            connections: ['appdb'],
            actions: ['connect'],
            windows: [{ from: secondsOfDay(now - 3_600_000), to: secondsOfDay(now + 12_000) }],
          },
        ],
      },
    });
    token = await stack.gateway.tokens.issue({ subject: 'olga', roles: ['user'], ttlSeconds: 600 });
  });

  after(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  test('a session opened inside the window ends when it closes', async () => {
    const p = spawnOpen(
      'psql',
      ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(stack.gateway.postgresPort), '-U', 'x', '-d', 'appdb'],
      { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' },
    );
    p.write('select 6 * 7;\n');
    await eventually(() => p.out().includes('42'), 10_000, 'psql answered');
    const allow = stack.gateway.store.audit.listRecords({ kind: 'access.allow', limit: 10 })[0];
    assert.equal(allow?.rule, 'grant:office-hours');
    assert.ok(allow?.data['validUntil'], 'the allow says until when');
    await eventually(
      () => stack.gateway.store.audit.listRecords({ kind: 'access.expired', limit: 10 }).length > 0,
      30_000,
      'the window to close',
    );
    p.end('select 1;\n');
    const pr = await p.done;
    assert.match(pr.stderr, /FATAL: +ERR_ACCESS_GRANT_EXPIRED/);
    const again = await runToEnd(
      'psql',
      ['-X', '-h', '127.0.0.1', '-p', String(stack.gateway.postgresPort), '-U', 'x', '-d', 'appdb', '-c', 'select 1'],
      { PGPASSWORD: token },
    );
    assert.match(again.stderr, /ERR_ACCESS_NO_GRANT/);
  });
});
