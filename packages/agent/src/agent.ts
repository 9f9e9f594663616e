import { type SessionChannel, type SessionStart, WardError } from '@ward/protocol';
import pino, { type Logger } from 'pino';
import { type HttpUpstream, serveHttpSession } from './http/index.js';
import { type PostgresBackend, servePostgresSession } from './postgres/index.js';
import { type SshBackend, serveSshSession } from './ssh/index.js';
import { type ConnectionKind, TunnelClient } from './tunnel/index.js';

/** A backend the agent serves, with its credentials (which never leave the agent). */
export type AgentConnection =
  | ({ type: 'http' } & HttpUpstream)
  | ({ type: 'postgres' } & PostgresBackend)
  | ({ type: 'ssh' } & SshBackend);

export interface AgentOptions {
  gateway: {
    address: string;
    insecure?: boolean | undefined;
    ca?: Buffer | undefined;
    serverName?: string | undefined;
  };
  key: string;
  connections: readonly AgentConnection[];
  idleStreams?: number | undefined;
  initialDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
  logger?: Logger | undefined;
  version?: string | undefined;
}

export interface RunningAgent {
  client: TunnelClient;
  /** Resolves at the first Welcome (or rejects if `stop` comes first). */
  online(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts an agent: dials the gateway, announces its connections, and serves each session with
 * the handler for its connection type. Credentials stay here; the gateway sees names only.
 *
 * @example
 * const agent = startAgent({ gateway: { address: '127.0.0.1:7401', insecure: true }, key, connections });
 * await agent.online();
 */
export function startAgent(options: AgentOptions): RunningAgent {
  const logger = options.logger ?? pino({ name: 'ward-agent' });
  const byName = new Map(options.connections.map((c) => [c.name, c]));

  const onSession = (start: SessionStart, channel: SessionChannel) => {
    const connection = byName.get(start.connection);
    const log = logger.child({ session: start.sessionId, connection: start.connection });
    channel.onClose((reason) => log.debug({ code: reason?.code }, 'session ended'));
    if (!connection) {
      channel.close(new WardError('ERR_CONN_UNKNOWN', 'not_found', `agent does not serve "${start.connection}"`));
      return;
    }
    switch (connection.type) {
      case 'http':
        if (start.target.case !== 'http') break;
        serveHttpSession(channel, connection, start.target.value);
        return;
      case 'postgres':
        if (start.target.case !== 'postgres') break;
        servePostgresSession(channel, start.target.value, connection);
        return;
      case 'ssh':
        if (start.target.case !== 'ssh') break;
        serveSshSession(channel, start.target.value, connection);
        return;
    }
    channel.close(
      new WardError(
        'ERR_CONN_TYPE_MISMATCH',
        'invalid_argument',
        `"${start.connection}" is a ${connection.type} connection, the session asked for ${start.target.case ?? 'nothing'}`,
      ),
    );
  };

  const client = new TunnelClient({
    address: options.gateway.address,
    insecure: options.gateway.insecure ?? false,
    ...(options.gateway.ca ? { ca: options.gateway.ca } : {}),
    ...(options.gateway.serverName ? { serverName: options.gateway.serverName } : {}),
    key: options.key,
    connections: options.connections.map((c) => ({ name: c.name, type: c.type as ConnectionKind })),
    ...(options.idleStreams ? { idleStreams: options.idleStreams } : {}),
    ...(options.initialDelayMs ? { initialDelayMs: options.initialDelayMs } : {}),
    ...(options.maxDelayMs ? { maxDelayMs: options.maxDelayMs } : {}),
    version: options.version ?? '',
    onSession,
  });
  client.on('online', (welcome) => {
    logger.info({ agent: welcome.agentName, accepted: welcome.accepted }, 'connected to the gateway');
    for (const r of welcome.rejected)
      logger.warn({ connection: r.name, code: r.error?.code }, `gateway rejected connection: ${r.error?.message}`);
  });
  client.on('refused', (err: WardError) =>
    logger.error({ code: err.code }, `gateway refused this agent: ${err.message}`),
  );
  client.on('retry', ({ delayMs, error }: { delayMs: number; error: WardError }) =>
    logger.warn({ code: error.code, retryInMs: delayMs }, `tunnel down (${error.message}); retrying`),
  );
  client.start();

  return {
    client,
    online: () =>
      client.state === 'online'
        ? Promise.resolve()
        : new Promise((resolve, reject) => {
            const onState = (state: string) => {
              if (state !== 'online' && state !== 'stopped') return;
              client.off('state', onState);
              if (state === 'online') resolve();
              else reject(new WardError('ERR_AGENT_SHUTDOWN', 'unavailable', 'the agent stopped'));
            };
            client.on('state', onState);
          }),
    stop: () => client.stop(),
  };
}
