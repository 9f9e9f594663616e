/**
 * Debian's PgBouncer in front of a benchmark cluster: transaction pooling, 20 server
 * connections, trust for its clients (loopback only), run as the `postgres` user from its own
 * temp config on a free port.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './proc.js';

export interface PgBouncer {
  port: number;
  /** The pgbouncer process itself (not the runuser wrapper). */
  pid: number;
  stop(): Promise<void>;
}

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

/** The pgbouncer binary, or a clear error saying how to install it. */
export function findPgBouncer(): string {
  const fromPath = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).stdout.trim();
  for (const candidate of [fromPath, ...CANDIDATES]) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new Error(
    'pgbouncer is not installed: run `apt-get install -y pgbouncer` (Debian) and start the benchmark again',
  );
}

export async function startPgBouncer(options: {
  backendPort: number;
  database: string;
  user: string;
  password: string;
}): Promise<PgBouncer> {
  const bin = findPgBouncer();
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-pgbouncer-'));
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()) : -1;
  const gid = asRoot ? Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) : -1;
  const port = await freePort();
  const pidFile = join(dir, 'pgbouncer.pid');
  const q = (s: string) => `'${s.replaceAll("'", "\\'")}'`;
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${options.database} = host=127.0.0.1 port=${options.backendPort} dbname=${options.database} user=${options.user} password=${q(options.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'default_pool_size = 20',
      'max_client_conn = 200',
      `pidfile = ${pidFile}`,
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      // One line per connection would be the only cost it logs; keep the log for failures only.
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  // trust still wants the user listed.
  writeFileSync(join(dir, 'userlist.txt'), `"${options.user}" ""\n`);
  if (asRoot) for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) chownSync(join(dir, f), uid, gid);

  const argv = asRoot
    ? ['runuser', '-u', 'postgres', '--', bin, join(dir, 'pgbouncer.ini')]
    : [bin, join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const log = () => {
    try {
      return readFileSync(join(dir, 'pgbouncer.log'), 'utf8');
    } catch {
      return '';
    }
  };
  try {
    await Promise.race([
      waitForPort(port, 15_000, 'pgbouncer'),
      once(child, 'exit').then(() => {
        throw new Error(`pgbouncer exited at start:\n${stderr}${log()}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return {
    port,
    pid,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        try {
          process.kill(pid, 'SIGTERM');
        } catch {}
        const timer = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }, 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
