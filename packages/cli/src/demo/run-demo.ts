import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { type RunningAgent, startAgent } from '@ward/agent';
import { demoSshdMissing, startDemoPostgres, startDemoSshd, startDemoUpstream } from '@ward/demo';
import { type RunningGateway, startGateway } from '@ward/gateway';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import pino from 'pino';
import { saveCredentials } from '../credentials.js';

export interface DemoOptions {
  dataDir: string;
  host: string;
  httpPort: number;
  tunnelPort: number;
  postgresPort: number;
  sshPort: number;
  /** Progress lines while starting (stderr by default). */
  progress?: (line: string) => void;
}

export interface RunningDemo {
  gateway: RunningGateway;
  agent: RunningAgent;
  upstreamUrl: string;
  postgres: { host: string; port: number; database: string; user: string };
  user: string;
  token: string;
  /** Why there is no SSH connection (sshd missing), if there is none. */
  sshSkipped: string | undefined;
  credentialsPath: string;
  dataDir: string;
  stop(): Promise<void>;
}

export const DEMO_AGENT = 'demo-agent';
export const DEMO_HTTP_CONNECTION = 'demo-openai';
export const DEMO_PG_CONNECTION = 'demo-pg';
export const DEMO_SSH_CONNECTION = 'demo-ssh';

async function step<T>(progress: (line: string) => void, label: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  progress(`  ${label}…`);
  const result = await work();
  progress(`  ${label}: ready (${Math.round(performance.now() - started)} ms)`);
  return result;
}

/**
 * Everything `ward demo` runs, on loopback: an embedded Postgres with fake PII, an
 * OpenAI-compatible upstream, a gateway with its store in `dataDir`, and an agent holding the
 * upstream's API key. The local user is logged in as the demo admin.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = pino(
    { name: 'ward-demo', level: process.env['WARD_LOG_LEVEL'] ?? 'info' },
    pino.destination({ dest: join(dataDir, 'demo.log'), mkdir: true, sync: false }),
  );
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };

  try {
    // The upstream's key is known to the agent only; clients use ward tokens.
    const upstreamKey = `sk-demo-${randomBytes(18).toString('base64url')}`;
    const upstream = await step(progress, 'OpenAI-compatible demo upstream', () =>
      startDemoUpstream({ host: options.host, port: 0, apiKey: upstreamKey }),
    );
    stops.push(() => upstream.close());
    const postgres = await step(progress, 'embedded Postgres (PGlite) with demo data', () =>
      startDemoPostgres({ host: options.host, port: 0, dataDir: join(dataDir, 'pglite') }),
    );
    stops.push(() => postgres.close());
    const sshSkipped = demoSshdMissing();
    const sshd = sshSkipped
      ? undefined
      : await step(progress, 'OpenSSH server (sshd) for the SSH connection', () =>
          startDemoSshd({ dir: join(dataDir, 'sshd'), host: options.host }),
        );
    if (sshd) stops.push(() => sshd.close());
    else progress(`  SSH: skipped: ${sshSkipped}`);

    const agentKey = generateAgentKey();
    const gateway = await step(progress, 'gateway', () =>
      startGateway({
        dataDir,
        listen: {
          http: `${options.host}:${options.httpPort}`,
          tunnel: `${options.host}:${options.tunnelPort}`,
          postgres: `${options.host}:${options.postgresPort}`,
          ...(sshd ? { ssh: `${options.host}:${options.sshPort}` } : {}),
        },
        tunnel: { insecure: true },
        store: { path: join(dataDir, 'ward.db'), durability: 'group' },
        agents: [{ name: DEMO_AGENT, keyHash: hashAgentKey(agentKey) }],
        connections: [
          {
            name: DEMO_HTTP_CONNECTION,
            type: 'http',
            agent: DEMO_AGENT,
            llm: 'openai',
            description: 'OpenAI-compatible demo LLM',
          },
          {
            name: DEMO_PG_CONNECTION,
            type: 'postgres',
            agent: DEMO_AGENT,
            description: 'embedded Postgres with fake customers and payments',
          },
          ...(sshd
            ? [
                {
                  name: DEMO_SSH_CONNECTION,
                  type: 'ssh' as const,
                  agent: DEMO_AGENT,
                  description: 'this machine over SSH, via a demo sshd',
                },
              ]
            : []),
        ],
        logger: logger.child({ component: 'gateway' }),
        version: 'demo',
      }),
    );
    stops.push(() => gateway.stop());

    const agent = await step(progress, 'agent (dials the gateway)', async () => {
      const running = startAgent({
        gateway: { address: `${options.host}:${gateway.tunnelPort}`, insecure: true },
        key: agentKey,
        connections: [
          {
            type: 'http',
            name: DEMO_HTTP_CONNECTION,
            url: upstream.url,
            auth: { header: 'authorization', scheme: 'Bearer', secret: upstreamKey },
            timeoutMs: 60_000,
          },
          {
            type: 'postgres',
            name: DEMO_PG_CONNECTION,
            host: postgres.host,
            port: postgres.port,
            database: postgres.database,
            user: postgres.user,
            tls: { mode: 'disable' },
            maxScramIterations: 100_000,
          },
          ...(sshd
            ? [
                {
                  type: 'ssh' as const,
                  name: DEMO_SSH_CONNECTION,
                  host: sshd.host,
                  port: sshd.port,
                  user: sshd.user,
                  privateKey: sshd.privateKey,
                  hostKey: { fingerprint: sshd.hostKeyFingerprint },
                },
              ]
            : []),
        ],
        logger: logger.child({ component: 'agent' }),
        version: 'demo',
      });
      stops.push(() => running.stop());
      await running.online();
      return running;
    });

    const user = userInfo().username || 'demo';
    const ttlSeconds = 12 * 3600;
    const token = await gateway.tokens.issue({ subject: user, roles: ['admin'], ttlSeconds });
    const credentialsPath = saveCredentials({
      gateway: gateway.httpUrl,
      token,
      subject: user,
      expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    });
    await gateway.store.audit.append({
      kind: 'demo.login',
      identity: `user:${user}`,
      source: 'local',
      rule: 'demo.admin',
      decision: 'allow',
      data: { roles: ['admin'], ttlSeconds },
    });

    return {
      gateway,
      agent,
      upstreamUrl: upstream.url,
      postgres: { host: postgres.host, port: postgres.port, database: postgres.database, user: postgres.user },
      user,
      token,
      credentialsPath,
      sshSkipped,
      dataDir,
      stop: async () => {
        await stopAll();
        logger.flush();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The first screen: what is running and exactly what to type next. */
