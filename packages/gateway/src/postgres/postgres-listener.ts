import net, { type AddressInfo } from 'node:net';
import { splitHostPort, WardError } from '@ward/protocol';
import { peerAddress } from '../sessions/index.js';
import { type PostgresContext, PostgresSession } from './postgres-session.js';

/**
 * The direct Postgres listener (default 127.0.0.1:7432): the database name selects the
 * connection and the password is the user's ward token.
 */
export async function startPostgresListener(
  address: string,
  ctx: PostgresContext,
): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    new PostgresSession(socket, ctx, { source: peerAddress(socket) });
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
