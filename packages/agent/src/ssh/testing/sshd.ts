/**
 * A throw-away OpenSSH server for tests: `/usr/sbin/sshd -D -e` with its own ed25519 host key,
 * config, authorized_keys and known_hosts in a fresh temp dir, listening on a free 127.0.0.1
 * port. Public-key login only, with a freshly generated client key. It logs in as the **current
 * OS user** (root when tests run as root: `PermitRootLogin yes`), so commands run with the test
 * process's own rights. Fails loudly when sshd or ssh-keygen is missing: these tests are never
 * skipped (`.ci/run` installs openssh-server).
 *
 * @example
 * const sshd = await startSshd();
 * try {
 *   serveSshSession(channel, start, {
 *     name: 'test', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: sshd.clientKey,
 *     hostKey: { fingerprint: sshd.hostKeyFingerprint },
 *   });
 * } finally { await sshd.stop(); }
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const SSHD_PATH = '/usr/sbin/sshd';

export interface SshdOptions {
  /** Extra sshd_config lines, appended after the defaults (e.g. `MaxSessions 20`). */
  config?: string[];
  /** More public keys (OpenSSH one-line form) allowed to log in, beside the generated client key. */
  authorizedKeys?: string[];
}

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  /** The listening sshd's process id. */
  pid: number;
  /** The login: the current OS user. */
  user: string;
  /** The client's private key, OpenSSH format (`-----BEGIN OPENSSH PRIVATE KEY-----`). */
  clientKey: string;
  clientKeyPath: string;
  /** The client's public key line (`ssh-ed25519 AAAA… comment`). */
  clientPublicKey: string;
  /** `SHA256:…` of the host key, as `ssh-keygen -l -E sha256` prints it. */
  hostKeyFingerprint: string;
  /** The host's public key line (`ssh-ed25519 AAAA… comment`). */
  hostPublicKey: string;
  /** A known_hosts file with one plain `[127.0.0.1]:port ssh-ed25519 …` line. */
  knownHostsPath: string;
  /** The temp dir holding keys, config and known_hosts; removed by `stop()`. */
  dir: string;
  /** What sshd has logged so far (LogLevel VERBOSE, its stderr). */
  log(): string;
  /** Resolves with the log once it matches `pattern`; rejects if sshd exits first. */
  waitForLog(pattern: RegExp): Promise<string>;
  /** SIGTERM to sshd and its connection processes, SIGKILL after 5 s, temp dir removed. Idempotent. */
  stop(): Promise<void>;
}

/** Log text kept in memory; a test that needs more reads it as it goes. */
const MAX_LOG_CHARS = 4 * 1024 * 1024;

function findSshKeygen(): string {
  const fromPath = spawnSync('sh', ['-c', 'command -v ssh-keygen'], { encoding: 'utf8' }).stdout.trim();
  for (const candidate of [fromPath, '/usr/bin/ssh-keygen']) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  throw new Error('startSshd: ssh-keygen not found. Install OpenSSH (apt-get install openssh-client openssh-server).');
}

