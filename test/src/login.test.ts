// `ward login`, `ward whoami`, `ward logout` end to end: the real CLI as a child process with
// its own WARD_CONFIG_DIR, a real IdP (oidc-provider), a real gateway that trusts it, and then
// psql (through `ward connect`) and the openai SDK as the signed-in person. The browser is
// played by completeBrowserLogin/completeDeviceLogin, which follow the IdP's real redirects
// and forms (to the CLI's own loopback listener for the PKCE flow).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningAgent, startAgent } from '@ward/agent';
import { type PgCluster, type Sshd, startPgCluster, startSshd } from '@ward/agent/testing';
import { startDemoUpstream } from '@ward/demo';
import { type RunningGateway, startGateway } from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import OpenAI from 'openai';
import pg from 'pg';
import pino from 'pino';
import { completeBrowserLogin, completeDeviceLogin, type Idp, startIdp } from './helpers/oidc-idp.js';
import { opensshWithPassword } from './helpers/openssh-password.js';
import { eventually, pgConnection } from './helpers/ward-stack.js';

const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;
const WARD = join(root, 'packages/cli/bin/ward.js');
const DB_PASSWORD = 'db-password-only-the-agent-knows';
const UPSTREAM_KEY = 'sk-upstream-key-for-login-tests';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface CachedCredentials {
  gateway: string;
  token: string;
  subject: string;
  expiresAt: string;
  issuer?: string;
  clientId?: string;
  refreshToken?: string;
}

/** The CLI as a user runs it: its own config dir, no WARD_TOKEN/WARD_GATEWAY, no display. */
function ward(
  configDir: string,
  args: string[],
  onStdout?: (soFar: string, child: ChildProcess) => void,
  timeoutMs = 60_000,
): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARD_CONFIG_DIR: configDir };
  for (const k of ['WARD_TOKEN', 'WARD_GATEWAY', 'DISPLAY', 'WAYLAND_DISPLAY']) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WARD, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `ward connect appdb` as the signed-in user of `configDir`, once it listens on its local port. */
