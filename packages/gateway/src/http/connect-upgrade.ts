import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { toWardError, WardError } from '@ward/protocol';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Authorizer } from '../access/index.js';
import { authDenialData, bearerToken, type Identity } from '../identity/index.js';
import type { Recorder } from '../recording/index.js';
import { peerAddress } from '../sessions/index.js';
import type { ConnectionKind } from '../tunnel/index.js';

export interface ConnectUpgradeOptions {
  authenticate(token: string): Promise<Identity>;
  connectionType(name: string): ConnectionKind | undefined;
  recorder: Recorder;
  /** Refuses, before the upgrade (403 JSON), an identity without a grant for the connection. */
  access: Authorizer;
  /** Hands an authenticated byte stream to the protocol session for its connection type. */
  accept(
    stream: Duplex,
    target: { connection: string; type: ConnectionKind; identity: Identity; source: string },
  ): void;
}

const CONNECT_PATH = /^\/connect\/([a-z0-9][a-z0-9_-]{0,62})$/;

/**
 * The `ward connect` tunnel: the CLI opens a WebSocket to /connect/<connection> with the user's
 * token in the handshake (the full IdP token fits here, unlike in an SSH password), and the
 * socket then carries the client's raw protocol bytes into the same session code the direct
 * listeners use. Refusals happen before the upgrade, as plain HTTP errors with JSON bodies.
 */
export function createConnectUpgrade(options: ConnectUpgradeOptions) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false });
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const refuse = (err: WardError) => {
      const body = JSON.stringify({ error: { message: err.message, type: err.kind, code: err.code, param: null } });
      socket.end(
        `HTTP/1.1 ${err.httpStatus} ${err.kind}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const match = CONNECT_PATH.exec(url.pathname);
    if (!match) {
      refuse(new WardError('ERR_HTTP_NOT_FOUND', 'not_found', `no upgrade route for ${url.pathname}`));
      return;
    }
    const connection = match[1] ?? '';
    const source = peerAddress(req.socket);
    const run = async () => {
      if (!options.recorder.healthy)
        throw new WardError(
          'ERR_AUDIT_UNAVAILABLE',
          'unavailable',
          'the audit store cannot write; the gateway refuses new work until it can',
        );
      let identity: Identity;
      try {
        const token = bearerToken(req.headers.authorization);
        if (!token)
          throw new WardError(
            'ERR_AUTH_TOKEN_MISSING',
            'unauthenticated',
            'the connect handshake needs "Authorization: Bearer <token>"',
          );
        identity = await options.authenticate(token);
      } catch (err) {
        const error = toWardError(err, 'ERR_AUTH_TOKEN_INVALID', 'unauthenticated');
        await options.recorder.record(undefined, 'auth.denied', {
          source,
          connection,
          decision: 'deny',
          rule: 'auth.token',
          data: { code: error.code, protocol: 'connect', ...authDenialData(error) },
        });
        throw error;
      }
      const type = options.connectionType(connection);
      if (!type) throw new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${connection}"`);
      if (type === 'http')
        throw new WardError(
          'ERR_CONN_TYPE_MISMATCH',
          'invalid_argument',
          `"${connection}" is an HTTP connection: call ${'/c/'}${connection}/ directly`,
        );
      // The session behind the socket checks again and records the allow with its session id.
      // An SSH connection is carried for a shell (connect) or commands (exec): either will do here;
      // the SSH session checks each channel's own action.
      const execOnly =
        type === 'ssh' &&
        !options.access.decide(identity, connection, 'connect').allow &&
        options.access.decide(identity, connection, 'exec').allow;
      await options.access.authorize({
        identity,
        connection,
        action: execOnly ? 'exec' : 'connect',
        source,
        protocol: 'connect',
        recordAllow: false,
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws, { highWaterMark: 256 * 1024 });
        stream.on('error', () => stream.destroy());
        options.accept(stream, { connection, type, identity, source });
      });
    };
    run().catch((err) => refuse(toWardError(err)));
  };
}
