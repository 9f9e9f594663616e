/**
 * A throw-away PostgreSQL cluster for tests: initdb in a fresh temp dir, one server on a free
 * 127.0.0.1 port, roles with the authentication method each test needs, optional TLS with a
 * freshly minted CA. Runs initdb/postgres as the `postgres` OS user when the tests run as root.
 * Fails loudly when PostgreSQL is not installed: these tests are never skipped.
 *
 * @example
 * const pg = await startPgCluster({ users: [{ name: 'alice', password: 'pw', method: 'scram-sha-256' }], ssl: true });
 * try { assert.equal(await pg.sql('select 1'), '1'); } finally { await pg.stop(); }
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type PgAuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface PgUser {
  name: string;
  /** Omit for `trust`. */
  password?: string;
  method: PgAuthMethod;
  /** Extra role options, e.g. 'SUPERUSER'. */
  options?: string;
}

export interface PgClusterOptions {
  users?: PgUser[];
  /** Serve TLS with a certificate for localhost/127.0.0.1 signed by a fresh CA (`ca` below). */
  ssl?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** Databases to create (owned by `postgres`, CONNECT granted to PUBLIC). */
  databases?: string[];
}

export interface PgCluster {
  host: '127.0.0.1';
  port: number;
  /** The temp dir holding data, socket, log and certificates. */
  dir: string;
  /** PEM of the CA that signed the server certificate (when `ssl`). */
  ca?: Buffer;
  /** Runs SQL as the `postgres` superuser over the Unix socket; returns psql's unaligned output. */
  sql(query: string): Promise<string>;
  /** The server log so far (for failure messages). */
  log(): Promise<string>;
  /** Stops the server (`pg_ctl -m immediate`) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const BIN_CANDIDATES = [
  '/usr/local/bin',
  '/usr/lib/postgresql/17/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/15/bin',
];

function findBinDir(): string {
  const fromPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  for (const candidate of [fromPath, ...BIN_CANDIDATES.map((d) => join(d, 'initdb'))]) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      // Debian links /usr/local/bin/initdb to the versioned dir, where pg_ctl and psql live too.
      return dirname(realpathSync(candidate));
    } catch {}
  }
  throw new Error(
    'startPgCluster: initdb not found (PATH, /usr/lib/postgresql/*/bin). Install PostgreSQL server binaries (apt-get install postgresql).',
  );
}

const running = new Set<() => void>();
process.once('exit', () => {
  // A test process that dies without stop() must not leave a server behind.
  for (const stop of running) stop();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface RunAs {
  uid: number;
  gid: number;
  /** Prefix for commands that must run as the cluster owner. */
  wrap(argv: string[]): string[];
}

function runAs(): RunAs {
  if (process.getuid?.() !== 0) {
    return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, wrap: (argv) => argv };
  }
  // initdb refuses to run as root.
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid, wrap: (argv) => ['runuser', '-u', 'postgres', '--', ...argv] };
}

