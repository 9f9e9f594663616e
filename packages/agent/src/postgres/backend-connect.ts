import net from 'node:net';
import tls from 'node:tls';
import { WardError } from '@ward/protocol';
import type { PostgresBackend } from './postgres-backend.js';
import { encodeSSLRequest } from './startup-codec.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'ETIMEDOUT',
  'EADDRNOTAVAIL',
]);

function unreachable(backend: PostgresBackend, err: unknown): WardError {
  if (err instanceof WardError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new WardError(
    'ERR_PG_BACKEND_UNREACHABLE',
    'unavailable',
    `database "${backend.name}" at ${backend.host}:${backend.port} is unreachable (${UNREACHABLE_CODES.has(code) ? code : (err as Error).message})`,
    { cause: err },
  );
}

function tlsError(backend: PostgresBackend, message: string, cause?: unknown): WardError {
  return new WardError(
    'ERR_PG_BACKEND_TLS',
    'unavailable',
    `TLS to database "${backend.name}" failed: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Opens a connection to the backend and, unless `tls.mode` is `disable`, negotiates TLS
 * (SSLRequest, then the handshake on the same socket). Resolves with a paused socket that
 * nothing reads yet; `signal` aborting destroys it. Used for the session and for each
 * CancelRequest, so both follow the same TLS rules.
 */
export function connectBackend(backend: PostgresBackend, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let current: net.Socket = net.connect({ host: backend.host, port: backend.port });
    let settled = false;
    const fail = (err: WardError) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      current.destroy();
      reject(err);
    };
    const succeed = (socket: net.Socket) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      // The 'error' listeners stay (they are no-ops now) so an error before the caller attaches
      // its own cannot go unhandled.
      socket.pause();
      resolve(socket);
    };
    const onAbort = () =>
      fail(
        signal.reason instanceof WardError
          ? signal.reason
          : new WardError('ERR_PG_BACKEND_UNREACHABLE', 'unavailable', 'the connection attempt was abandoned'),
      );
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });

    const raw = current;
    raw.setNoDelay(true);
    raw.on('error', (err) => fail(unreachable(backend, err)));
    raw.once('connect', () => {
      if (backend.tls.mode === 'disable') {
        succeed(raw);
        return;
      }
      raw.write(encodeSSLRequest());
      raw.once('data', (answer: Buffer) => {
        raw.pause();
        const first = answer[0];
        if (first === 0x4e /* N */) {
          fail(tlsError(backend, `the server does not accept TLS, and tls.mode is "${backend.tls.mode}"`));
          return;
        }
        if (first !== 0x53 /* S */) {
          fail(tlsError(backend, `unexpected answer to SSLRequest (0x${(first ?? 0).toString(16)})`));
          return;
        }
        if (answer.byteLength > 1) {
          // Bytes after 'S' arrived before the handshake, unprotected (CVE-2021-23222).
          fail(tlsError(backend, 'the server sent unencrypted data after accepting TLS'));
          return;
        }
        upgrade(raw);
      });
    });
    raw.once('end', () => fail(unreachable(backend, new Error('the server closed the connection during TLS set-up'))));

    const upgrade = (socket: net.Socket) => {
      const verify = backend.tls.mode === 'verify-full';
      const secure = tls.connect({
        socket,
        host: backend.host,
        ...(net.isIP(backend.host) === 0 ? { servername: backend.host } : {}),
        ...(backend.tls.ca ? { ca: backend.tls.ca } : {}),
        rejectUnauthorized: verify,
        // 'require' encrypts without authenticating the server, as libpq's sslmode=require.
        checkServerIdentity: verify ? tls.checkServerIdentity : () => undefined,
      });
      current = secure;
      secure.on('error', (err) => fail(tlsError(backend, err.message, err)));
      secure.once('secureConnect', () => succeed(secure));
    };
  });
}
