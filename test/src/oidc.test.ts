// OIDC end to end: a real IdP (oidc-provider) issues access tokens that people use through
// ward with real clients: psql (direct listener, token as password), the openai SDK (token
// as API key) and OpenSSH (direct listener, token as password). Groups map to roles, keys
// rotate mid-test, a flood of unknown kids costs at most one JWKS fetch, an IdP down past the
// cache age fails closed, and every attack vector is refused in each protocol's own way,
// recorded with its reason, without disturbing a good session.
//
// SSH client: OpenSSH (password through SSH_ASKPASS) for tokens of at most 1023 bytes, the
// most it sends; ssh2's client for longer ones (the over-the-cap token).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningAgent, startAgent } from '@ward/agent';
import { type PgCluster, type Sshd, startPgCluster, startSshd } from '@ward/agent/testing';
import { startDemoUpstream } from '@ward/demo';
import { MAX_TOKEN_BYTES, OidcVerifier, type RunningGateway, startGateway } from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import OpenAI from 'openai';
import pg from 'pg';
import pino from 'pino';
import { Client as SshClient } from 'ssh2';
import { WebSocket } from 'ws';
import { type Idp, startIdp } from './helpers/oidc-idp.js';
import { opensshWithPassword } from './helpers/openssh-password.js';
import { eventually, pgConnection } from './helpers/ward-stack.js';