function run(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${argv.join(' ')} failed: ${stderr || err.message}`, { cause: err }));
        else resolve(stdout);
      },
    );
  });
}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
const quoteLiteral = (s: string) => `'${s.replaceAll("'", "''")}'`;
const quoteIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;

async function makeCertificates(dir: string, who: RunAs): Promise<Buffer> {
  const f = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run([
    'openssl',
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=ward test CA',
  ]);
  await run([
    'openssl',
    'req',
    '-new',
    ...ec,
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(f('san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await run([
    'openssl',
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    f('san.ext'),
    '-out',
    f('server.crt'),
  ]);
  // Postgres refuses a key readable by others.
  await chown(f('server.key'), who.uid, who.gid);
  await chown(f('server.crt'), who.uid, who.gid);
  await run(['chmod', '600', f('server.key')]);
  return readFile(f('ca.crt'));
}

/** Starts a cluster; see the module comment. Always `await cluster.stop()` (in `after`/`finally`). */
export async function startPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const bin = findBinDir();
  const who = runAs();
  const dir = await mkdtemp(join(tmpdir(), 'ward-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  let started = false;
  let stopped = false;

  const stopSync = () => {
    if (started && !stopped) {
      const [file, ...args] = who.wrap([join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']) as [
        string,
        ...string[],
      ];
      spawnSync(file, args);
    }
    stopped = true;
    stopWatchdog();
    spawnSync('rm', ['-rf', dir]);
  };
  running.add(stopSync);

  // The 'exit' hook does not run when the test process is killed (a runner timeout, SIGKILL),
  // so a detached watchdog polls for the parent and stops the server once it is gone. Polling
  // once a second is the only portable way to notice a parent's death from a shell.
  const pgCtlStop = who
    .wrap([join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'])
    .map(shellQuote)
    .join(' ');
  const watchdog: ChildProcess = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${pgCtlStop} >/dev/null 2>&1; rm -rf ${shellQuote(dir)}`,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  const stopWatchdog = () => {
    if (watchdog.exitCode === null && watchdog.pid !== undefined) {
      try {
        process.kill(-watchdog.pid, 'SIGKILL');
      } catch {}
    }
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    running.delete(stopSync);
    stopWatchdog();
    try {
      if (started) await run(who.wrap([join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop']));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    await chown(dir, who.uid, who.gid);
    await run(
      who.wrap([
        join(bin, 'initdb'),
        '-D',
        data,
        '-U',
        'postgres',
        '--auth=trust',
        '-E',
        'UTF8',
        '--no-sync',
        '--no-instructions',
      ]),
      { cwd: dir },
    );
    const users = options.users ?? [];
    const hba = [
      'local all postgres trust',
      ...users.map((u) => `host all ${quoteIdent(u.name)} 127.0.0.1/32 ${u.method}`),
      'host all all 127.0.0.1/32 scram-sha-256',
    ];
    await writeFile(join(data, 'pg_hba.conf'), `${hba.join('\n')}\n`);
    await chown(join(data, 'pg_hba.conf'), who.uid, who.gid);

    const ca = options.ssl ? await makeCertificates(dir, who) : undefined;
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dir,
      password_encryption: 'scram-sha-256',
      fsync: 'off',
      ...(options.ssl
        ? { ssl: 'on', ssl_cert_file: join(dir, 'server.crt'), ssl_key_file: join(dir, 'server.key') }
        : {}),
      ...options.settings,
    };

    let port = 0;
    let lastError: unknown;
    // A free port can be taken between probing and binding; try a few.
    for (let i = 0; i < 5 && !started; i++) {
      port = await freePort();
      const opts = Object.entries({ ...settings, port: String(port) })
        .map(([k, v]) => `-c ${k}=${quoteLiteral(v)}`)
        .join(' ');
      try {
        await run(who.wrap([join(bin, 'pg_ctl'), '-D', data, '-l', logFile, '-o', opts, '-w', '-t', '60', 'start']));
        started = true;
      } catch (err) {
        lastError = err;
        const log = await readFile(logFile, 'utf8').catch(() => '');
        if (!/could not bind|Address already in use/i.test(log)) break;
      }
    }
    if (!started) {
      const log = await readFile(logFile, 'utf8').catch(() => '(no log)');
      throw new Error(`startPgCluster: the server did not start:\n${log}`, { cause: lastError });
    }
    const isReady = spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', String(port), '-t', '30'], { encoding: 'utf8' });
    if (isReady.status !== 0) throw new Error(`startPgCluster: pg_isready: ${isReady.stdout}${isReady.stderr}`);

    const psql = (query: string) =>
      run(
        who.wrap([
          join(bin, 'psql'),
          '-X',
          '-q',
          '-h',
          dir,
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-At',
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          query,
        ]),
      );
    for (const u of users) {
      const pw = u.password === undefined ? '' : ` PASSWORD ${quoteLiteral(u.password)}`;
      // pg_hba's md5 quietly upgrades to SCRAM when the stored verifier is SCRAM, so an md5
      // user must be stored as md5 to exercise that path.
      const encryption = u.method === 'md5' ? "SET password_encryption = 'md5'; " : '';
      await psql(`${encryption}CREATE ROLE ${quoteIdent(u.name)} LOGIN${pw} ${u.options ?? ''}`);
    }
    for (const db of options.databases ?? []) await psql(`CREATE DATABASE ${quoteIdent(db)}`);

    return {
      host: '127.0.0.1',
      port,
      dir,
      ...(ca ? { ca } : {}),
      sql: (query) => psql(query).then((out) => out.trimEnd()),
      log: () => readFile(logFile, 'utf8').catch(() => ''),
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