function checkSshd(): void {
  try {
    accessSync(SSHD_PATH, constants.X_OK);
  } catch {
    throw new Error(`startSshd: ${SSHD_PATH} not found. Install OpenSSH's server (apt-get install openssh-server).`);
  }
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

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

/** Processes below `root` (Linux /proc): sshd's per-connection children and their shells. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {}
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {}
  }
}

const running = new Set<() => void>();
process.once('exit', () => {
  // A test process that dies without stop() must not leave a server behind.
  for (const stop of running) stop();
});

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Starts sshd; see the module comment. Always `await sshd.stop()` (in `after`/`finally`). */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  checkSshd();
  const keygen = findSshKeygen();
  // sshd's privilege separation directory; Debian creates it only when the service starts.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'ward-sshd-'));
  const f = (name: string) => join(dir, name);
  const user = userInfo().username;
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let logText = '';
  let exited = false;
  const logWaiters = new Set<() => void>();
  let stopped = false;

  const stopWatchdog = () => {
    if (watchdog && watchdog.exitCode === null && watchdog.pid !== undefined) {
      try {
        process.kill(-watchdog.pid, 'SIGKILL');
      } catch {}
    }
  };
  const stopSync = () => {
    if (child?.pid !== undefined && !exited) signal([child.pid, ...descendants(child.pid)], 'SIGKILL');
    stopped = true;
    stopWatchdog();
    spawnSync('rm', ['-rf', dir]);
  };
  running.add(stopSync);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    running.delete(stopSync);
    stopWatchdog();
    const proc = child;
    try {
      if (proc?.pid !== undefined && !exited) {
        // Listed before the listener goes: its orphans would be re-parented out of reach.
        const below = descendants(proc.pid);
        const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        signal([proc.pid, ...below], 'SIGTERM');
        const escalate = setTimeout(() => {
          if (proc.pid !== undefined) signal([proc.pid, ...descendants(proc.pid), ...below], 'SIGKILL');
        }, 5_000);
        await gone;
        clearTimeout(escalate);
        // Connection processes that outlived the listener's SIGTERM.
        signal(below, 'SIGKILL');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  try {
    await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'ward-test-host', '-f', f('host_ed25519')]);
    await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'ward-test-client', '-f', f('client_ed25519')]);
    const clientKey = await readFile(f('client_ed25519'), 'utf8');
    const clientPublicKey = (await readFile(f('client_ed25519.pub'), 'utf8')).trim();
    const hostPublicKey = (await readFile(f('host_ed25519.pub'), 'utf8')).trim();
    const listing = await run(keygen, ['-l', '-E', 'sha256', '-f', f('host_ed25519.pub')]);
    const hostKeyFingerprint = /SHA256:[A-Za-z0-9+/]+/.exec(listing)?.[0];
    if (!hostKeyFingerprint) throw new Error(`startSshd: unexpected ssh-keygen -l output: ${listing}`);
    await writeFile(f('authorized_keys'), `${[clientPublicKey, ...(options.authorizedKeys ?? [])].join('\n')}\n`);
    await chmod(f('authorized_keys'), 0o600);

    let port = 0;
    for (let attempt = 0; attempt < 5; attempt++) {
      port = await freePort();
      const config = [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${f('host_ed25519')}`,
        `PidFile ${f('sshd.pid')}`,
        `AuthorizedKeysFile ${f('authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PermitRootLogin yes',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'Subsystem sftp internal-sftp',
        'AcceptEnv LANG LC_* WARD_TEST_*',
        'LogLevel VERBOSE',
        'UseDNS no',
        'PrintMotd no',
        'PrintLastLog no',
        // Tests open many connections at once.
        'MaxStartups 100',
        'MaxSessions 100',
        ...(options.config ?? []),
      ];
      await writeFile(f('sshd_config'), `${config.join('\n')}\n`);
      logText = '';
      exited = false;
      const proc = spawn(SSHD_PATH, ['-D', '-e', '-f', f('sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (text: string) => {
        logText += text;
        if (logText.length > MAX_LOG_CHARS) logText = logText.slice(-MAX_LOG_CHARS);
        for (const wake of logWaiters) wake();
      });
      proc.once('exit', () => {
        exited = true;
        for (const wake of logWaiters) wake();
      });
      const listening = await new Promise<boolean>((resolve) => {
        const check = () => {
          if (logText.includes(`Server listening on 127.0.0.1 port ${port}`)) {
            logWaiters.delete(check);
            resolve(true);
          } else if (exited) {
            logWaiters.delete(check);
            resolve(false);
          }
        };
        logWaiters.add(check);
        check();
      });
      if (listening) break;
      // A free port can be taken between probing and binding; try another.
      if (!/Address already in use|Cannot bind/i.test(logText)) {
        throw new Error(`startSshd: sshd did not start:\n${logText}`);
      }
      child = undefined;
    }
    const proc = child;
    if (!proc?.pid) throw new Error(`startSshd: sshd did not start after 5 ports:\n${logText}`);

    // The 'exit' hook does not run when the test process is killed (runner timeout, SIGKILL);
    // a detached watchdog polls for the parent and stops sshd once it is gone. Polling once a
    // second is the only portable way to notice a parent's death from a shell.
    watchdog = spawn(
      'sh',
      [
        '-c',
        `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -KILL ${proc.pid} 2>/dev/null; rm -rf ${shellQuote(dir)}`,
      ],
      { detached: true, stdio: 'ignore' },
    );
    watchdog.unref();

    const [keyType, keyBase64] = hostPublicKey.split(/\s+/);
    await writeFile(f('known_hosts'), `[127.0.0.1]:${port} ${keyType} ${keyBase64}\n`);

    return {
      host: '127.0.0.1',
      port,
      pid: proc.pid,
      user,
      clientKey,
      clientKeyPath: f('client_ed25519'),
      clientPublicKey,
      hostKeyFingerprint,
      hostPublicKey,
      knownHostsPath: f('known_hosts'),
      dir,
      log: () => logText,
      waitForLog: (pattern) =>
        new Promise((resolve, reject) => {
          const check = () => {
            if (pattern.test(logText)) {
              logWaiters.delete(check);
              resolve(logText);
            } else if (exited) {
              logWaiters.delete(check);
              reject(new Error(`sshd exited before its log matched ${pattern}:\n${logText}`));
            }
          };
          logWaiters.add(check);
          check();
        }),
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
