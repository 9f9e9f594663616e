import net, { type AddressInfo } from 'node:net';
import { PgCodec } from '@ward/gateway';
import { toWardError, WardError } from '@ward/protocol';
import type { Command } from 'commander';
import type { ApiTarget } from '../api-client.js';
import { resolveTarget } from '../api-client.js';
import { findConnection, openConnectStream } from './connect-stream.js';
import { fetchHostKey, hostKeyOptions, pinHostKey } from './ssh-known-hosts.js';

const DEFAULT_PORTS: Record<string, number> = { postgres: 5433, ssh: 2222 };
/** Without --port, the first free port from the default on, this many tries. */
const PORT_TRIES = 20;

/**
 * Carries one local TCP connection to the gateway over a WebSocket that carries the user's
 * token in its handshake. Backpressure flows through `pipe` both ways.
 */
function carry(local: net.Socket, target: ApiTarget, name: string, type: string, log: (line: string) => void): void {
  local.setNoDelay(true);
  local.pause();
  local.on('error', () => local.destroy());
  openConnectStream(target, name).then(
    (remote) => {
      remote.on('error', () => local.destroy());
      local.on('error', () => remote.destroy());
      local.on('close', () => remote.destroy());
      local.pipe(remote).pipe(local);
      local.resume();
    },
    (err) => {
      const error = toWardError(err);
      log(`ward connect: ${error.code}: ${error.message}`);
      // psql shows a FATAL ErrorResponse as the reason the connection failed; an SSH client
      // sees the connection close before the banner (the reason is on ward's stderr).
      if (type === 'postgres' && !local.destroyed) local.end(PgCodec.BackendSerializer.wardError(error, 'FATAL'));
      else local.destroy();
    },
  );
}

function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Single-quotes a word for a POSIX shell when it needs it, so printed commands paste as they are. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./=:@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .summary('A local port for a Postgres (5433) or SSH (2222) connection, carried to the gateway as you')
    .description(
      [
        'Open a local port for a Postgres or SSH connection, carried to the gateway over a WebSocket as you: no database password or SSH key on this machine, the token in the WebSocket handshake is your login. Without --port it takes the first free port from 5433 (Postgres) or 2222 (SSH).',
        '',
        "SSH: the gateway's host key, fetched over the authenticated API, is filed in <config dir>/known_hosts under an alias, and the printed ssh/scp/sftp lines check it strictly (-o UserKnownHostsFile=… -o HostKeyAlias=…). The SSH user name is the remote login: the connection's name means the agent's configured user, any other login name is passed on.",
        '',
        'Examples:',
        '  ward connect demo-pg            # then: psql -h 127.0.0.1 -p 5433 -U any',
        '  ward connect demo-ssh           # then: the printed ssh -p 2222 … / scp -P 2222 … / sftp -P 2222 …',
      ].join('\n'),
    )
    .argument('<connection>', 'connection name (see `ward connections`)')
    .option(
      '-p, --port <port>',
      'local port (default: first free from 5433 for Postgres, 2222 for SSH; 0 picks any free one)',
    )
    .option('--host <host>', 'local address to listen on', '127.0.0.1')
    .option('--gateway <url>', 'gateway URL (default: WARD_GATEWAY or the saved login)')
    .action(async (name: string, opts: { port?: string; host: string; gateway?: string }) => {
      const target = resolveTarget(opts);
      const connection = await findConnection(target, name);
      const explicit = opts.port !== undefined;
      const first = explicit ? Number(opts.port) : (DEFAULT_PORTS[connection.type] ?? 0);
      if (!Number.isInteger(first) || first < 0 || first > 65535)
        throw new WardError('ERR_CLI_BAD_OPTION', 'invalid_argument', `--port must be 0–65535, got ${opts.port}`);
      const pinned = connection.type === 'ssh' ? pinHostKey(target, await fetchHostKey(target)) : undefined;
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const server = net.createServer((local) => carry(local, target, name, connection.type, log));
      for (let port = first, tries = explicit || first === 0 ? 1 : PORT_TRIES; ; port++, tries--) {
        try {
          await listenOn(server, opts.host, port);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' && tries > 1 && port < 65535) continue;
          throw new WardError(
            'ERR_CLI_LISTEN',
            'unavailable',
            `cannot listen on ${opts.host}:${port}: ${(err as Error).message}`,
            { cause: err },
          );
        }
      }
      const bound = (server.address() as AddressInfo).port;
      const where = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      const lines = [
        `ward connect: ${name} (${connection.type}) on ${where}:${bound}${connection.online ? '' : ' — no agent online for it yet'}`,
      ];
      if (connection.type === 'postgres') {
        lines.push(`  try: psql -h ${opts.host} -p ${bound} -U ${process.env['USER'] ?? 'me'} ${name}`);
      } else if (pinned) {
        const o = hostKeyOptions(pinned).map(shellWord).join(' ');
        lines.push(
          `  gateway host key ${pinned.fingerprint} (${pinned.publicKey.split(' ')[0]}), filed as ${pinned.alias} in ${pinned.file}${pinned.replaced ? ' — CHANGED since the last ward connect' : ''}`,
          `  ssh  -p ${bound} ${o} ${name}@${where}`,
          `  scp  -P ${bound} ${o} FILE ${name}@${where}:/tmp/`,
          `  sftp -P ${bound} ${o} ${name}@${where}`,
          `  (${name}@ logs in as the agent's configured user; put another remote login there to use it)`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\nCtrl-C to stop.\n`);
      await new Promise<void>((resolve) => {
        const stop = () => server.close(() => resolve());
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