async function wardConnect(configDir: string): Promise<{ port: string; stop(): void }> {
  const child = spawn(process.execPath, [WARD, 'connect', 'appdb', '--port', '0'], {
    env: { ...process.env, WARD_CONFIG_DIR: configDir, WARD_TOKEN: '', WARD_GATEWAY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const listening = () => /on 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
  try {
    await eventually(() => listening() !== undefined, 15_000, 'ward connect to listen');
  } catch (err) {
    child.kill('SIGINT');
    throw err;
  }
  return { port: listening() ?? '', stop: () => child.kill('SIGINT') };
}

const cachePath = (configDir: string) => join(configDir, 'credentials.json');
const readCache = (configDir: string) => JSON.parse(readFileSync(cachePath(configDir), 'utf8')) as CachedCredentials;

/** `ward login --device`, approving the printed code in the "browser" as `account`. */
async function deviceLogin(idp: Idp, configDir: string, gateway: string, account: string, extra: string[] = []) {
  idp.nextLogin(account);
  let approving: Promise<unknown> | undefined;
  const r = await ward(
    configDir,
    ['login', '--device', '--gateway', gateway, '--issuer', idp.issuer, ...extra],
    (out) => {
      const complete = /or open (\S+)/.exec(out)?.[1];
      if (complete && !approving) approving = completeDeviceLogin(complete).catch((err: unknown) => err);
    },
  );
  return { ...r, approval: await approving };
}

/** `ward login --browser --no-open`, completing the printed URL as `account`. */
async function browserLogin(idp: Idp, configDir: string, gateway: string, account: string) {
  idp.nextLogin(account);
  let callback: ReturnType<typeof completeBrowserLogin> | undefined;
  const r = await ward(
    configDir,
    ['login', '--browser', '--no-open', '--gateway', gateway, '--issuer', idp.issuer],
    (out) => {
      const url = /^\s+(http\S+\/auth\?\S+)$/m.exec(out)?.[1];
      if (url && !callback) callback = completeBrowserLogin(url);
    },
  );
  assert.ok(callback, `no authorization URL printed: ${r.stdout}`);
  return { ...r, callback: await callback };
}

describe('ward login / whoami / logout with a real IdP', () => {
  let idp: Idp;
  /** A second IdP whose access tokens live 4 s, for the refresh tests. */
  let shortIdp: Idp;
  let cluster: PgCluster;
  let sshd: Sshd;
  let sshWithPassword: ReturnType<typeof opensshWithPassword>['ssh'];
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let gateway: RunningGateway;
  let agent: RunningAgent;
  let dataDir: string;
  let logFile: string;
  let logger: pino.Logger;

  before(async () => {
    idp = await startIdp({
      accounts: { alice: { groups: ['engineering', 'admins'] }, bob: { groups: ['engineering'] } },
    });
    shortIdp = await startIdp({ accounts: { carol: { groups: ['admins'] } }, accessTokenTtl: 4 });
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    upstream = await startDemoUpstream({ apiKey: UPSTREAM_KEY });
    sshd = await startSshd();
    dataDir = mkdtempSync(join(tmpdir(), 'ward-login-'));
    logFile = join(dataDir, 'ward.log');
    logger = pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true }));
    const agentKey = generateAgentKey();
    gateway = await startGateway({
      dataDir,
      listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0', ssh: '127.0.0.1:0', postgres: '127.0.0.1:0' },
      tunnel: { insecure: true },
      store: { path: join(dataDir, 'ward.db'), durability: 'group' },
      agents: [{ name: 'login-agent', keyHash: hashAgentKey(agentKey) }],
      connections: [
        { name: 'appdb', type: 'postgres', agent: 'login-agent' },
        { name: 'llm', type: 'http', agent: 'login-agent', llm: 'openai' },
        { name: 'box', type: 'ssh', agent: 'login-agent' },
      ],
      identity: {
        oidc: [
          { issuer: idp.issuer, audience: 'urn:ward', clientId: idp.clientId, roles: { admin: ['admins'] } },
          // No clock tolerance: an expired token is refused at once, so the refresh test
          // proves the CLI really had to refresh.
          {
            issuer: shortIdp.issuer,
            audience: 'urn:ward',
            clientId: shortIdp.clientId,
            roles: { admin: ['admins'] },
            clockToleranceSeconds: 0,
          },
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
          auth: { header: 'authorization', scheme: 'Bearer', secret: UPSTREAM_KEY },
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
    sshWithPassword = opensshWithPassword({
      gatewayDataDir: dataDir,
      port: gateway.ssh?.port ?? 0,
      workDir: dataDir,
      user: 'box',
    }).ssh;
  });

  after(async () => {
    await agent?.stop();
    await gateway?.stop();
    logger?.flush();
    await upstream?.close();
    await sshd?.stop();
    await cluster?.stop();
    await idp?.stop();
    await shortIdp?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const newConfigDir = () => join(mkdtempSync(join(tmpdir(), 'ward-cli-')), 'ward');

  test('with several IdPs and no --issuer, login says to pick one', async () => {
    const r = await ward(newConfigDir(), ['login', '--device', '--gateway', gateway.httpUrl]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_CLI_LOGIN_PROVIDER_AMBIGUOUS/);
  });

  test('device flow: the printed code, approved elsewhere, signs bob in; the cache is 0600 in a 0700 dir', async () => {
    const dir = newConfigDir();
    const r = await deviceLogin(idp, dir, gateway.httpUrl, 'bob');
    assert.equal(r.approval, undefined, String(r.approval));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /enter the code [A-Z]{4}-[A-Z]{4}/);
    assert.match(r.stdout, /Signed in as bob/);
    assert.match(r.stdout, /knows you as bob \(groups: engineering; roles: user\)/);
    assert.equal(statSync(cachePath(dir)).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(cachePath(dir))).mode & 0o777, 0o700);
    const cache = readCache(dir);
    assert.equal(cache.gateway, gateway.httpUrl);
    assert.equal(cache.issuer, idp.issuer);
    assert.equal(cache.subject, 'bob');
    assert.ok(cache.refreshToken, 'offline_access gave a refresh token');
    assert.ok(Date.parse(cache.expiresAt) > Date.now());
    // Neither token is ever printed by login.
    assert.equal(r.stdout.includes(cache.token) || r.stderr.includes(cache.token), false);
    assert.equal(r.stdout.includes(cache.refreshToken) || r.stderr.includes(cache.refreshToken), false);

    const who = await ward(dir, ['whoami']);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^subject: bob \(user\)$/m);
    assert.match(who.stdout, /^groups: +engineering$/m);
    assert.match(who.stdout, new RegExp(`^issuer: +${idp.issuer}$`, 'm'));
  });

  test('device flow refused at the IdP: ERR_CLI_LOGIN_DENIED, exit 1, no cache', async () => {
    const dir = newConfigDir();
    // An account the IdP does not know: its interaction ends with access_denied.
    const r = await deviceLogin(idp, dir, gateway.httpUrl, 'mallory');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_CLI_LOGIN_DENIED/);
    assert.throws(() => statSync(cachePath(dir)), { code: 'ENOENT' });
  });

  test('device code nobody approves: ERR_CLI_LOGIN_TIMEOUT, exit 1', async () => {
    const dir = newConfigDir();
    const r = await ward(dir, [
      'login',
      '--device',
      '--gateway',
      gateway.httpUrl,
      '--issuer',
      idp.issuer,
      '--timeout',
      '1',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_CLI_LOGIN_TIMEOUT/);
    assert.throws(() => statSync(cachePath(dir)), { code: 'ENOENT' });
  });

  let aliceDir: string;

  test('browser flow (PKCE on loopback): alice signs in, the tab says it can close, whoami shows her groups and role', async () => {
    aliceDir = newConfigDir();
    const r = await browserLogin(idp, aliceDir, gateway.httpUrl, 'alice');
    assert.equal(r.code, 0, r.stderr);
    const url = new URL(/^\s+(http\S+\/auth\?\S+)$/m.exec(r.stdout)?.[1] ?? '');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('resource'), 'urn:ward');
    assert.match(url.searchParams.get('scope') ?? '', /\boffline_access\b/);
    assert.ok(url.searchParams.get('state') && url.searchParams.get('nonce'));
    assert.match(url.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    assert.equal(r.callback.response?.status, 200);
    assert.match((await r.callback.response?.text()) ?? '', /close this tab/);
    assert.equal(statSync(cachePath(aliceDir)).mode & 0o777, 0o600);
    assert.equal(readCache(aliceDir).subject, 'alice');

    const who = await ward(aliceDir, ['whoami']);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^subject: alice \(user\)$/m);
    assert.match(who.stdout, /^groups: +engineering, admins$/m);
    assert.match(who.stdout, /^roles: +.*\badmin\b/m);
  });

  test('browser flow: a callback with a foreign state is refused and the real one still completes', async () => {
    const dir = newConfigDir();
    idp.nextLogin('bob');
    let forged: Response | undefined;
    let callback: ReturnType<typeof completeBrowserLogin> | undefined;
    const r = await ward(
      dir,
      ['login', '--browser', '--no-open', '--gateway', gateway.httpUrl, '--issuer', idp.issuer],
      (out) => {
        const url = /^\s+(http\S+\/auth\?\S+)$/m.exec(out)?.[1];
        if (url && !callback) {
          const redirect = new URL(url).searchParams.get('redirect_uri') ?? '';
          callback = fetch(`${redirect}?code=stolen&state=not-yours`).then(async (res) => {
            forged = res;
            return completeBrowserLogin(url);
          });
        }
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(forged?.status, 400);
    assert.equal((await callback)?.response?.status, 200);
    assert.equal(readCache(dir).subject, 'bob');
  });

  test('as alice: psql through ward connect, recorded with her IdP subject and issuer', async () => {
    const connect = await wardConnect(aliceDir);
    try {
      const r = await run(
        'psql',
        [
          '-X',
          '-A',
          '-t',
          '-w',
          '-h',
          '127.0.0.1',
          '-p',
          connect.port,
          '-U',
          'anyone',
          '-d',
          'app',
          '-c',
          'select 6 * 7',
        ],
        { PGPASSWORD: '' },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '42');
    } finally {
      connect.stop();
    }
    await gateway.store.audit.flush();
    const query = gateway.store.audit
      .listRecords({ kind: 'pg.query', limit: 1000 })
      .find((x) => x.data['sql'] === 'select 6 * 7');
    assert.ok(query, 'the query is recorded');
    assert.match(String(query.identity), /alice/);
    const start = gateway.store.audit
      .listRecords({ kind: 'session.start', limit: 1000 })
      .find((x) => x.sessionId === query.sessionId);
    assert.equal(start?.data['issuer'], idp.issuer);
  });

  test('as alice: the openai SDK with `ward token print` as its API key, recorded as alice', async () => {
    const printed = await ward(aliceDir, ['token', 'print']);
    assert.equal(printed.code, 0, printed.stderr);
    const client = new OpenAI({
      baseURL: `${gateway.httpUrl}/c/llm/v1`,
      apiKey: printed.stdout.trim(),
      maxRetries: 0,
    });
    const reply = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'who am I, for the audit log?' }],
    });
    assert.ok(reply.choices[0]?.message.content);
    const exchange = () =>
      gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).find((x) => x.connection === 'llm');
    await eventually(() => exchange() !== undefined, 10_000, 'the exchange record');
    assert.match(String(exchange()?.identity), /alice/);
  });

  test('as alice: ward token ssh prints a short gateway token that OpenSSH logs in with, recorded as alice', async () => {
    const idpToken = readCache(aliceDir).token;
    const r = await ward(aliceDir, ['token', 'ssh']);
    assert.equal(r.code, 0, r.stderr);
    const short = r.stdout.trim();
    assert.notEqual(short, idpToken);
    assert.ok(short.length <= 1023, `OpenSSH sends at most 1023 bytes of password (got ${short.length})`);
    const ssh = await sshWithPassword(short, 'echo signed-in-through-ward');
    assert.equal(ssh.code, 0, ssh.stderr);
    assert.equal(ssh.stdout.trim(), 'signed-in-through-ward');
    await gateway.store.audit.flush();
    const start = gateway.store.audit
      .listRecords({ kind: 'session.start', limit: 1000 })
      .filter((x) => x.connection === 'box')
      .at(-1);
    assert.match(String(start?.identity), /alice/);
    // Issued by the gateway (token.issued), not the IdP; never the token itself.
    const issued = gateway.store.audit.listRecords({ kind: 'token.issued', limit: 1000 });
    assert.ok(issued.some((x) => String(x.identity).includes('alice')));
    assert.equal(JSON.stringify(issued).includes(short), false);
  });

  test('a new user, end to end: bob signs in at the IdP, has no grant, asks for 6 s of access, alice approves, bob works, the grant ends his session', async () => {
    const bobDir = newConfigDir();
    const login = await deviceLogin(idp, bobDir, gateway.httpUrl, 'bob');
    assert.equal(login.code, 0, login.stderr);
    // No grant yet: refused before anything reaches the database (exit 3, the code named).
    const refused = await ward(bobDir, ['exec', 'appdb', 'select 1']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /ERR_ACCESS_NO_GRANT/);
    // bob asks; his own approval is refused (requester is never approver).
    const asked = await ward(bobDir, ['access', 'request', 'appdb', '--for', '6s', '--reason', 'INC-42 look at a row']);
    assert.equal(asked.code, 0, asked.stderr);
    const id = /requested (req_\S+?):/.exec(asked.stdout)?.[1];
    assert.ok(id, asked.stdout);
    const self = await ward(bobDir, ['access', 'approve', id]);
    assert.notEqual(self.code, 0);
    // alice (admins → admin role at the IdP mapping) approves with her own `ward login` cache.
    const approved = await ward(aliceDir, ['access', 'approve', id]);
    assert.equal(approved.code, 0, approved.stderr);
    // bob works, as himself: ward exec, and a psql-style session he keeps open.
    const ok = await ward(bobDir, ['exec', 'appdb', '--format', 'csv', 'select 6 * 7 as answer']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^answer\r?\n42\r?\n$/);
    const held = new pg.Client({
      host: '127.0.0.1',
      port: gateway.postgresPort ?? 0,
      user: 'bob',
      password: readCache(bobDir).token,
      database: 'appdb',
    });
    const ended = new Promise<{ code?: string; message: string }>((resolve) => held.on('error', resolve));
    await held.connect();
    assert.deepEqual((await held.query('select 1 as one')).rows, [{ one: 1 }]);
    // The grant expires by itself: the held session ends with the reason, in Postgres's words.
    const err = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
    assert.ok(err, 'the session ended when the grant expired');
    assert.match(err.message, /ERR_ACCESS_GRANT_EXPIRED/);
    await held.end().catch(() => {});
    const after = await ward(bobDir, ['exec', 'appdb', 'select 1']);
    assert.equal(after.code, 3, after.stderr);
    // Every step is evidence: the request, alice's approval, bob's allowed session, the expiry.
    await gateway.store.audit.flush();
    const kinds = gateway.store.audit
      .listRecords({ limit: 100_000 })
      .filter((r) => JSON.stringify(r).includes(id) || (r.kind.startsWith('access.') && /bob/.test(String(r.identity))))
      .map((r) => r.kind);
    for (const kind of ['access.request', 'access.approve', 'access.allow', 'access.expire'])
      assert.ok(
        kinds.some((k) => k.startsWith(kind)),
        `${kind} recorded: ${kinds.join(', ')}`,
      );
  });

  test('refresh: after the 4 s access token expired, ward connect and the next command refresh it; the cache holds the new one', async () => {
    const dir = newConfigDir();
    const r = await deviceLogin(shortIdp, dir, gateway.httpUrl, 'carol');
    assert.equal(r.code, 0, r.stderr);
    const first = readCache(dir);
    const connect = await wardConnect(dir);
    try {
      await eventually(() => Date.now() > Date.parse(first.expiresAt) + 1000, 15_000, 'the access token to expire');
      // The old token no longer works at the gateway (no clock tolerance for this issuer)...
      const stale = await fetch(`${gateway.httpUrl}/api/v1/whoami`, {
        headers: { authorization: `Bearer ${first.token}` },
      });
      assert.equal(stale.status, 401);
      // ...but the running ward connect refreshes before it opens the next connection.
      const psql = await run(
        'psql',
        [
          '-X',
          '-A',
          '-t',
          '-w',
          '-h',
          '127.0.0.1',
          '-p',
          connect.port,
          '-U',
          'carol',
          '-d',
          'app',
          '-c',
          'select 40 + 2',
        ],
        { PGPASSWORD: '' },
      );
      assert.equal(psql.code, 0, psql.stderr);
      assert.equal(psql.stdout.trim(), '42');
    } finally {
      connect.stop();
    }
    const second = readCache(dir);
    assert.notEqual(second.token, first.token);
    assert.notEqual(second.refreshToken, first.refreshToken, 'the IdP rotated the refresh token');
    assert.ok(Date.parse(second.expiresAt) > Date.parse(first.expiresAt));
    assert.equal(statSync(cachePath(dir)).mode & 0o777, 0o600);
    assert.equal(second.issuer, shortIdp.issuer);
    // A later command (its token expired again by now) refreshes from the rotated refresh token.
    await eventually(() => Date.now() > Date.parse(second.expiresAt) + 1000, 15_000, 'the new token to expire');
    const who = await ward(dir, ['whoami']);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^subject: carol/m);
    assert.notEqual(readCache(dir).token, second.token);
  });

  test('refresh refused (refresh token revoked at the IdP): the command says to run ward login', async () => {
    const dir = newConfigDir();
    const r = await deviceLogin(shortIdp, dir, gateway.httpUrl, 'carol');
    assert.equal(r.code, 0, r.stderr);
    const cache = readCache(dir);
    const revoked = await fetch(`${shortIdp.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: cache.refreshToken ?? '', client_id: shortIdp.clientId }),
    });
    assert.equal(revoked.status, 200);
    await eventually(() => Date.now() > Date.parse(cache.expiresAt), 15_000, 'the access token to expire');
    const who = await ward(dir, ['whoami']);
    assert.equal(who.code, 1);
    assert.match(who.stderr, /ERR_CLI_LOGIN_REFRESH_FAILED/);
    assert.match(who.stderr, /ward login/);
    assert.equal(who.stderr.includes(cache.refreshToken ?? '-'), false);
  });

  test('logout revokes the refresh token at the IdP and deletes the cache; whoami then says not logged in; logout again is fine', async () => {
    const refreshToken = readCache(aliceDir).refreshToken ?? '';
    assert.ok(refreshToken);
    const out = await ward(aliceDir, ['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /Revoked the refresh token/);
    assert.throws(() => statSync(cachePath(aliceDir)), { code: 'ENOENT' });
    await assert.rejects(idp.refresh(refreshToken), 'the IdP no longer honours the refresh token');

    const who = await ward(aliceDir, ['whoami']);
    assert.equal(who.code, 1);
    assert.match(who.stderr, /ERR_CLI_NOT_LOGGED_IN/);
    const again = await ward(aliceDir, ['logout']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Not signed in/);
  });

  test('no IdP token ever reaches the gateway log', () => {
    logger.flush();
    const log = readFileSync(logFile, 'utf8');
    assert.equal(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/.test(log), false, 'a JWT in the gateway log');
  });
});
