import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { splitHostPort, WardError } from '@ward/protocol';
import pino, { type Logger } from 'pino';
import { AccessControl, createAccessApi, createTokenEndpoint } from './access/index.js';
import { createApi, identityProvidersRoute } from './api/index.js';
import { ACCESS_DEFAULTS } from './config/access-config.js';
import type { GatewayOptions } from './gateway-options.js';
import { type ApiHandler, createConnectUpgrade, createGatewayHttpServer } from './http/index.js';
import { Authenticator, TokenService } from './identity/index.js';
import { CancelRegistry, type PostgresContext, PostgresSession, startPostgresListener } from './postgres/index.js';
import { StoreRecorder } from './recording/index.js';
import { type LiveSession, SessionRegistry } from './sessions/index.js';
import {
  acceptSshStream,
  createSshApi,
  type HostKey,
  type SshContext,
  type SshListener,
  sshHostKey,
  startSshListener,
} from './ssh/index.js';
import { createAccessGrantRepository } from './store/access-grants.js';
import type { Store } from './store/index.js';
import { openStoreInternal } from './store/open-store.js';
import { createServiceAccountRepository } from './store/service-accounts.js';
import { type TunnelEvent, TunnelServer } from './tunnel/index.js';

export interface RunningGateway {
  /** Base URL of the HTTP listener (API, HTTP connections, CLI tunnel). */
  httpUrl: string;
  httpPort: number;
  tunnelPort: number;
  /** Port of the direct Postgres listener, when one was configured. */
  postgresPort: number | undefined;
  /** Port and host-key fingerprint of the SSH listener, when one was configured. */
  ssh: { port: number; hostKeyFingerprint: string } | undefined;
  sessions: SessionRegistry;
  tokens: TokenService;
  /** Gateway tokens and the configured OIDC issuers' access tokens. */
  authenticator: Authenticator;
  /** Grants, just-in-time access and service accounts. */
  access: AccessControl;
  store: Store;
  tunnel: TunnelServer;
  logger: Logger;
  /** Ends sessions with a reason clients see, closes listeners, flushes the audit log. */
  stop(): Promise<void>;
}

