import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { serveSshSession, TunnelClient } from '@ward/agent';
import { type Sshd, startSshd } from '@ward/agent/testing';
import { replayAsciicast } from '@ward/cli';
import {
  createGatewayHttpServer,
  createSshApi,
  createSshKeyRepository,
  parseAsciicast,
  type RunningGateway,
  type SshListener,
  StoreRecorder,
  startGateway,
  startSshListener,
} from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import pino from 'pino';
import { Client } from 'ssh2';
import { eventually } from './helpers/ward-stack.js';

interface Stack {
  gateway: RunningGateway;
  agent: TunnelClient;
  sshd: Sshd;
  ssh: SshListener;
  api: Server;
  apiUrl: string;
  dir: string;
  knownHosts: string;
  clientKey: string;
  userToken: string;
  adminToken: string;
  stop(): Promise<void>;
}

const CONNECTION = 'prod-ssh';

async function startSshStack(): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-ssh-e2e-'));
  const logger = pino({ level: 'debug' }, pino.destination({ dest: join(dir, 'ward.log'), sync: true }));
  const sshd = await startSshd();
  const agentKey = generateAgentKey();
  const gateway = await startGateway({
    dataDir: join(dir, 'gw'),
    listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0' },
    tunnel: { insecure: true },
    store: { path: join(dir, 'gw', 'ward.db'), durability: 'group' },
    agents: [{ name: 'ssh-agent', keyHash: hashAgentKey(agentKey) }],
    connections: [
      { name: CONNECTION, type: 'ssh' },
      { name: 'prod-pg', type: 'postgres' },
    ],
    // bob (a user) may open every connection; alice is an admin and needs no grant.
    access: {
      grants: [
        {
          id: 'e2e-bob',
          identities: ['user:bob'],
          groups: [],
          connections: ['*'],
          actions: ['connect', 'exec'],
          windows: [],
        },
      ],
    },
    logger: logger.child({ component: 'gateway' }),
  });
  const agent = new TunnelClient({
    address: `127.0.0.1:${gateway.tunnelPort}`,
    insecure: true,
    key: agentKey,
    connections: [{ name: CONNECTION, type: 'ssh' }],
    initialDelayMs: 50,
    maxDelayMs: 500,
    onSession: (start, channel) => {
      if (start.target.case !== 'ssh') {
        channel.close();
        return;
      }
      serveSshSession(channel, start.target.value, {
        name: CONNECTION,
        host: sshd.host,
        port: sshd.port,
        user: sshd.user,
        privateKey: sshd.clientKey,
        hostKey: { fingerprint: sshd.hostKeyFingerprint },
      });
    },
  });
  agent.start();
  await eventually(() => agent.state === 'online', 10_000, 'the agent online');

  const recorder = new StoreRecorder(gateway.store);
  // The store object is the internal one (it holds its connection); the lead exposes the
  // repository on Store when wiring.
  const db = (gateway.store as unknown as { db: Parameters<typeof createSshKeyRepository>[0] }).db;
  const keys = createSshKeyRepository(db);
  const ssh = await startSshListener('127.0.0.1:0', {
    tunnel: gateway.tunnel,
    recorder,
    sessions: gateway.sessions,
    keys,
    authenticate: (token) => gateway.tokens.verify(token),
    connectionType: (name) => (name === CONNECTION ? 'ssh' : name === 'prod-pg' ? 'postgres' : undefined),
    access: gateway.access,
    dataDir: join(dir, 'gw'),
    logger: logger.child({ component: 'ssh' }),
  });
  const api = createGatewayHttpServer({
    proxy: { tunnel: gateway.tunnel, recorder, maxRequestBodyBytes: 1024 * 1024, recordBodyBytes: 1024 },
    authenticate: (token) => gateway.tokens.verify(token),
    authorize: gateway.access,
    connectionType: () => undefined,
    health: () => ({ ok: true }),
    api: createSshApi({ keys, store: gateway.store, recorder }),
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${ssh.port} ${ssh.hostPublicKey}\n`);
  const clientKey = join(dir, 'id_ed25519');
  const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bob@laptop', '-f', clientKey]);
  assert.equal(kg.status, 0, kg.stderr?.toString());
  const userToken = await gateway.tokens.issue({ subject: 'bob', roles: ['user'], ttlSeconds: 600 });
  const adminToken = await gateway.tokens.issue({ subject: 'alice', roles: ['admin'], ttlSeconds: 600 });
  return {
    gateway,
    agent,
    sshd,
    ssh,
    api,
    apiUrl,
    dir,
    knownHosts,
    clientKey,
    userToken,
    adminToken,
    stop: async () => {
      api.close();
      await new Promise<void>((resolve) => ssh.server.close(() => resolve()));
      await agent.stop();
      await gateway.stop();
      await sshd.stop();
      logger.flush();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function apiCall<T>(s: Stack, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json: json as T, text };
}

function sshArgs(s: Stack, extra: string[] = []): string[] {
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${s.knownHosts}`,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'LogLevel=ERROR',
    '-i',
    s.clientKey,
    ...extra,
  ];
}

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
    child.stdin.end(input ?? '');
  });
}

