import net, { type AddressInfo } from 'node:net';
import { PgCodec } from '@ward/gateway';
import { toWardError, WardError } from '@ward/protocol';
import type { Command } from 'commander';
import { createWebSocketStream, WebSocket } from 'ws';
import { apiJson, freshToken, resolveTarget } from '../api-client.js';

const DEFAULT_PORTS: Record<string, number> = { postgres: 5433, ssh: 2222 };

/** A refusal the gateway sent instead of upgrading, as a WardError. */
function refusalFromResponse(res: import('node:http').IncomingMessage): Promise<WardError> {
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
  });
}

/**
 * Carries one local TCP connection to the gateway over a WebSocket that carries the user's
 * token in its handshake. Backpressure flows through `pipe` both ways.
 */
function carry(local: net.Socket, url: string, token: string, type: string, log: (line: string) => void): void {
  local.setNoDelay(true);
  local.pause();
  const ws = new WebSocket(url, {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    maxPayload: 1024 * 1024,
  });
  const fail = (err: WardError) => {
    log(`ward connect: ${err.code}: ${err.message}`);
    // psql shows a FATAL ErrorResponse as the reason the connection failed.
    if (type === 'postgres' && !local.destroyed) local.end(PgCodec.BackendSerializer.wardError(err, 'FATAL'));
    else local.destroy();
  };
  ws.on('unexpected-response', (_req, res) => {
    refusalFromResponse(res).then(fail, () => local.destroy());
  });
  ws.on('error', (err) => {
    if (ws.readyState !== WebSocket.OPEN)
      fail(new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway: ${err.message}`));
  });
  ws.on('open', () => {
    const remote = createWebSocketStream(ws, { highWaterMark: 256 * 1024 });
    remote.on('error', () => local.destroy());
    local.on('error', () => remote.destroy());
    local.pipe(remote).pipe(local);
    local.resume();
  });
}

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .description(
      'Open a local port for a Postgres or SSH connection, carried to the gateway as you (no database\n' +
        'password or SSH key on this machine). Example:\n' +
        '  ward connect demo-pg            # then: psql -h 127.0.0.1 -p 5433 -U any',
    )
    .argument('<connection>', 'connection name (see `ward connections`)')
    .option('-p, --port <port>', 'local port (default 5433 for Postgres, 2222 for SSH; 0 picks a free one)')
    .option('--host <host>', 'local address to listen on', '127.0.0.1')
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (name: string, opts: { port?: string; host: string; gateway?: string }) => {
      const target = resolveTarget(opts);
      const { connections } = await apiJson<{ connections: Array<{ name: string; type: string; online: boolean }> }>(
        target,
        '/api/v1/connections',
      );
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
          `"${name}" is an HTTP connection: use ${target.gateway}/c/${name}/ directly`,
        );
      const port = opts.port === undefined ? (DEFAULT_PORTS[connection.type] ?? 0) : Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error(`--port must be 0–65535, got ${opts.port}`);
      const wsUrl = `${target.gateway.replace(/^http/, 'ws')}/connect/${encodeURIComponent(name)}`;
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const server = net.createServer((local) =>
        // Each connection gets a fresh token: `ward login`'s cache is refreshed near expiry.
        freshToken(target).then(
          (token) => carry(local, wsUrl, token, connection.type, log),
          (err: unknown) => {
            const e = toWardError(err);
            log(`ward connect: ${e.code}: ${e.message}`);
            if (connection.type === 'postgres') local.end(PgCodec.BackendSerializer.wardError(e, 'FATAL'));
            else local.destroy();
          },
        ),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new Error(`cannot listen on ${opts.host}:${port}: ${err.message}`)));
        server.listen(port, opts.host, () => resolve());
      });
      const bound = (server.address() as AddressInfo).port;
      const hint =
        connection.type === 'postgres'
          ? `psql -h ${opts.host} -p ${bound} -U ${process.env['USER'] ?? 'me'} ${name}`
          : `ssh -p ${bound} user@${opts.host}`;
      process.stdout.write(
        `ward connect: ${name} (${connection.type}) on ${opts.host}:${bound}${connection.online ? '' : ' — no agent online for it yet'}\n  try: ${hint}\nCtrl-C to stop.\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => server.close(() => resolve());
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