/**
 * Starts a gateway: audit store, token service, agent tunnel, HTTP listener.
 *
 * @example
 * const gw = await startGateway({ dataDir, listen: { http: '127.0.0.1:7400', tunnel: '127.0.0.1:7401' },
 *   tunnel: { insecure: true }, store: { path: join(dataDir, 'ward.db'), durability: 'group' }, agents, connections });
 * const token = await gw.tokens.issue({ subject: 'alice', roles: ['user'], ttlSeconds: 3600 });
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const logger = options.logger ?? pino({ name: 'ward-gateway' });
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  // Internal: the access tables are read through the store's own connection.
  const store = openStoreInternal({
    path: options.store.path,
    durability: options.store.durability,
    signingKeyPath: join(dataDir, 'audit-signing-key.pem'),
  });
  const tokens = await TokenService.open({
    keyPath: join(dataDir, 'token-key.pem'),
    issuer: options.tokenIssuer ?? 'urn:ward:gateway',
  });
  const recorder = new StoreRecorder(store);

  const recordTunnelEvent = (event: TunnelEvent) => {
    const fields = {
      agent: event.agent ?? null,
      peer: event.peer,
      connection: event.connection,
      connections: event.connections,
      code: event.error?.code,
    };
    const level = event.kind === 'agent.online' ? 'info' : 'warn';
    logger[level]({ ...fields, event: event.kind, reason: event.error?.message }, event.kind);
    recorder
      .record(undefined, event.kind, {
        source: event.peer,
        connection: event.connection,
        decision: event.kind === 'agent.refused' || event.kind === 'agent.connection_rejected' ? 'deny' : undefined,
        rule: event.kind === 'agent.refused' ? 'agent.key' : undefined,
        data: {
          agent: event.agent ?? null,
          ...(event.connections ? { connections: event.connections } : {}),
          ...(event.error ? { code: event.error.code } : {}),
        },
      })
      .catch((err) => logger.error({ err }, 'could not record a tunnel event'));
  };

  // Only the settings the caller gave: an explicit undefined would replace a default.
  const t = options.tunnel;
  const tunnel = new TunnelServer({
    address: options.listen.tunnel,
    agents: options.agents,
    connections: options.connections.map((c) => ({
      name: c.name,
      type: c.type,
      ...(c.agent ? { agent: c.agent } : {}),
    })),
    onEvent: recordTunnelEvent,
    ...(t.tls ? { tls: t.tls } : {}),
    ...(t.insecure ? { insecure: true } : {}),
    ...(t.sessionWindowBytes !== undefined ? { sessionWindowBytes: t.sessionWindowBytes } : {}),
    ...(t.keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs: t.keepaliveIntervalMs } : {}),
    ...(t.maxFrameBytes !== undefined ? { maxFrameBytes: t.maxFrameBytes } : {}),
    ...(options.version !== undefined ? { gatewayVersion: options.version } : {}),
  });

  // Invariant 3: nothing runs unrecorded. When the audit log cannot write, every open session
  // ends with that reason, and new work is refused until the store is healthy again.
  // Each session is checked against access as it registers (set once access exists, below).
  let onSessionAdded: ((s: LiveSession) => void) | undefined;
  const sessions = new SessionRegistry({ onAdd: (s) => onSessionAdded?.(s) });
  store.audit.on('unhealthy', (err) => {
    logger.error({ code: err.code }, 'audit store cannot write: ending open sessions and refusing new work');
    sessions.terminateWhere(() => true, err);
    tunnel.closeAllSessions(err);
  });

  const connectionsByName = new Map(options.connections.map((c) => [c.name, c]));
  const authenticator = new Authenticator(tokens, options.identity?.oidc ?? []);
  const connectionType = (name: string) => connectionsByName.get(name)?.type;
  const accounts = createServiceAccountRepository(store.db);
  const access = new AccessControl({
    grants: options.access?.grants ?? [],
    maxJitDurationMs: options.access?.maxJitDurationMs ?? ACCESS_DEFAULTS.jitMaxDuration,
    jit: createAccessGrantRepository(store.db),
    accounts,
    sessions,
    recorder,
    connectionType,
    logger: logger.child({ component: 'access' }),
  });
  onSessionAdded = (s) => access.sessionAdded(s);
  // A disabled service account's tokens are refused before they expire.
  const authenticate = async (token: string) => {
    const identity = await authenticator.authenticate(token);
    access.assertEnabled(identity);
    return identity;
  };
  const postgres: PostgresContext = {
    tunnel,
    recorder,
    sessions,
    cancels: new CancelRegistry((found, source) => {
      recorder
        .record(undefined, 'pg.cancel', {
          source,
          decision: found ? 'allow' : 'deny',
          rule: 'pg.cancel-key',
          data: { matched: found },
        })
        .catch((err) => logger.error({ err }, 'could not record a cancel request'));
    }),
    authenticate,
    connectionType,
    access,
    logger: logger.child({ component: 'postgres' }),
  };
  const ssh: SshContext = {
    tunnel,
    recorder,
    sessions,
    keys: store.sshKeys,
    authenticate,
    connectionType,
    access,
    dataDir,
    logger: logger.child({ component: 'ssh' }),
  };
  // Loaded on first use: a gateway without SSH never makes one.
  let hostKey: HostKey | undefined;
  const getHostKey = () => {
    hostKey ??= sshHostKey(ssh);
    return hostKey;
  };
  const http = createGatewayHttpServer({
    proxy: {
      tunnel,
      recorder,
      maxRequestBodyBytes: options.http?.maxRequestBodyBytes ?? 8 * 1024 * 1024,
      recordBodyBytes: options.http?.recordBodyBytes ?? 1024 * 1024,
      sessions,
    },
    authenticate,
    authorize: access,
    tokenEndpoint: createTokenEndpoint({
      tokens,
      accounts,
      authenticate,
      recorder,
      serviceTokenTtlMs: options.access?.serviceTokenTtlMs ?? ACCESS_DEFAULTS.serviceTokenTtl,
      exchangeTokenTtlMs: options.access?.exchangeTokenTtlMs ?? ACCESS_DEFAULTS.exchangeTokenTtl,
    }),
    connectionType,
    connection: (name) => connectionsByName.get(name),
    health: () => ({
      ok: store.audit.healthy,
      audit: store.audit.healthy ? 'ok' : 'unavailable',
      agents: tunnel.agents().length,
      sessions: tunnel.sessionCount,
    }),
    publicApi: identityProvidersRoute(() => authenticator.providers()),
    api: chainApi(
      createSshApi({ keys: store.sshKeys, store, recorder, hostKey: getHostKey }),
      createApi({ store, tunnel, connections: () => options.connections }),
      createAccessApi({ access, accounts, recorder }),
    ),
  });

  http.on(
    'upgrade',
    createConnectUpgrade({
      authenticate,
      connectionType,
      recorder,
      access,
      accept: (stream, target) => {
        if (target.type === 'postgres') {
          new PostgresSession(stream, postgres, {
            source: target.source,
            preauthenticated: { identity: target.identity, connection: target.connection },
          });
        } else if (target.type === 'ssh') {
          try {
            acceptSshStream(stream, ssh, getHostKey(), {
              identity: target.identity,
              connection: target.connection,
              source: target.source,
            });
          } catch (err) {
            // An unreadable host key: the client sees the stream end, the operator the reason.
            logger.error({ err }, 'cannot serve ssh over ward connect');
            stream.destroy();
          }
        } else {
          stream.end();
        }
      },
    }),
  );

  let tunnelPort: number;
  let httpPort: number;
  let postgresListener: Awaited<ReturnType<typeof startPostgresListener>> | undefined;
  let sshListener: SshListener | undefined;
  try {
    ({ port: tunnelPort } = await tunnel.start());
    httpPort = await listen(http, options.listen.http);
    if (options.listen.postgres) {
      postgresListener = await startPostgresListener(options.listen.postgres, postgres, { tls: options.postgres?.tls });
    }
    if (options.listen.ssh) {
      sshListener = await startSshListener(options.listen.ssh, ssh);
    }
  } catch (err) {
    http.close();
    access.stop();
    await tunnel.stop(0).catch(() => {});
    await store.close();
    throw err;
  }
  const { host } = splitHostPort(options.listen.http);
  const httpUrl = `http://${host.includes(':') ? `[${host}]` : host}:${httpPort}`;
  logger.info(
    {
      http: httpUrl,
      tunnel: tunnelPort,
      postgres: postgresListener?.port,
      ssh: sshListener?.port,
      sshHostKey: sshListener?.hostKeyFingerprint,
    },
    'gateway listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    httpUrl,
    httpPort,
    tunnelPort,
    postgresPort: postgresListener?.port,
    ssh: sshListener ? { port: sshListener.port, hostKeyFingerprint: sshListener.hostKeyFingerprint } : undefined,
    sessions,
    tokens,
    authenticator,
    access,
    store,
    tunnel,
    logger,
    stop: () => {
      stopping ??= (async () => {
        http.close();
        postgresListener?.server.close();
        sshListener?.server.close();
        access.stop();
        const reason = new WardError('ERR_GATEWAY_SHUTDOWN', 'unavailable', 'the gateway is shutting down');
        sessions.terminateWhere(() => true, reason);
        await tunnel.stop();
        http.closeAllConnections();
        await store.close();
      })();
      return stopping;
    },
  };
}

/** Tries each API handler in turn; the first that knows the route answers. */
function chainApi(...handlers: ApiHandler[]): ApiHandler {
  return async (req, res, url, who) => {
    for (const handler of handlers) if (await handler(req, res, url, who)) return true;
    return false;
  };
}

function listen(server: Server, address: string): Promise<number> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolvePort, reject) => {
    server.once('error', (err) =>
      reject(
        new WardError('ERR_HTTP_LISTEN', 'unavailable', `cannot listen on ${address}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(port, host, () => resolvePort((server.address() as AddressInfo).port));
  });
}