const ssh = (s: Stack, login: string, command: string[], extra: string[] = [], input?: string) =>
  run('ssh', [...sshArgs(s, ['-p', String(s.ssh.port), '-l', login, ...extra]), '127.0.0.1', ...command], input);

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function records(s: Stack, kind: string) {
  return s.gateway.store.audit.listRecords({ kind, limit: 10_000 });
}

/** Opens an ssh2 client connection to the gateway with a password (the ward token). */
function connectWithPassword(s: Stack, username: string, password: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({
      host: '127.0.0.1',
      port: s.ssh.port,
      username,
      password,
      tryKeyboard: false,
      hostVerifier: (key: Buffer) => key.toString('base64') === s.ssh.hostPublicKey.split(' ')[1],
      readyTimeout: 10_000,
    });
  });
}

function execOn(c: Client, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    c.exec(command, (err, stream) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      stream.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      stream.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      stream.on('exit', (c: number | null) => {
        code = c;
      });
      stream.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

describe('SSH through ward with the real OpenSSH client, agent and sshd', () => {
  let s: Stack;
  let fingerprint: string;

  before(async () => {
    s = await startSshStack();
    const pub = readFileSync(`${s.clientKey}.pub`, 'utf8');
    const added = await apiCall<{ key: { fingerprint: string; identity: string } }>(
      s,
      s.userToken,
      'POST',
      '/api/v1/ssh-keys',
      { publicKey: pub },
    );
    assert.equal(added.status, 201, added.text);
    assert.equal(added.json.key.identity, 'user:bob');
    fingerprint = added.json.key.fingerprint;
    const kg = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${s.clientKey}.pub`], { encoding: 'utf8' });
    assert.equal(kg.stdout.split(' ')[1], fingerprint, 'fingerprint as ssh-keygen prints it');
  });

  after(async () => {
    await s?.stop();
  });

  test('the host key persists in the data dir and its fingerprint is the one ssh-keygen computes', () => {
    const file = join(s.dir, 'gw', 'ssh-host-key');
    const out = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout.split(' ')[1], s.ssh.hostKeyFingerprint);
  });

  test('exec: stdout and stderr apart, exit status passed back, command recorded', async () => {
    const r = await ssh(s, CONNECTION, ['echo out-line; echo err-line >&2; exit 7']);
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout.toString(), 'out-line\n');
    assert.match(r.stderr, /err-line/);
    assert.doesNotMatch(r.stdout.toString(), /err-line/);
    const session = records(s, 'ssh.session').find(
      (x) => x.data['command'] === 'echo out-line; echo err-line >&2; exit 7',
    );
    assert.ok(session, 'an ssh.session record for the command');
    assert.equal(session.data['exitCode'], 7);
    assert.equal(session.identity, 'user:bob');
    assert.equal(session.data['kind'], 'exec');
  });

  test('exec as <remote-user>@<connection>, and a signal exit', async () => {
    const r = await ssh(s, `${s.sshd.user}@${CONNECTION}`, ['id -un; kill -TERM $$']);
    assert.equal(r.stdout.toString(), `${s.sshd.user}\n`);
    assert.equal(r.status, 255, 'ssh exits 255 when the remote command died of a signal');
    await eventually(
      () => records(s, 'ssh.session').some((x) => x.data['exitSignal'] === 'TERM'),
      10_000,
      'the signal exit recorded',
    );
  });

  test('a pty session with piped input, recorded as asciicast that replays to the same output', async () => {
    const r = await ssh(s, CONNECTION, [], ['-tt'], 'echo pty-$((6*7))\nexit 5\n');
    assert.equal(r.status, 5, r.stderr);
    assert.match(r.stdout.toString(), /pty-42/);
    let id = '';
    await eventually(
      () => {
        const rec = records(s, 'ssh.session').find((x) => x.data['kind'] === 'shell' && x.data['exitCode'] === 5);
        id = rec?.sessionId ?? '';
        return id !== '';
      },
      10_000,
      'the shell session recorded',
    );
    const cast = await apiCall<unknown>(s, s.userToken, 'GET', `/api/v1/sessions/${id}/recording`);
    assert.equal(cast.status, 200);
    const parsed = parseAsciicast(cast.text);
    assert.equal(parsed.header['version'], 2);
    const output = parsed.events
      .filter((e) => e.code === 'o')
      .map((e) => e.data)
      .join('');
    assert.equal(output, r.stdout.toString(), 'the recording holds exactly what the client printed');
    assert.ok(parsed.events.some((e) => e.code === 'i' && e.data.includes('echo pty-')));
    // The CLI's player writes the same bytes.
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    await replayAsciicast(cast.text, sink, { speed: 1000, maxIdleSeconds: 0.01 });
    assert.equal(Buffer.concat(chunks).toString(), r.stdout.toString());
    // Another user may not read it; an admin may.
    const otherToken = await s.gateway.tokens.issue({ subject: 'carol', roles: ['user'], ttlSeconds: 60 });
    const denied = await apiCall<{ error: { code: string } }>(s, otherToken, 'GET', `/api/v1/sessions/${id}/recording`);
    assert.equal(denied.status, 404);
    assert.equal(denied.json.error.code, 'ERR_SESSION_NOT_FOUND');
    const admin = await apiCall<unknown>(s, s.adminToken, 'GET', `/api/v1/sessions/${id}/recording`);
    assert.equal(admin.status, 200);
  });

  test('pty size and window-change reach the host (ssh2 client, token as password)', async () => {
    const c = await connectWithPassword(s, CONNECTION, s.userToken);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        c.shell({ term: 'xterm', cols: 100, rows: 30 }, (err, stream) => {
          if (err) return reject(err);
          let text = '';
          let resized = false;
          stream.on('data', (d: Buffer) => {
            text += d.toString();
            // Resize only once the first answer is out: the shell reads typed-ahead lines late.
            if (!resized && /30 100/.test(text)) {
              resized = true;
              stream.setWindow(50, 120, 0, 0);
              stream.write('stty size; exit\n');
            }
          });
          stream.on('close', () => resolve(text));
          stream.write('stty size\n');
        });
      });
      assert.match(out, /30 100/);
      assert.match(out, /50 120/);
    } finally {
      c.end();
    }
    await eventually(
      () =>
        records(s, 'ssh.session').some(
          (x) => x.data['kind'] === 'shell' && typeof x.data['recording'] === 'string' && x.identity === 'user:bob',
        ),
      10_000,
      'recorded',
    );
  });

  test('scp both ways (legacy scp protocol and SFTP), byte-exact', async () => {
    const work = join(s.dir, 'scp');
    mkdirSync(work);
    const original = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(join(work, 'up.bin'), original);
    for (const legacy of [true, false]) {
      const remote = join(work, legacy ? 'remote-legacy.bin' : 'remote-sftp.bin');
      const back = join(work, legacy ? 'back-legacy.bin' : 'back-sftp.bin');
      const base = [...sshArgs(s, ['-P', String(s.ssh.port)]), ...(legacy ? ['-O'] : [])];
      const up = await run('scp', [...base, join(work, 'up.bin'), `${CONNECTION}@127.0.0.1:${remote}`]);
      assert.equal(up.status, 0, up.stderr);
      assert.equal(sha256(readFileSync(remote)), sha256(original));
      const down = await run('scp', [...base, `${CONNECTION}@127.0.0.1:${remote}`, back]);
      assert.equal(down.status, 0, down.stderr);
      assert.equal(sha256(readFileSync(back)), sha256(original));
    }
    const legacyUp = records(s, 'ssh.session').find(
      (x) => typeof x.data['command'] === 'string' && /^scp .*-t/.test(x.data['command'] as string),
    );
    assert.ok(legacyUp, 'the scp -t command line is recorded');
    assert.ok((legacyUp.data['bytesIn'] as number) >= original.length);
    assert.equal(legacyUp.data['recording'], null, 'file transfers are not recorded as terminal output');
    await eventually(
      () => records(s, 'ssh.sftp').some((x) => x.data['op'] === 'file' && x.data['sha256Written'] === sha256(original)),
      10_000,
      'the sftp upload recorded with its SHA-256',
    );
  });

  test('sftp put/get/ls through a batch file, file operations recorded', async () => {
    const work = join(s.dir, 'sftp');
    mkdirSync(work);
    const remoteDir = join(work, 'remote');
    mkdirSync(remoteDir);
    const content = randomBytes(200_000);
    writeFileSync(join(work, 'a.bin'), content);
    const batch = join(work, 'batch');
    writeFileSync(
      batch,
      [
        `put ${join(work, 'a.bin')} ${remoteDir}/a.bin`,
        `ls -1 ${remoteDir}`,
        `get ${remoteDir}/a.bin ${join(work, 'a-back.bin')}`,
        `rename ${remoteDir}/a.bin ${remoteDir}/b.bin`,
        `rm ${remoteDir}/b.bin`,
        '',
      ].join('\n'),
    );
    const r = await run('sftp', [...sshArgs(s, ['-P', String(s.ssh.port)]), '-b', batch, `${CONNECTION}@127.0.0.1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.toString(), /a\.bin/);
    assert.equal(sha256(readFileSync(join(work, 'a-back.bin'))), sha256(content));
    const digest = sha256(content);
    await eventually(() => records(s, 'ssh.sftp').some((x) => x.data['op'] === 'remove'), 10_000, 'sftp records');
    const ops = records(s, 'ssh.sftp').filter((x) => String(x.data['path']).startsWith(remoteDir));
    const put = ops.find((x) => x.data['op'] === 'file' && x.data['sha256Written'] === digest);
    const get = ops.find((x) => x.data['op'] === 'file' && x.data['sha256Read'] === digest);
    assert.ok(put, 'the upload with the SHA-256 of its bytes');
    assert.equal(put.data['bytesWritten'], content.length);
    assert.ok(get, 'the download with the SHA-256 of its bytes');
    assert.equal(get.data['bytesRead'], content.length);
    assert.ok(ops.some((x) => x.data['op'] === 'rename' && x.data['to'] === `${remoteDir}/b.bin`));
    assert.ok(ops.some((x) => x.data['op'] === 'remove' && x.data['status'] === 0));
  });

  test('ssh -L is refused, the session goes on; -W fails', async () => {
    const port = await freePort();
    const child: ChildProcess = spawn(
      'ssh',
      [
        ...sshArgs(s, ['-p', String(s.ssh.port), '-l', CONNECTION, '-L', `127.0.0.1:${port}:127.0.0.1:${s.sshd.port}`]),
        '127.0.0.1',
        'read x; echo got-$x',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      // The forward's local end listens once ssh is up; a connection through it is refused by the gateway.
      await eventually(() => canConnect(port), 10_000, 'the local forward listening');
      const data = await readUntilClosed(port);
      assert.equal(data.length, 0, 'nothing came through the refused forward');
      await eventually(() => records(s, 'ssh.denied').some((x) => x.rule === 'ssh.forwarding'), 10_000, 'recorded');
      child.stdin?.end('still-here\n');
      assert.equal(await exited, 0, stderr);
      assert.equal(stdout, 'got-still-here\n');
    } finally {
      child.kill();
    }
    const w = await ssh(s, CONNECTION, [], ['-W', `127.0.0.1:${s.sshd.port}`]);
    assert.equal(w.status, 255);
    assert.match(w.stderr, /prohibited|failed/i);
  });

  test('direct-tcpip from ssh2 is refused and the same connection still runs commands', async () => {
    const c = await connectWithPassword(s, CONNECTION, s.userToken);
    try {
      const err = await new Promise<Error | undefined>((resolve) =>
        c.forwardOut('127.0.0.1', 0, '127.0.0.1', s.sshd.port, (e) => resolve(e)),
      );
      assert.ok(err, 'forwardOut fails');
      const r = await execOn(c, 'echo alive');
      assert.equal(r.stdout, 'alive\n');
      assert.equal(r.code, 0);
    } finally {
      c.end();
    }
  });

  test('unknown connection, non-ssh connection, bad user name: disconnected after auth with the code', async () => {
    for (const [login, code] of [
      ['no-such-conn', 'ERR_CONN_UNKNOWN'],
      ['prod-pg', 'ERR_CONN_TYPE_MISMATCH'],
      ['Not A Name', 'ERR_SSH_BAD_USERNAME'],
    ] as const) {
      const r = await ssh(s, login, ['true'], ['-o', 'LogLevel=INFO']);
      assert.equal(r.status, 255, login);
      assert.match(r.stderr, new RegExp(code), `${login}: ${r.stderr}`);
    }
    const denied = records(s, 'access.denied').filter((x) => x.data['protocol'] === 'ssh');
    assert.ok(denied.some((x) => x.data['code'] === 'ERR_CONN_UNKNOWN' && x.identity === 'user:bob'));
  });

  test('a bad token and an unregistered key are refused alike and recorded', async () => {
    const before = records(s, 'auth.denied').length;
    await assert.rejects(connectWithPassword(s, CONNECTION, 'not-a-token'), (err: Error & { level?: string }) => {
      assert.equal(err.level, 'client-authentication');
      return true;
    });
    const expired = await s.gateway.tokens.issue({ subject: 'bob', roles: ['user'], ttlSeconds: 1 });
    // An unknown connection name with a bad credential learns nothing about the name.
    await assert.rejects(
      connectWithPassword(s, 'no-such-conn', 'x'.repeat(1000)),
      (err: Error & { level?: string }) => {
        assert.equal(err.level, 'client-authentication');
        return true;
      },
    );
    const otherKey = join(s.dir, 'other_key');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const r = await run('ssh', [
      ...sshArgs(s, ['-p', String(s.ssh.port), '-l', CONNECTION]).map((a) => (a === s.clientKey ? otherKey : a)),
      '127.0.0.1',
      'true',
    ]);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /Permission denied/);
    const denials = records(s, 'auth.denied').slice(before);
    assert.ok(denials.filter((x) => x.data['protocol'] === 'ssh').length >= 2, JSON.stringify(denials));
    assert.ok(denials.some((x) => x.data['code'] === 'ERR_AUTH_TOKEN_INVALID'));
    assert.ok(expired.length < 1024, 'a gateway token fits the OpenSSH password limit');
  });

  test('a malformed packet ends only its own connection', async () => {
    const sock = net.connect(s.ssh.port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.on('error', () => {});
    await new Promise<void>((resolve) => sock.once('data', () => resolve()));
    sock.write('SSH-2.0-garbage_1.0\r\n');
    sock.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xf0]), randomBytes(64)]));
    await closed;
    const r = await ssh(s, CONNECTION, ['echo after-garbage']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'after-garbage\n');
  });

  test('keys: list shows the key, remove revokes it', async () => {
    const list = await apiCall<{ keys: Array<{ fingerprint: string }> }>(s, s.userToken, 'GET', '/api/v1/ssh-keys');
    assert.deepEqual(
      list.json.keys.map((k) => k.fingerprint),
      [fingerprint],
    );
    const dup = await apiCall<{ error: { code: string } }>(s, s.adminToken, 'POST', '/api/v1/ssh-keys', {
      publicKey: readFileSync(`${s.clientKey}.pub`, 'utf8'),
    });
    assert.equal(dup.json.error.code, 'ERR_SSH_KEY_EXISTS');
    const priv = await apiCall<{ error: { code: string } }>(s, s.userToken, 'POST', '/api/v1/ssh-keys', {
      publicKey: readFileSync(s.clientKey, 'utf8'),
    });
    assert.equal(priv.json.error.code, 'ERR_SSH_KEY_INVALID');
    const del = await apiCall<{ removed: boolean }>(
      s,
      s.userToken,
      'DELETE',
      `/api/v1/ssh-keys/${encodeURIComponent(fingerprint)}`,
    );
    assert.equal(del.status, 200);
    const r = await ssh(s, CONNECTION, ['true']);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /Permission denied/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

function readUntilClosed(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1');
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
  });
}
