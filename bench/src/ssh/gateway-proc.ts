/**
 * A ward gateway in its own process for the SSH benchmark: the same library calls as
 * `ward gateway` (startGateway: audit store with group durability, token service, agent tunnel,
 * HTTP API), with the SSH listener started beside it so that the asciicast cap can be set:
 * `--max-recording-bytes 0` records the sessions (session start, ssh.request, ssh.session with
 * byte counts) but no terminal bytes, which is how the benchmark measures what recording costs.
 * ward has no config switch for that; the default cap (63 MiB) is what `ward gateway` runs with.
 *
 *   node bench/dist/ssh/gateway-proc.js --dir DIR --agent-key-hash sha256:… --connection NAME \
 *     [--max-recording-bytes N]
 *
 * Prints one JSON line on stdout once listening: { httpUrl, tunnelPort, sshPort, hostPublicKey,
 * token } (token: a user token for the API, to register the client key with `ward keys add`).
 * Stops on SIGTERM/SIGINT (so `node --cpu-prof` writes its profile).
 */
import { join } from 'node:path';
import { StoreRecorder, startGateway, startSshListener } from '@ward/gateway';
import pino from 'pino';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const dir = arg('dir');
  const keyHash = arg('agent-key-hash');
  const connection = arg('connection');
  if (!dir || !keyHash || !connection) throw new Error('--dir, --agent-key-hash and --connection are required');
  const cap = arg('max-recording-bytes');
  const logger = pino({ name: 'ward-gateway' }, pino.destination({ dest: join(dir, 'gateway.log'), sync: false }));
  const gateway = await startGateway({
    dataDir: join(dir, 'data'),
    listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0' },
    tunnel: { insecure: true },
    store: { path: join(dir, 'data', 'ward.db'), durability: 'group' },
    agents: [{ name: 'bench-agent', keyHash }],
    connections: [{ name: connection, type: 'ssh', agent: 'bench-agent' }],
    // The bench's user may open the connection (shell and commands), as a config grant would.
    access: {
      grants: [
        {
          id: 'bench',
          identities: ['user:bench'],
          groups: [],
          connections: [connection],
          actions: ['connect', 'exec'],
          windows: [],
        },
      ],
    },
    logger,
  });
  // What gateway.ts passes to the listener it starts for `listen.ssh` (its SshContext), plus the cap.
  const ssh = await startSshListener('127.0.0.1:0', {
    tunnel: gateway.tunnel,
    recorder: new StoreRecorder(gateway.store),
    sessions: gateway.sessions,
    keys: gateway.store.sshKeys,
    authenticate: async (token) => {
      const identity = await gateway.authenticator.authenticate(token);
      gateway.access.assertEnabled(identity);
      return identity;
    },
    connectionType: (name) => (name === connection ? 'ssh' : undefined),
    access: gateway.access,
    dataDir: join(dir, 'data'),
    logger: logger.child({ component: 'ssh' }),
    ...(cap !== undefined ? { maxRecordingBytes: Number(cap) } : {}),
  });
  const token = await gateway.tokens.issue({ subject: 'bench', roles: ['user'], ttlSeconds: 3600 });
  process.stdout.write(
    `${JSON.stringify({
      httpUrl: gateway.httpUrl,
      tunnelPort: gateway.tunnelPort,
      sshPort: ssh.port,
      hostPublicKey: ssh.hostPublicKey,
      token,
    })}\n`,
  );
  const signal = await new Promise<string>((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
  });
  logger.info({ signal }, 'stopping');
  ssh.server.close();
  await gateway.stop();
  logger.flush();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`gateway-proc: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
