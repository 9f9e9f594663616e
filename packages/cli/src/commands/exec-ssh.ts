import { constants } from 'node:os';
import type { Duplex, Readable, Writable } from 'node:stream';
import { WardError } from '@ward/protocol';
import ssh2, { type ClientChannel } from 'ssh2';
import type { GatewayHostKey } from './ssh-known-hosts.js';

const { Client } = ssh2;

export interface SshExecOptions {
  command: string;
  /** The remote login; empty means the agent's configured user. */
  user: string;
  connection: string;
  hostKey: GatewayHostKey;
  /** Forwarded to the command, then EOF; undefined sends EOF at once. */
  stdin: Readable | undefined;
  stdout: Writable;
  stderr: Writable;
  /** A pty of this size (ssh -t); the caller puts the local terminal in raw mode. */
  pty?: { rows: number; cols: number; term: string };
  /** Called with a function that reports a new size, when a pty is used. */
  onResize?: (resize: (rows: number, cols: number) => void) => void;
}

/** The remote exit status, or 128 + the signal's number (as a shell reports it). */
export function exitStatusOf(code: number | null | undefined, signal: string | undefined): number {
  if (typeof code === 'number') return code;
  if (signal) {
    const n = (constants.signals as Record<string, number | undefined>)[`SIG${signal.replace(/^SIG/, '')}`];
    return 128 + (n ?? 0);
  }
  // Closed without an exit status (the connection was cut): as ssh does.
  return 255;
}

/**
 * Runs one command on an SSH connection through the `ward connect` stream: the gateway's SSH
 * server (same policy, recording and audit as its listener) on the other end. The gateway's
 * host key must be the one its API gave; the WebSocket handshake already authenticated the
 * user, so SSH's own authentication is "none".
 */
export function runSshCommand(stream: Duplex, o: SshExecOptions): Promise<number> {
  const expected = Buffer.from(o.hostKey.publicKey.split(' ')[1] ?? '', 'base64');
  return new Promise((resolve, reject) => {
    const client = new Client();
    let settled = false;
    let keyMismatch = false;
    const fail = (err: WardError) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    client.on('error', (err: Error & { level?: string }) =>
      fail(
        keyMismatch
          ? new WardError(
              'ERR_CLI_HOST_KEY_MISMATCH',
              'unavailable',
              `the SSH host key on the connect stream is not the gateway's ${o.hostKey.fingerprint}: refusing to go on`,
            )
          : new WardError(
              err.level === 'client-authentication' ? 'ERR_SSH_AUTH_FAILED' : 'ERR_CLI_CONNECT_FAILED',
              err.level === 'client-authentication' ? 'unauthenticated' : 'unavailable',
              `ssh to "${o.connection}" through the gateway failed: ${err.message}`,
              { cause: err },
            ),
      ),
    );
    client.on('close', () =>
      fail(
        new WardError(
          'ERR_CLI_CONNECT_FAILED',
          'unavailable',
          `the gateway closed the SSH connection to "${o.connection}"`,
        ),
      ),
    );
    client.on('ready', () => {
      client.exec(o.command, o.pty ? { pty: { ...o.pty, width: 0, height: 0 } } : {}, (err, channel: ClientChannel) => {
        if (err) {
          fail(new WardError('ERR_CLI_CONNECT_FAILED', 'unavailable', `the exec request was refused: ${err.message}`));
          return;
        }
        let status: number | undefined;
        channel.on('exit', (code: number | null, signal?: string) => {
          status = exitStatusOf(code, signal);
        });
        channel.pipe(o.stdout, { end: false });
        channel.stderr.pipe(o.stderr, { end: false });
        if (o.stdin) o.stdin.pipe(channel);
        else channel.end();
        o.onResize?.((rows, cols) => channel.setWindow(rows, cols, 0, 0));
        channel.on('close', () => {
          settled = true;
          if (o.stdin) o.stdin.unpipe(channel);
          client.end();
          resolve(status ?? exitStatusOf(undefined, undefined));
        });
      });
    });
    client.connect({
      sock: stream as unknown as import('node:net').Socket,
      username: o.user || o.connection,
      // Strict: the key the authenticated API gave, nothing learnt on first use.
      hostVerifier: (key: Buffer) => {
        keyMismatch = !(key.length === expected.length && key.equals(expected));
        return !keyMismatch;
      },
      // ssh2 sends "none" first; the gateway accepts it on a ward connect stream.
      authHandler: ['none'],
      readyTimeout: 30_000,
      keepaliveInterval: 15_000,
    });
  });
}
