import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { splitHostPort, WardError } from '@ward/protocol';
import { peerAddress } from '../sessions/index.js';
import { BackendSerializer, StartupCode } from './codec/index.js';
import { type PostgresContext, PostgresSession } from './postgres-session.js';

export interface PostgresListenerOptions {
  /** PEM certificate and key: SSLRequest is answered 'S' and the connection upgraded. */
  tls?: { cert: Buffer; key: Buffer } | undefined;
}

const NEGOTIATION_TIMEOUT_MS = 10_000;

/** Reads exactly `n` bytes; anything past them stays in `rest`. */
function readPacket(socket: net.Socket, n: number): Promise<{ packet: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error('no startup packet in time')), NEGOTIATION_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= n) done();
    };
    const onEnd = () => done(new Error('closed during negotiation'));
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve({ packet: buffered.subarray(0, n), rest: buffered.subarray(n) });
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    socket.resume();
  });
}

/**
 * Answers SSLRequest with TLS before a session exists, so the session only ever sees the
 * client's real startup packet over the encrypted stream. Bytes the client sent after its
 * SSLRequest and before the handshake are refused, as Postgres does (CVE-2021-23214/3935).
 * Anything else goes to the session exactly as it arrived.
 */
async function negotiate(socket: net.Socket, context: tls.SecureContext | undefined): Promise<Duplex> {
  if (!context) return socket;
  for (;;) {
    const { packet, rest } = await readPacket(socket, 8);
    const code = packet.readInt32BE(4);
    const isRequest =
      packet.readInt32BE(0) === 8 && (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest);
    if (!isRequest) {
      socket.unshift(Buffer.concat([packet, rest]));
      return socket;
    }
    if (rest.length > 0) {
      const err = new WardError(
        'ERR_PG_PROTOCOL',
        'invalid_argument',
        'received unencrypted data after the SSL/GSS request',
      );
      socket.end(BackendSerializer.wardError(err, 'FATAL'));
      throw err;
    }
    if (code === StartupCode.GSSENCRequest) {
      socket.write(BackendSerializer.gssEncResponse(false));
      continue;
    }
    socket.write(BackendSerializer.sslResponse(true));
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
    });
    return secure;
  }
}

/**
 * The direct Postgres listener (default 127.0.0.1:7432): the database name selects the
 * connection and the password is the user's ward token. With `tls`, clients that ask for TLS
 * (sslmode=require/verify-full) get it.
 */
export async function startPostgresListener(
  address: string,
  ctx: PostgresContext,
  options: PostgresListenerOptions = {},
): Promise<{ port: number; server: net.Server }> {
  const context = options.tls
    ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' })
    : undefined;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const source = peerAddress(socket);
    negotiate(socket, context).then(
      (stream) => new PostgresSession(stream, ctx, { source }),
      () => socket.destroy(),
    );
  });
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new WardError('ERR_PG_LISTEN', 'unavailable', `cannot listen on ${address}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  return { port: (server.address() as AddressInfo).port, server };
}
