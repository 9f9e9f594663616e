import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const DEMO_SSHD_PATH = '/usr/sbin/sshd';

export interface DemoSshd {
  host: string;
  port: number;
  /** The login: the OS user running the demo (sshd not run as root can log in only as itself). */
  user: string;
  /** The private key the demo's agent logs in with (OpenSSH format). */
  privateKey: string;
  /** `SHA256:…` of the host key, for the agent to pin. */
  hostKeyFingerprint: string;
  close(): Promise<void>;
}

/** Why the demo runs without SSH, and how to get it, when sshd is not installed. */
export function demoSshdMissing(): string | undefined {
  try {
    accessSync(DEMO_SSHD_PATH, constants.X_OK);
    accessSync('/usr/bin/ssh-keygen', constants.X_OK);
    return undefined;
  } catch {
    return `no OpenSSH server at ${DEMO_SSHD_PATH}: install it (Debian/Ubuntu: sudo apt-get install openssh-server) and run ward demo again to get an SSH connection too`;
  }
}

function keygen(path: string, comment: string): void {
  if (existsSync(path)) return;
  const r = spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

function fingerprint(publicKeyPath: string): string {
  const r = spawnSync('/usr/bin/ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyPath], { encoding: 'utf8' });
  const match = /(SHA256:[A-Za-z0-9+/]+)/.exec(r.stdout);
  if (!match?.[1]) throw new Error(`cannot read the host key fingerprint: ${r.stderr}`);
  return match[1];
}

async function freePort(host: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepting(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * A real OpenSSH server on loopback for `ward demo`, its state in `dir` (kept between runs):
 * a host key, the key the demo agent logs in with (the only authorized key), and a config
 * that allows nothing but that key. It runs as the current user and logs in as that user.
 */
export async function startDemoSshd(options: { dir: string; host?: string }): Promise<DemoSshd> {
  const host = options.host ?? '127.0.0.1';
  const dir = options.dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // sshd refuses to start without its privilege-separation directory (only root can make it).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  keygen(join(dir, 'host_ed25519'), 'ward demo host');
  keygen(join(dir, 'agent_ed25519'), 'ward demo agent');
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'agent_ed25519.pub')), { mode: 0o600 });
  const port = await freePort(host);
  const user = userInfo().username;
  const config = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `AllowUsers ${user}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    'AcceptEnv LANG LC_*',
    'LogLevel INFO',
  ];
  writeFileSync(join(dir, 'sshd_config'), `${config.join('\n')}\n`);
  const child: ChildProcess = spawn(DEMO_SSHD_PATH, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-16_384);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await accepting(host, port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the demo sshd did not start: ${log.trim() || 'no output'}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    port,
    user,
    privateKey: readFileSync(join(dir, 'agent_ed25519'), 'utf8'),
    hostKeyFingerprint: fingerprint(join(dir, 'host_ed25519.pub')),
    close: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