const DB_PASSWORD = 'oidc-e2e-db-password';
const LLM_KEY = 'sk-upstream-key-for-oidc-tests';
const COOLDOWN_MS = 30_000;
const CACHE_MAX_AGE_MS = 10 * 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('OIDC through ward: real IdP, psql, openai SDK, OpenSSH', () => {
  let idp: Idp;
  let cluster: PgCluster;
  let sshd: Sshd;
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let gateway: RunningGateway;
  let agent: RunningAgent;
  let dir: string;
  let sshWithPassword: ReturnType<typeof opensshWithPassword>['ssh'];
  // The verifier's clock (cache age, cooldown); token times are real time.
  let clockOffset = 0;
  const clock = { now: () => Date.now() + clockOffset };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-oidc-e2e-'));
    idp = await startIdp({
      accounts: {
        alice: { groups: ['engineering', 'platform-admins'] },
        bob: { groups: ['engineering'] },
        carol: { groups: ['security'] },
      },
    });
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    sshd = await startSshd();
    upstream = await startDemoUpstream({ apiKey: LLM_KEY });
    const logger = pino({ level: 'debug' }, pino.destination({ dest: join(dir, 'ward.log'), sync: true }));
    const agentKey = generateAgentKey();
    gateway = await startGateway({
      dataDir: join(dir, 'gw'),
      listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0', postgres: '127.0.0.1:0', ssh: '127.0.0.1:0' },
      tunnel: { insecure: true },
      store: { path: join(dir, 'gw', 'ward.db'), durability: 'group' },
      agents: [{ name: 'oidc-agent', keyHash: hashAgentKey(agentKey) }],
      connections: [
        { name: 'appdb', type: 'postgres', agent: 'oidc-agent' },
        { name: 'llm', type: 'http', agent: 'oidc-agent', llm: 'openai' },
        { name: 'box', type: 'ssh', agent: 'oidc-agent' },
      ],
      // People reach connections through a group grant; admins open everything, auditors nothing.
      access: {
        grants: [
          {
            id: 'engineering',
            identities: [],
            groups: ['engineering'],
            connections: ['*'],
            actions: ['connect', 'exec'],
            windows: [],
          },
        ],
      },
      identity: {
        oidc: [
          new OidcVerifier(
            {
              issuer: idp.issuer,
              audience: 'urn:ward',
              clientId: idp.clientId,
              roles: { user: ['engineering'], admin: ['platform-admins'], auditor: ['security'] },
              defaultRoles: [],
              jwksCooldownMs: COOLDOWN_MS,
              jwksCacheMaxAgeMs: CACHE_MAX_AGE_MS,
            },
            clock,
          ),
        ],
      },
      logger: logger.child({ component: 'gateway' }),
    });
    agent = startAgent({
      gateway: { address: `127.0.0.1:${gateway.tunnelPort}`, insecure: true },
      key: agentKey,
      connections: [
        pgConnection(cluster, DB_PASSWORD),
        {
          type: 'http',
          name: 'llm',
          url: upstream.url,
          auth: { header: 'authorization', scheme: 'Bearer', secret: LLM_KEY },
          timeoutMs: 10_000,
        },
        {
          type: 'ssh',
          name: 'box',
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          privateKey: sshd.clientKey,
          hostKey: { fingerprint: sshd.hostKeyFingerprint },
        },
      ],
      initialDelayMs: 50,
      maxDelayMs: 500,
      logger: logger.child({ component: 'agent' }),
    });
    await agent.online();
    // OpenSSH pins the gateway's host key (its public half, from the data dir) and reads the
    // password from SSH_ASKPASS.
    const client = opensshWithPassword({
      gatewayDataDir: join(dir, 'gw'),
      port: gateway.ssh?.port ?? 0,
      workDir: dir,
      user: 'box',
    });
    sshWithPassword = client.ssh;
    const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', client.knownHosts], { encoding: 'utf8' });
    assert.ok(fp.stdout.includes(gateway.ssh?.hostKeyFingerprint ?? '?'), `pinned the gateway host key: ${fp.stdout}`);
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    await upstream?.close();
    await sshd?.stop();
    await cluster?.stop();
    await idp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const psql = (token: string, sql = 'select current_user') =>
    run(
      'psql',
      ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(gateway.postgresPort), '-U', 'x', '-d', 'appdb', '-c', sql],
      { PGPASSWORD: token, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
    );
  const openai = (token: string) =>
    new OpenAI({ baseURL: `${gateway.httpUrl}/c/llm/v1`, apiKey: token, maxRetries: 0, timeout: 20_000 });
  const chat = (token: string) =>
    openai(token).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
  const openssh = (token: string, command: string) => {
    assert.ok(token.length <= 1023, `OpenSSH sends at most 1023 bytes of password (token is ${token.length})`);
    return sshWithPassword(token, command);
  };
  /** ssh2's client with a password: resolves 'ok' or the error level it failed at. */
  const ssh2Login = (token: string) =>
    new Promise<string>((resolve) => {
      const c = new SshClient();
      c.on('ready', () => {
        c.end();
        resolve('ok');
      });
      c.on('error', (err: Error & { level?: string }) => resolve(err.level ?? err.message));
      // A packet over ssh2's limit ends the transport without an error event.
      c.on('close', () => resolve('closed'));
      c.connect({
        host: '127.0.0.1',
        port: gateway.ssh?.port ?? 0,
        username: 'box',
        password: token,
        tryKeyboard: false,
        readyTimeout: 20_000,
      });
    });
  const records = (kind: string) => gateway.store.audit.listRecords({ kind, limit: 100_000 });
  const whoami = async (token: string) => {
    const res = await fetch(`${gateway.httpUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as { subject: string; roles: string[]; groups: string[] } };
  };

  test('GET /api/v1/identity/providers tells ward login what to talk to, without a token', async () => {
    const res = await fetch(`${gateway.httpUrl}/api/v1/identity/providers`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      providers: [{ issuer: idp.issuer, clientId: 'ward-cli', audience: ['urn:ward'] }],
    });
  });

  test('alice logs in at the IdP and uses psql, the openai SDK and ssh as herself', async () => {
    const token = await idp.mintAccessToken('alice');
    const sessionsBefore = records('session.start').length;

    const p = await psql(token, 'select 40 + 2');
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.stdout.trim(), '42');

    const answer = await chat(token);
    assert.ok(answer.choices[0]?.message.content);

    const s = await openssh(token, 'echo via-openssh');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, 'via-openssh\n');

    const starts = records('session.start').slice(sessionsBefore);
    const protocols = starts.map((r) => r.data['protocol']).sort();
    assert.deepEqual(protocols, ['http', 'postgres', 'ssh']);
    for (const r of starts) {
      assert.equal(r.identity, 'user:alice');
      assert.equal(r.data['issuer'], idp.issuer);
      assert.deepEqual(r.data['groups'], ['engineering', 'platform-admins']);
    }
    const exchange = records('http.exchange').at(-1);
    assert.equal(exchange?.identity, 'user:alice');
  });

  test('groups map to roles and grants: admin, user with a group grant, auditor (who may not open sessions)', async () => {
    const alice = await whoami(await idp.mintAccessToken('alice'));
    assert.deepEqual(alice.body.roles.sort(), ['admin', 'user']);
    const bob = await whoami(await idp.mintAccessToken('bob'));
    assert.deepEqual(bob.body.roles, ['user']);
    const carolToken = await idp.mintAccessToken('carol');
    const carol = await whoami(carolToken);
    assert.deepEqual(carol.body.roles, ['auditor']);
    const denied = await psql(carolToken);
    assert.equal(denied.code, 2);
    assert.match(denied.stderr, /ERR_ACCESS_DENIED/);
    // The IdP moves carol to engineering: her next token carries the role and the group grant.
    const moved = await idp.mintAccessToken('carol', { groups: ['engineering'] });
    assert.deepEqual((await whoami(moved)).body.roles, ['user']);
    const r = await psql(moved);
    assert.equal(r.code, 0, r.stderr);
    const allowed = gateway.store.audit
      .listRecords({ kind: 'access.allow', limit: 100_000 })
      .filter((x) => x.identity === 'user:carol');
    assert.ok(
      allowed.some((x) => x.rule === 'grant:engineering'),
      JSON.stringify(allowed),
    );
  });

  test('attack tokens are refused in every protocol, recorded with their reason; a good session goes on', async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = await startIdp();
    const { id_token: idToken } = await idp.mintTokens('alice');
    assert.ok(idToken);
    const vectors: { name: string; token: string; reason: string; code: string }[] = [
      { name: 'alg none', token: idp.forge.algNone(), reason: 'alg_not_allowed', code: 'ERR_AUTH_TOKEN_INVALID' },
      {
        name: 'HS256 with the RSA public key',
        token: idp.forge.hs256WithPublicKey(),
        reason: 'alg_not_allowed',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      {
        name: 'right kid, wrong key',
        token: await idp.forge.wrongKeyRightKid(),
        reason: 'signature_invalid',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      {
        name: 'expired',
        token: await idp.sign({ iat: now - 7200, exp: now - 3600 }),
        reason: 'expired',
        code: 'ERR_AUTH_TOKEN_EXPIRED',
      },
      {
        name: 'future nbf',
        token: await idp.sign({ nbf: now + 3600 }),
        reason: 'not_yet_valid',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      {
        name: 'missing exp',
        token: await idp.sign({ exp: undefined }),
        reason: 'claim_missing',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      {
        name: 'wrong issuer (another real IdP)',
        token: await other.mintAccessToken('alice'),
        reason: 'issuer_unknown',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      {
        name: 'wrong audience',
        token: await idp.sign({ aud: 'urn:not-ward' }),
        reason: 'audience_mismatch',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
      { name: 'ID token as access token', token: idToken, reason: 'type_mismatch', code: 'ERR_AUTH_TOKEN_INVALID' },
      {
        name: 'over the size cap',
        token: `${(await idp.sign()).slice(0, 40)}${'A'.repeat(MAX_TOKEN_BYTES)}`,
        reason: 'token_too_large',
        code: 'ERR_AUTH_TOKEN_INVALID',
      },
    ];
    await other.stop();

    // A good session, open through all of it.
    const good = await idp.mintAccessToken('bob');
    const held = new pg.Client({
      host: '127.0.0.1',
      port: gateway.postgresPort,
      user: 'x',
      password: good,
      database: 'appdb',
    });
    held.on('error', () => {});
    await held.connect();
    const deniedBefore = records('auth.denied').length;

    for (const v of vectors) {
      // Postgres: FATAL 28P01 (pg surfaces the SQLSTATE and ward's code in the message).
      const client = new pg.Client({
        host: '127.0.0.1',
        port: gateway.postgresPort,
        user: 'x',
        password: v.token,
        database: 'appdb',
      });
      await assert.rejects(client.connect(), (err: { code?: string; severity?: string; message: string }) => {
        assert.equal(err.code, '28P01', `${v.name}: ${err.message}`);
        assert.equal(err.severity, 'FATAL');
        assert.ok(err.message.includes(v.code), `${v.name}: ${err.message}`);
        return true;
      });
      // HTTP: 401 in the OpenAI error shape, a typed error in the SDK.
      await assert.rejects(chat(v.token), (err: unknown) => {
        assert.ok(err instanceof OpenAI.AuthenticationError, `${v.name}: ${String(err)}`);
        assert.equal(err.status, 401);
        assert.equal(err.code, v.code);
        return true;
      });
      // SSH: authentication failure.
      if (v.token.length <= 1023) {
        const r = await openssh(v.token, 'true');
        assert.equal(r.code, 255, `${v.name}: ${r.stderr}`);
        assert.match(r.stderr, /Permission denied/);
      } else {
        assert.equal(await ssh2Login(v.token), 'client-authentication', v.name);
      }
    }

    const denials = records('auth.denied').slice(deniedBefore);
    for (const v of vectors) {
      for (const protocol of ['postgres', 'http', 'ssh']) {
        const hit = denials.find((r) => r.data['protocol'] === protocol && r.data['reason'] === v.reason);
        assert.ok(
          hit,
          `${v.name} over ${protocol} recorded as ${v.reason}: ${JSON.stringify(denials.map((d) => d.data))}`,
        );
        assert.equal(hit.rule, 'auth.token');
        assert.equal(hit.decision, 'deny');
      }
    }
    const log = JSON.stringify(denials);
    for (const v of vectors) assert.ok(!log.includes(v.token.slice(-40)), `${v.name}: the token is not in the record`);

    // A true 1 MB token: refused before it is read as a token (message and header limits), no crash.
    const huge = `eyJ${'A'.repeat(1024 * 1024)}`;
    const hugePg = new pg.Client({
      host: '127.0.0.1',
      port: gateway.postgresPort,
      user: 'x',
      password: huge,
      database: 'appdb',
    });
    // The Postgres codec caps a message before authentication at 10,000 bytes: FATAL 54000.
    await assert.rejects(hugePg.connect(), (err: { code?: string; severity?: string; message: string }) => {
      assert.equal(err.code, '54000', err.message);
      assert.equal(err.severity, 'FATAL');
      assert.ok(err.message.includes('ERR_PG_MESSAGE_TOO_LARGE'));
      return true;
    });
    const hugeHttp = await fetch(`${gateway.httpUrl}/c/llm/v1/models`, {
      headers: { authorization: `Bearer ${huge}` },
    });
    assert.equal(hugeHttp.status, 431, 'Node refuses headers over 16 KiB before ward reads them');
    // Over SSH the packet itself is over the transport's limit: the connection ends.
    assert.equal(await ssh2Login(huge), 'closed');
    // Each of the three refusals is recorded, without the token.
    await eventually(
      () => {
        const tooLarge = records('auth.denied').filter((r) => r.data['reason'] === 'message_too_large');
        return ['postgres', 'http', 'ssh'].every((p) => tooLarge.some((r) => r.data['protocol'] === p));
      },
      10_000,
      'the 1 MB token refusals to be recorded over postgres, http and ssh',
    );
    assert.ok(!JSON.stringify(records('auth.denied')).includes('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));

    // The held session and new good ones still work.
    assert.deepEqual((await held.query('select 1 as one')).rows, [{ one: 1 }]);
    await held.end();
    assert.equal((await psql(good)).code, 0);
    assert.ok((await chat(good)).choices.length > 0);
  });

  test('ward connect: the IdP token in the WebSocket handshake opens a session; an ID token is refused and recorded', async () => {
    const upgrade = (token: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(`${gateway.httpUrl.replace('http', 'ws')}/connect/appdb`, {
          headers: { authorization: `Bearer ${token}` },
        });
        ws.on('open', () => {
          resolve({ status: 101, body: '' });
          ws.terminate();
        });
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        ws.on('error', reject);
      });
    const tokens = await idp.mintTokens('bob');
    assert.equal((await upgrade(tokens.access_token)).status, 101);
    const before = records('auth.denied').length;
    const refused = await upgrade(tokens.id_token ?? '');
    assert.equal(refused.status, 401);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'ERR_AUTH_TOKEN_INVALID');
    const recorded = records('auth.denied').slice(before);
    assert.ok(
      recorded.some((r) => r.data['protocol'] === 'connect' && r.data['reason'] === 'type_mismatch'),
      JSON.stringify(recorded.map((r) => r.data)),
    );
  });

  test('key rotation mid-test: new tokens work, old ones too while published; 50 random kids cost at most one JWKS fetch', async () => {
    const old = await idp.mintAccessToken('alice');
    assert.equal((await psql(old)).code, 0);
    const oldKid = idp.currentKid;
    await idp.rotateKeys();
    assert.notEqual(idp.currentKid, oldKid);
    clockOffset += COOLDOWN_MS + 1_000; // the last fetch is past its cooldown
    idp.resetCounters();
    const fresh = await idp.mintAccessToken('alice');
    const r = await psql(fresh);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(idp.jwksRequests, 1, 'the new kid was fetched once');
    assert.equal((await psql(old)).code, 0, 'the old key is still published and cached');

    idp.resetCounters();
    const storm = await Promise.all(
      Array.from({ length: 50 }, () => idp.sign({ sub: 'alice' }, { kid: randomBytes(8).toString('hex') })),
    );
    const statuses = await Promise.all(
      storm.map(
        async (t) =>
          (await fetch(`${gateway.httpUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${t}` } })).status,
      ),
    );
    assert.ok(statuses.every((s) => s === 401));
    assert.ok(idp.jwksRequests <= 1, `JWKS fetched ${idp.jwksRequests} times for 50 unknown kids`);
    const unknownKid = records('auth.denied').filter((x) => x.data['reason'] === 'kid_unknown');
    assert.ok(unknownKid.length >= 50);
  });

  test('the IdP down past the cache age: fails closed with ERR_AUTH_IDP_UNAVAILABLE, then recovers', async () => {
    const token = await idp.mintAccessToken('bob');
    idp.setAvailable(false);
    try {
      clockOffset += 60_000;
      assert.equal((await psql(token)).code, 0, 'within the cache age the cached keys do');
      clockOffset += CACHE_MAX_AGE_MS;
      const p = await psql(token);
      assert.equal(p.code, 2);
      assert.match(p.stderr, /ERR_AUTH_IDP_UNAVAILABLE/);
      await assert.rejects(chat(token), (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 503);
        assert.equal(err.code, 'ERR_AUTH_IDP_UNAVAILABLE');
        return true;
      });
      const recorded = records('auth.denied').filter((r) => r.data['reason'] === 'idp_unavailable');
      assert.ok(recorded.some((r) => r.data['protocol'] === 'postgres'));
      assert.ok(recorded.some((r) => r.data['protocol'] === 'http'));
    } finally {
      idp.setAvailable(true);
    }
    clockOffset += COOLDOWN_MS + 1_000;
    assert.equal((await psql(token)).code, 0);
  });
});