export function firstScreen(demo: RunningDemo, cli = 'pnpm exec ward'): string {
  const base = `${demo.gateway.httpUrl}/c/${DEMO_HTTP_CONNECTION}/v1`;
  return `
ward demo is running. Data: ${demo.dataDir}

  gateway  ${demo.gateway.httpUrl} (API, HTTP/LLM), Postgres on 127.0.0.1:${demo.gateway.postgresPort}${demo.gateway.ssh ? `, SSH on 127.0.0.1:${demo.gateway.ssh.port}` : ''}, agent tunnel on port ${demo.gateway.tunnelPort}
  agent    ${DEMO_AGENT}, online: ${DEMO_PG_CONNECTION} (postgres), ${DEMO_HTTP_CONNECTION} (http)${demo.gateway.ssh ? `, ${DEMO_SSH_CONNECTION} (ssh)` : ''}. Only the agent holds their credentials.
  you      ${demo.user} (admin). Token saved to ${demo.credentialsPath}

Try it, in another terminal in this directory:

  # Postgres with psql and no database password: ward connect opens a local port as you.
  ${cli} connect ${DEMO_PG_CONNECTION}          # then, in a third terminal:
  psql -h 127.0.0.1 -p 5433 -c 'select full_name, email, card_brand from customers c join payments p on p.customer_id = c.id limit 5'
  # Or straight to the gateway: your ward token is the password, the connection is the database.
  PGPASSWORD=$(${cli} token print) psql -h 127.0.0.1 -p ${demo.gateway.postgresPort} -d ${DEMO_PG_CONNECTION} -c 'select count(*) from customers'
  # Or one statement, no psql needed:
  ${cli} exec ${DEMO_PG_CONNECTION} 'select count(*) from customers'

${
  demo.gateway.ssh
    ? `  # SSH to this machine through ward. Register your key once (or paste your ward token as the password):
  ${cli} keys add ~/.ssh/id_ed25519.pub
  ssh -p ${demo.gateway.ssh.port} -l ${DEMO_SSH_CONNECTION} 127.0.0.1 'whoami; uptime'
  # Or with no key at all: ward connect ${DEMO_SSH_CONNECTION} prints the ssh/scp/sftp lines to use.
  ${cli} exec ${DEMO_SSH_CONNECTION} 'whoami; uptime'
  ${cli} sessions replay <session id from: ${cli} sessions list>       # play a recorded shell back
  (gateway SSH host key: ${demo.gateway.ssh.hostKeyFingerprint})
`
    : `  # SSH is off: ${demo.sshSkipped}
`
}
  # An OpenAI client: only the base URL and the key change (the key is your ward token).
  export OPENAI_BASE_URL=${base}
  export OPENAI_API_KEY=$(${cli} token print)
  curl -s $OPENAI_BASE_URL/chat/completions -H "authorization: Bearer $OPENAI_API_KEY" \\
       -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello through ward"}]}'

  # What was recorded, and proof that the log is intact:
  ${cli} sessions list
  ${cli} audit export --out audit.jsonl && ${cli} audit verify audit.jsonl

Logs: ${join(demo.dataDir, 'demo.log')}. Ctrl-C stops everything.
`;
}
