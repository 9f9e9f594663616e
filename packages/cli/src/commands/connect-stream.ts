import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WardError } from '@ward/protocol';
import { createWebSocketStream, WebSocket } from 'ws';
import { type ApiTarget, apiJson, freshToken } from '../api-client.js';

/** A connection as `GET /api/v1/connections` lists it. */
export interface ConnectionInfo {
  name: string;
  type: string;
  online: boolean;
}

/** A refusal the gateway sent instead of upgrading, as a WardError. */
function refusalFromResponse(res: IncomingMessage): Promise<WardError> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          error?: { code?: string; message?: string; type?: WardError['kind'] };
        };
        resolve(
          new WardError(
            body.error?.code ?? 'ERR_INTERNAL',
            body.error?.type ?? 'internal',
            body.error?.message ?? `HTTP ${res.statusCode}`,
          ),
        );
      } catch {
        resolve(
          new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `the gateway answered HTTP ${res.statusCode}`),
        );
      }
    });
    res.on('error', () =>
      resolve(
        new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `the gateway answered HTTP ${res.statusCode}`),
      ),
    );
  });
}

/**
 * Opens the `ward connect` WebSocket to `/connect/<connection>` with the (refreshed) token in its
 * handshake and resolves with it as a byte stream (backpressure through the stream's buffer).
 * A refusal (bad token, unknown connection, audit store down) rejects with the gateway's code.
 */
export async function openConnectStream(target: ApiTarget, connection: string): Promise<Duplex> {
  const url = `${target.gateway.replace(/^http/, 'ws')}/connect/${encodeURIComponent(connection)}`;
  // Each stream gets a fresh token: `ward login`'s cache is refreshed near its expiry.
  const token = await freshToken(target);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      maxPayload: 1024 * 1024,
    });
    ws.on('unexpected-response', (_req, res) => {
      refusalFromResponse(res).then(reject, reject);
    });
    ws.on('error', (err) => {
      if (ws.readyState !== WebSocket.OPEN)
        reject(new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway: ${err.message}`));
    });
    ws.on('open', () => resolve(createWebSocketStream(ws, { highWaterMark: 256 * 1024 })));
  });
}

/** Looks a connection up by name; ERR_CONN_UNKNOWN lists the known ones. */
export async function findConnection(target: ApiTarget, name: string): Promise<ConnectionInfo> {
  const { connections } = await apiJson<{ connections: ConnectionInfo[] }>(target, '/api/v1/connections');
  const connection = connections.find((c) => c.name === name);
  if (!connection)
    throw new WardError(
      'ERR_CONN_UNKNOWN',
      'not_found',
      `no connection named "${name}"; known: ${connections.map((c) => c.name).join(', ') || 'none'}`,
    );
  if (connection.type === 'http')
    throw new WardError(
      'ERR_CONN_TYPE_MISMATCH',
      'invalid_argument',
      `"${name}" is an HTTP connection: call ${target.gateway}/c/${name}/ directly (e.g. as an OpenAI base URL)`,
    );
  return connection;
}
