// `ward connect` for SSH and `ward exec` for Postgres and SSH, with the CLI run as a child
// process the way users run it (token in the environment, config dir of its own), real
// OpenSSH ssh/scp/sftp against a real sshd behind the agent, and a real SCRAM Postgres cluster.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type PgCluster, type Sshd, startPgCluster, startSshd } from '@ward/agent/testing';
import { sshHostKey } from '@ward/gateway';
import { run, sha256 } from './helpers/processes.js';
import { eventually, pgConnection, startStack, type WardStack } from './helpers/ward-stack.js';

const DB_PASSWORD = 'db-password-only-the-agent-knows';
const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;
const WARD = join(root, 'packages/cli/bin/ward.js');

describe('ward connect (SSH) and ward exec (Postgres, SSH)', () => {
  let cluster: PgCluster;
  let sshd: Sshd;
  let stack: WardStack;
  let home: string;
  let connect: ChildProcess | undefined;
  let printed = '';
  let localPort = 0;

  const env = (token = stack.userToken) => ({
    WARD_GATEWAY: stack.gateway.httpUrl,
    WARD_TOKEN: token,
    WARD_CONFIG_DIR: join(home, 'ward-config'),
  });
  const ward = (args: string[], input?: string | Buffer, token?: string) =>
    run(process.execPath, [WARD, ...args], { env: env(token), ...(input !== undefined ? { input } : {}) });
  const records = async (kind: string) => {
    await stack.gateway.store.audit.flush();
    return stack.gateway.store.audit.listRecords({ kind, limit: 10_000 });
  };

  /** The ssh/scp/sftp line `ward connect` printed, as argv, with batch-mode options put in front. */
  const printedCommand = (tool: 'ssh' | 'scp' | 'sftp'): string[] => {
    const line = printed.split('\n').find((l) => l.trim().startsWith(`${tool} `));
    assert.ok(line, `ward connect printed a ${tool} line:\n${printed}`);
    const words = line.trim().split(/\s+/);
    // -F /dev/null: no user config; BatchMode: never prompt. StrictHostKeyChecking is left at
    // yes: the printed options must make the host key check pass by themselves.
    return [
      '-F',
      '/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'LogLevel=ERROR',
      ...words.slice(1),
    ];
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'ward-connect-exec-'));
    sshd = await startSshd();
    cluster = await startPgCluster({
      users: [{ name: 'app', password: DB_PASSWORD, method: 'scram-sha-256' }],
      databases: ['app'],
    });
    await cluster.sql(`ALTER DATABASE app OWNER TO app; GRANT ALL ON SCHEMA public TO app;`);
    stack = await startStack({
      ssh: true,
      gatewayConnections: [
        { name: 'appdb', type: 'postgres', agent: 'e2e-agent' },
        { name: 'prod-ssh', type: 'ssh', agent: 'e2e-agent' },
        { name: 'llm', type: 'http', agent: 'e2e-agent' },
        // Configured on the gateway, served by no agent.
        { name: 'offline-pg', type: 'postgres', agent: 'e2e-agent' },
        { name: 'offline-ssh', type: 'ssh', agent: 'e2e-agent' },
      ],
      agentConnections: [
        pgConnection(cluster, DB_PASSWORD),
        {
          type: 'ssh',
          name: 'prod-ssh',
          host: sshd.host,
          port: sshd.port,
          user: sshd.user,
          privateKey: sshd.clientKey,
          hostKey: { fingerprint: sshd.hostKeyFingerprint },
        },
      ],
    });
    connect = spawn(process.execPath, [WARD, 'connect', 'prod-ssh', '--port', '0'], {
      env: { ...process.env, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    connect.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
    connect.stderr?.on('data', (d: Buffer) => (printed += d.toString()));
    await eventually(() => /Ctrl-C to stop/.test(printed), 15_000, 'ward connect to listen').catch((err) => {
      throw new Error(`${(err as Error).message}; it printed:\n${printed}`);
    });
    localPort = Number(/on 127\.0\.0\.1:(\d+)/.exec(printed)?.[1]);
    assert.ok(localPort > 0, printed);
  });

  after(async () => {
    connect?.kill('SIGINT');
    await stack?.stop();
    await cluster?.stop();
    await sshd?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  describe('ward connect <ssh connection>', () => {
    test("prints the gateway host key (the listener's) and files it in ward known_hosts under an alias", () => {
      const key = sshHostKey({ dataDir: stack.dataDir });
      // One host key for the direct listener and the connect path.
      assert.equal(stack.gateway.ssh?.hostKeyFingerprint, key.fingerprint);
      assert.ok(printed.includes(key.fingerprint), printed);
      const knownHosts = readFileSync(join(home, 'ward-config', 'known_hosts'), 'utf8');
      const alias = /HostKeyAlias=(\S+)/.exec(printed)?.[1];
      assert.ok(alias);
      assert.equal(knownHosts, `${alias} ${key.publicKey}\n`);
      assert.equal(/StrictHostKeyChecking=no/i.test(printed), false);
    });

    test('ssh with the printed line: stdout, stderr and exit status, recorded with identity and source', async () => {
      const r = await run('ssh', [...printedCommand('ssh'), 'echo out-$((6*7)); echo err-line >&2; exit 3']);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout.toString(), 'out-42\n');
      assert.match(r.stderr, /err-line/);
      const session = (await records('ssh.session')).find((x) =>
        String(x.data['command']).startsWith('echo out-$((6*7))'),
      );
      assert.ok(session, 'the session was recorded');
      assert.equal(session.identity, 'user:bob');
      assert.equal(session.connection, 'prod-ssh');
      assert.equal(session.data['exitCode'], 3);
      assert.match(session.source ?? '', /^127\.0\.0\.1:\d+$/);
    });

    test('the SSH user name is the remote login: <connection> means the configured user, a bad name is refused', async () => {
      const args = printedCommand('ssh');
      const at = args.findIndex((a) => a.endsWith('@127.0.0.1'));
      const as = (login: string) => args.map((a, i) => (i === at ? `${login}@127.0.0.1` : a));
      const me = await run('ssh', [...as(sshd.user), 'whoami']);
      assert.equal(me.code, 0, me.stderr);
      assert.equal(me.stdout.toString().trim(), sshd.user);
      const bad = await run('ssh', [...as('no/such'), 'true']);
      assert.equal(bad.code, 255);
      assert.match(bad.stderr, /ERR_SSH_BAD_USERNAME/);
    });

    test('a wrong host key in the known_hosts file stops OpenSSH (strict checking holds)', async () => {
      const args = printedCommand('ssh');
      const file = join(home, 'wrong_known_hosts');
      const alias = /HostKeyAlias=(\S+)/.exec(printed)?.[1];
      writeFileSync(file, `${alias} ${sshd.hostPublicKey}\n`);
      const r = await run('ssh', [
        ...args.map((a) => (a.startsWith('UserKnownHostsFile=') ? `UserKnownHostsFile=${file}` : a)),
        'true',
      ]);
      assert.equal(r.code, 255);
      assert.match(r.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    });

    test('scp both ways is byte-exact (SFTP-based and legacy -O)', async () => {
      const data = randomBytes(1024 * 1024 + 17);
      const local = join(home, 'up.bin');
      writeFileSync(local, data);
      const remote = join(sshd.dir, 'scp-target.bin');
      const args = printedCommand('scp');
      const target = args.findIndex((a) => a.endsWith(':/tmp/'));
      const dest = args[target]?.replace(':/tmp/', `:${remote}`) ?? '';
      const base = args.filter((_, i) => i !== target && args[i] !== 'FILE');
      for (const legacy of [[], ['-O']]) {
        rmSync(remote, { force: true });
        const up = await run('scp', [...legacy, ...base, local, dest]);
        assert.equal(up.code, 0, up.stderr);
        assert.equal(sha256(readFileSync(remote)), sha256(data));
        const back = join(home, `down${legacy.length}.bin`);
        const down = await run('scp', [...legacy, ...base, dest, back]);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(sha256(readFileSync(back)), sha256(data));
      }
    });

    test('sftp with the printed line: put, get, ls; file operations recorded', async () => {
      const data = randomBytes(300_000);
      const local = join(home, 'sftp-up.bin');
      writeFileSync(local, data);
      const remote = join(sshd.dir, 'sftp-target.bin');
      const back = join(home, 'sftp-down.bin');
      const batch = join(home, 'batch');
      writeFileSync(batch, `put ${local} ${remote}\nget ${remote} ${back}\nls ${sshd.dir}\n`);
      const r = await run('sftp', ['-b', batch, ...printedCommand('sftp')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(sha256(readFileSync(back)), sha256(data));
      const ops = (await records('ssh.sftp')).filter((x) => JSON.stringify(x.data).includes('sftp-target.bin'));
      assert.ok(ops.length > 0, 'sftp operations recorded');
      assert.ok(ops.every((x) => x.identity === 'user:bob' && x.connection === 'prod-ssh'));
    });
  });

  describe('ward exec <postgres connection>', () => {
    test('multi-statement SQL as an argument: table output, tags, recorded', async () => {
      const r = await ward([
        'exec',
        'appdb',
        "create table fruit(id int, name text); insert into fruit values (1, 'apple'), (2, null); select id, name from fruit order by id",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout.toString(),
        'CREATE TABLE\nINSERT 0 2\n id | name\n----+-------\n 1  | apple\n 2  |\n(2 rows)\n',
      );
      const q = (await records('pg.query')).find((x) => String(x.data['sql']).startsWith('create table fruit'));
      assert.ok(q, 'recorded');
      assert.equal(q.identity, 'user:bob');
      assert.equal(q.connection, 'appdb');
      assert.deepEqual(q.data['tags'], ['CREATE TABLE', 'INSERT 0 2', 'SELECT 2']);
    });

    test('SQL on stdin, csv and json formats; tags and NOTICEs on stderr', async () => {
      const csv = await ward(
        ['exec', 'appdb', '--format', 'csv'],
        "do $$ begin raise notice 'hello from plpgsql'; end $$;\nselect 1 as a, 'x,y' as b, null as c;\n",
      );
      assert.equal(csv.code, 0, csv.stderr);
      assert.equal(csv.stdout.toString(), 'a,b,c\r\n1,"x,y",\r\n');
      assert.match(csv.stderr, /NOTICE: {2}00000: hello from plpgsql/);
      assert.match(csv.stderr, /^SELECT 1$/m);
      const json = await ward(['exec', 'appdb', '-f', 'json', 'select id, name from fruit order by id']);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(
        json.stdout
          .toString()
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
        [
          { id: '1', name: 'apple' },
          { id: '2', name: null },
        ],
      );
    });

    test('an SQL error: SQLSTATE on stderr, exit 1; earlier results printed, the implicit transaction rolled back', async () => {
      const r = await ward([
        'exec',
        'appdb',
        "select 'before' as step; insert into fruit values (3, 'pear'); select * from no_such_table",
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stdout.toString(), /before/);
      assert.match(r.stderr, /ERROR: {2}42P01: relation "no_such_table" does not exist/);
      // One simple-protocol query is one implicit transaction (as with psql -c): the insert is gone.
      const check = await ward(['exec', 'appdb', '-f', 'csv', 'select count(*) from fruit where id = 3']);
      assert.equal(check.stdout.toString(), 'count\r\n0\r\n');
      const q = (await records('pg.query')).find((x) => String(x.data['sql']).includes('no_such_table'));
      assert.ok(q, 'the failed query is recorded');
    });

    test('bad token → exit 3 with the code; unknown connection → 3; HTTP connection and no SQL → 2', async () => {
      const deniedBefore = (await records('auth.denied')).length;
      const bad = await ward(['exec', 'appdb', 'select 1'], undefined, 'wgt_not-a-real-token');
      assert.equal(bad.code, 3);
      assert.match(bad.stderr, /ERR_AUTH_TOKEN_INVALID/);
      assert.equal(bad.stderr.includes('wgt_not-a-real-token'), false);
      const denied = (await records('auth.denied')).slice(deniedBefore);
      assert.equal(denied.length, 1, 'the refusal is recorded once');
      assert.equal(denied[0]?.data['code'], 'ERR_AUTH_TOKEN_INVALID');
      assert.equal(JSON.stringify(denied).includes('wgt_not-a-real-token'), false);
      const unknown = await ward(['exec', 'nope', 'select 1']);
      assert.equal(unknown.code, 3);
      assert.match(unknown.stderr, /ERR_CONN_UNKNOWN/);
      const http = await ward(['exec', 'llm', 'select 1']);
      assert.equal(http.code, 2);
      assert.match(http.stderr, /ERR_CONN_TYPE_MISMATCH/);
      assert.match(http.stderr, /\/c\/llm\//);
      const empty = await ward(['exec', 'appdb'], '  \n');
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /ERR_CLI_NO_INPUT/);
      const format = await ward(['exec', 'appdb', '--format', 'xml', 'select 1']);
      assert.equal(format.code, 2);
    });
  });

  describe('access', () => {
    test('without a grant: exit 3 with ERR_ACCESS_NO_GRANT for SQL and SSH, each refusal recorded', async () => {
      const carol = await stack.gateway.tokens.issue({ subject: 'carol', roles: ['user'], ttlSeconds: 600 });
      const before = (await records('access.deny')).length;
      const pg = await ward(['exec', 'appdb', 'select 1'], undefined, carol);
      assert.equal(pg.code, 3, pg.stderr);
      assert.match(pg.stderr, /ERR_ACCESS_NO_GRANT/);
      const ssh = await ward(['exec', 'prod-ssh', 'true'], undefined, carol);
      assert.equal(ssh.code, 3, ssh.stderr);
      assert.match(ssh.stderr, /ERR_ACCESS_NO_GRANT/);
      const denied = (await records('access.deny')).slice(before);
      assert.deepEqual(
        denied.map((r) => [r.identity, r.connection]),
        [
          ['user:carol', 'appdb'],
          ['user:carol', 'prod-ssh'],
        ],
      );
    });
  });

  describe('connections no agent serves', () => {
    test('Postgres: exit 3 with the gateway code; SSH: the gateway ends the command with the code and 255', async () => {
      const pg = await ward(['exec', 'offline-pg', 'select 1']);
      assert.equal(pg.code, 3, pg.stderr);
      assert.match(pg.stderr, /ERR_CLI_CONNECT_FAILED/);
      assert.match(pg.stderr, /ERR_AGENT_OFFLINE/);
      // SSH logs in first (the session opens only with the exec request): as with ssh, a
      // refusal after login is "ward: ERR_…" on stderr and exit status 255.
      const ssh = await ward(['exec', 'offline-ssh', 'true']);
      assert.equal(ssh.code, 255);
      assert.match(ssh.stderr, /ERR_AGENT_OFFLINE/);
    });
  });

  describe('ward exec <ssh connection>', () => {
    test('stdout and stderr apart, the remote exit status, recorded', async () => {
      const r = await ward(['exec', 'prod-ssh', 'echo to-out; echo to-err >&2; exit 7']);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(r.stdout.toString(), 'to-out\n');
      assert.equal(r.stderr, 'to-err\n');
      const session = (await records('ssh.session')).find(
        (x) => x.data['command'] === 'echo to-out; echo to-err >&2; exit 7',
      );
      assert.ok(session);
      assert.equal(session.identity, 'user:bob');
      assert.equal(session.data['exitCode'], 7);
    });

    test('piped stdin reaches the command byte-exact, then EOF', async () => {
      const data = randomBytes(512 * 1024);
      const r = await ward(['exec', 'prod-ssh', 'sha256sum'], data);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString().split(' ')[0], sha256(data));
      const words = await ward(['exec', 'prod-ssh', '--', 'wc', '-l'], 'a\nb\nc\n');
      assert.equal(words.stdout.toString().trim(), '3');
    });

    test('a signal ends the command: exit 128+n', async () => {
      const r = await ward(['exec', 'prod-ssh', 'kill -TERM $$']);
      assert.equal(r.code, 128 + 15, r.stderr);
    });

    test('a pty only with -t: none when piped, one under a terminal', async () => {
      const plain = await ward(['exec', 'prod-ssh', 'tty']);
      assert.equal(plain.code, 1);
      assert.match(plain.stdout.toString(), /not a tty/);
      // script(1) gives ward a terminal, as a user's shell would.
      const command = [process.execPath, WARD, 'exec', '-t', 'prod-ssh', 'tty; echo rows=$(tput lines)']
        .map((w) => `'${w.replace(/'/g, `'\\''`)}'`)
        .join(' ');
      const withPty = await run('script', ['-qec', command, '/dev/null'], {
        env: { ...env(), LINES: '33', COLUMNS: '90' },
      });
      assert.equal(withPty.code, 0, withPty.stderr);
      assert.match(withPty.stdout.toString(), /\/dev\/pts\/\d+/);
    });

    test('a bad token is refused before SSH starts (exit 3)', async () => {
      const r = await ward(['exec', 'prod-ssh', 'true'], undefined, 'wgt_bad');
      assert.equal(r.code, 3);
      assert.match(r.stderr, /ERR_AUTH_TOKEN_INVALID/);
    });
  });

  test('tokens and the database password appear in no log, store or known_hosts file', async () => {
    await stack.gateway.store.audit.flush();
    for (const file of [join(stack.dataDir, 'ward.db'), stack.logFile, join(home, 'ward-config', 'known_hosts')]) {
      const bytes = readFileSync(file);
      for (const secret of [stack.userToken, DB_PASSWORD])
        assert.equal(bytes.includes(secret), false, `${file} holds a secret`);
    }
  });
});
