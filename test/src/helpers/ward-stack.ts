import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentConnection, type RunningAgent, startAgent } from '@ward/agent';
import type { PgCluster } from '@ward/agent/testing';
import { type GatewayConnection, type GatewayOptions, type RunningGateway, startGateway } from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import pino from 'pino';

export interface WardStack {
  gateway: RunningGateway;
  agent: RunningAgent;
  dataDir: string;
  agentKey: string;
  /** An admin token for `alice`. */
  adminToken: string;
  /** A plain user token for `bob`. */
  userToken: string;
  logFile: string;
  stop(): Promise<void>;
}

export interface StackOptions {
  gatewayConnections: GatewayConnection[];
  agentConnections: AgentConnection[];
  postgres?: boolean;
  /** Also start the SSH listener (gateway.ssh.port). */
  ssh?: boolean;
  postgresTls?: { cert: Buffer; key: Buffer };
  sessionWindowBytes?: number;
  maxRequestBodyBytes?: number;
  /** Access settings; default: bob (the user token) may open every connection. */
  access?: GatewayOptions['access'];
}

/** The default grant of a stack: `user:bob` may connect and exec on every connection. */
export const BOB_EVERYWHERE = {
  id: 'e2e-bob',
  identities: ['user:bob'],
  groups: [],
  connections: ['*'],
  actions: ['connect', 'exec'],
  windows: [],
} as const;

/** The agent's side of a Postgres connection `name` to a test cluster's `app` database. */
export function pgConnection(cluster: PgCluster, password: string, name = 'appdb'): AgentConnection {
  return {
    type: 'postgres',
    name,
    host: '127.0.0.1',
    port: cluster.port,
    database: 'app',
    user: 'app',
    password,
    tls: { mode: 'disable' },
    maxScramIterations: 100_000,
  };
}

/**
 * A real gateway and a real agent on loopback ports chosen by the OS, with a fresh data dir
 * (SQLite store, keys) per stack. Logs go to a file the tests can search for leaked secrets.
 */
export async function startStack(options: StackOptions): Promise<WardStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ward-e2e-'));
  const logFile = join(dataDir, 'ward.log');
  const logger = pino({ level: 'debug' }, pino.destination({ dest: logFile, sync: true }));
  const agentKey = generateAgentKey();
  const gateway = await startGateway({
    dataDir,
    listen: {
      http: '127.0.0.1:0',
      tunnel: '127.0.0.1:0',
      ...(options.postgres ? { postgres: '127.0.0.1:0' } : {}),
      ...(options.ssh ? { ssh: '127.0.0.1:0' } : {}),
    },
    tunnel: { insecure: true, sessionWindowBytes: options.sessionWindowBytes },
    ...(options.postgresTls ? { postgres: { tls: options.postgresTls } } : {}),
    store: { path: join(dataDir, 'ward.db'), durability: 'group' },
    agents: [{ name: 'e2e-agent', keyHash: hashAgentKey(agentKey) }],
    connections: options.gatewayConnections,
    http: { maxRequestBodyBytes: options.maxRequestBodyBytes },
    access: options.access ?? { grants: [BOB_EVERYWHERE] },
    logger: logger.child({ component: 'gateway' }),
  });
  const agent = startAgent({
    gateway: { address: `127.0.0.1:${gateway.tunnelPort}`, insecure: true },
    key: agentKey,
    connections: options.agentConnections,
    initialDelayMs: 50,
    maxDelayMs: 500,
    logger: logger.child({ component: 'agent' }),
  });
  await agent.online();
  const adminToken = await gateway.tokens.issue({ subject: 'alice', roles: ['admin'], ttlSeconds: 600 });
  const userToken = await gateway.tokens.issue({ subject: 'bob', roles: ['user'], ttlSeconds: 600 });
  return {
    gateway,
    agent,
    dataDir,
    agentKey,
    adminToken,
    userToken,
    logFile,
    stop: async () => {
      await agent.stop();
      await gateway.stop();
      logger.flush();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until `check` is true, polling; fails after `timeoutMs` (a liveness bound, not a timing assertion). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
