import { dirname, isAbsolute, resolve } from 'node:path';
import {
  asArray,
  asRecord,
  byteSizeField,
  type ConfigProblem,
  closestMatch,
  durationField,
  enumField,
  formatHostPort,
  type HostPort,
  hostPortField,
  isHostPort,
  isLoopback,
  loadConfigFile,
  nameField,
  parseConfigText,
  pathField,
  problem,
} from '@ward/protocol';
import * as z from 'zod';
import { type AccessConfig, accessConfigSchema } from './access-config.js';
import { type GatewayIdentityConfig, identityConfigSchema } from './identity-config.js';

export type ConnectionType = 'postgres' | 'ssh' | 'http';
export type LlmApi = 'openai' | 'anthropic' | 'none';

/** Where the gateway listens. Every default is loopback: exposing a port is a decision. */
export interface GatewayListen {
  /** API, web UI, HTTP/LLM endpoints and the `ward connect` tunnel. Default 127.0.0.1:7400. */
  readonly http: HostPort;
  /** gRPC port agents dial. Default 127.0.0.1:7401. */
  readonly tunnel: HostPort;
  /** Postgres wire protocol. Default 127.0.0.1:7432. */
  readonly postgres: HostPort;
  /** SSH. Default 127.0.0.1:7422. */
  readonly ssh: HostPort;
}

export interface GatewayTunnelConfig {
  /** Absolute paths of the PEM certificate and key; absent when `insecure`. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
  /** Plaintext gRPC, only ever on a loopback `listen.tunnel`. */
  readonly insecure: boolean;
  /** Per-session credit window in bytes (default 1 MiB). */
  readonly sessionWindow: number;
  /** gRPC keepalive interval in milliseconds (default 10 s). */
  readonly keepaliveInterval: number;
  /** Largest data frame payload in bytes (default 256 KiB). */
  readonly maxFrame: number;
}

export interface GatewayStoreConfig {
  readonly driver: 'sqlite';
  /** Absolute path of the database file (relative paths start from `dataDir`), or `:memory:`. */
  readonly path: string;
  /** `group`: concurrent appends share one transaction (one fsync); `strict`: one transaction per append. */
  readonly durability: 'group' | 'strict';
}

export interface GatewayAgentConfig {
  readonly name: string;
  /** `sha256:` + 64 lower-case hex digits: the hash of the agent's key, never the key. */
  readonly keyHash: string;
  readonly revoked: boolean;
}

export interface GatewayConnectionConfig {
  readonly name: string;
  readonly type: ConnectionType;
  /** The agent allowed to serve this connection. */
  readonly agent: string;
  readonly description?: string | undefined;
  /** Which LLM API an `http` connection speaks (`none` for any other HTTP API). */
  readonly llm: LlmApi;
  /** Per-identity rate limits (token buckets) and the response body cap of an `http` connection. */
  readonly limits?: GatewayConnectionLimits | undefined;
}

export interface GatewayConnectionLimits {
  readonly requestsPerMinute?: number | undefined;
  /** Charged from the usage the upstream reports; needs `llm`. */
  readonly tokensPerMinute?: number | undefined;
  /** Inputs of embedding requests; needs `llm: openai`. */
  readonly embeddingInputsPerMinute?: number | undefined;
  /** Response body cap in bytes (default 64 MiB). */
  readonly maxResponseBody?: number | undefined;
}

export interface GatewayConfig {
  /** Absolute path of the file this config came from. */
  readonly configPath: string;
  readonly listen: GatewayListen;
  /** Absolute; relative paths in the file start from the config file's directory. */
  readonly dataDir: string;
  readonly tunnel: GatewayTunnelConfig;
  /** Postgres listener settings: TLS for clients that ask for it (SSLRequest). */
  readonly postgres: { readonly tls?: { readonly cert: string; readonly key: string } | undefined };
  readonly store: GatewayStoreConfig;
  readonly agents: readonly GatewayAgentConfig[];
  readonly connections: readonly GatewayConnectionConfig[];
  /** Trusted OIDC issuers (see identity-config.ts). */
  readonly identity: GatewayIdentityConfig;
  /** Grants, just-in-time access, service accounts (access-config.ts). */
  readonly access: AccessConfig;
}

const KIB = 1024;
const MIB = 1024 * KIB;

/** Defaults applied to absent fields (sizes in bytes, durations in ms). */
export const GATEWAY_DEFAULTS = Object.freeze({
  listen: Object.freeze({
    http: Object.freeze({ host: '127.0.0.1', port: 7400 }),
    tunnel: Object.freeze({ host: '127.0.0.1', port: 7401 }),
    postgres: Object.freeze({ host: '127.0.0.1', port: 7432 }),
    ssh: Object.freeze({ host: '127.0.0.1', port: 7422 }),
  }),
  dataDir: './ward-data',
  sessionWindow: MIB,
  keepaliveInterval: 10_000,
  maxFrame: 256 * KIB,
  storePath: 'ward.db',
});

const CONNECTION_TYPES = ['postgres', 'ssh', 'http'] as const;
const LLM_APIS = ['openai', 'anthropic', 'none'] as const;

// Matched after lower-casing and dropping "-"/"_", so private_key and api-key are caught too.
const CREDENTIAL_KEYS = new Set(['password', 'privatekey', 'apikey', 'secret']);
const CREDENTIAL_MESSAGE = "credentials belong in the agent's config (agent.yaml), never the gateway's";

const MAX_FRAME_RANGE = { min: KIB, max: 16 * MIB };
const SESSION_WINDOW_MAX = 1024 * MIB;
const KEEPALIVE_MIN_MS = 1_000;

const perMinuteField = (what: string) =>
  z
    .number({
      error: (issue) =>
        issue.input === undefined
          ? undefined
          : problem(
              `expected a number of ${what} per minute, found ${JSON.stringify(issue.input)}`,
              'write a whole number such as 60',
            ),
    })
    .int({ error: () => problem(`a rate of ${what} must be a whole number`, 'write a whole number such as 60') })
    .positive({ error: () => problem(`a rate of ${what} must be at least 1`, 'write 1 or more, or remove the limit') })
    .optional();

const listenField = (fallback: HostPort, what: string) =>
  hostPortField()
    .default({ ...fallback })
    .describe(`host:port for ${what}, e.g. ${formatHostPort(fallback)}`);

/**
 * The gateway file's schema. Relative paths resolve against the directory of `configPath`,
 * so one config means the same thing whatever directory `ward gateway` is started from.
 */
export function gatewayConfigSchema(configPath: string) {
  const absPath = resolve(configPath);
  const baseDir = dirname(absPath);
  const tlsFile = (what: string) =>
    pathField(baseDir, { mustExist: 'file' }).describe(
      `the path of the ${what} (PEM), e.g. tls/gateway.${what === 'certificate' ? 'crt' : 'key'}`,
    );

  return z
    .strictObject({
      listen: z
        .strictObject({
          http: listenField(GATEWAY_DEFAULTS.listen.http, 'the API, web UI and HTTP endpoints'),
          tunnel: listenField(GATEWAY_DEFAULTS.listen.tunnel, 'the agent tunnel (gRPC)'),
          postgres: listenField(GATEWAY_DEFAULTS.listen.postgres, 'Postgres clients'),
          ssh: listenField(GATEWAY_DEFAULTS.listen.ssh, 'SSH clients'),
        })
        .prefault({}),
      dataDir: pathField(baseDir)
        .default(resolve(baseDir, GATEWAY_DEFAULTS.dataDir))
        .describe('a directory path, e.g. ./ward-data'),
      tunnel: z
        .strictObject({
          tls: z
            .strictObject({ cert: tlsFile('certificate'), key: tlsFile('key') })
            .optional()
            .describe('{ cert: tls/gateway.crt, key: tls/gateway.key }'),
          insecure: z.boolean().default(false),
          sessionWindow: byteSizeField().default(GATEWAY_DEFAULTS.sessionWindow),
          keepaliveInterval: durationField().default(GATEWAY_DEFAULTS.keepaliveInterval),
          maxFrame: byteSizeField().default(GATEWAY_DEFAULTS.maxFrame),
        })
        .prefault({}),
      postgres: z
        .strictObject({
          tls: z
            .strictObject({ cert: tlsFile('certificate'), key: tlsFile('key') })
            .optional()
            .describe('{ cert: tls/postgres.crt, key: tls/postgres.key }: answer SSLRequest with TLS'),
        })
        .prefault({}),
      store: z
        .strictObject({
          driver: enumField(['sqlite'], 'a store driver').default('sqlite'),
          path: z.string().min(1).default(GATEWAY_DEFAULTS.storePath).describe('a file path such as ward.db'),
          durability: enumField(['group', 'strict'], 'a durability mode').default('group'),
        })
        .prefault({}),
      agents: z
        .array(
          z.strictObject({
            name: nameField('agent').describe('an agent name such as dc1'),
            keyHash: z
              .string()
              .regex(/^sha256:[0-9a-fA-F]{64}$/, {
                error: (issue) =>
                  problem(
                    `${typeof issue.input === 'string' ? JSON.stringify(issue.input) : 'this'} is not a key hash`,
                    'paste the keyHash that `ward agent-key create` printed (sha256: followed by 64 hex digits); never the key itself',
                  ),
              })
              .transform((s) => s.toLowerCase())
              .describe('the sha256:<64 hex> line that `ward agent-key create` printed'),
            revoked: z.boolean().default(false),
          }),
        )
        .default([]),
      connections: z
        .array(
          z.strictObject({
            name: nameField('connection').describe('a connection name such as demo-pg'),
            type: enumField(CONNECTION_TYPES, 'a connection type'),
            agent: z.string().min(1).describe('the name of an agent declared under agents'),
            description: z.string().optional(),
            llm: enumField(LLM_APIS, 'an LLM API').default('none'),
            limits: z
              .strictObject({
                requestsPerMinute: perMinuteField('requests'),
                tokensPerMinute: perMinuteField('tokens'),
                embeddingInputsPerMinute: perMinuteField('embedding inputs'),
                maxResponseBody: byteSizeField().optional(),
              })
              .optional()
              .describe(
                '{ requestsPerMinute: 60, tokensPerMinute: 100000, embeddingInputsPerMinute: 1000, maxResponseBody: 16MiB }',
              ),
          }),
        )
        .default([]),
      identity: identityConfigSchema(),
      access: accessConfigSchema(),
    })
    .superRefine(crossFieldChecks, { when: () => true })
    .transform((c) => ({
      configPath: absPath,
      ...c,
      store: {
        ...c.store,
        path: c.store.path === ':memory:' || isAbsolute(c.store.path) ? c.store.path : resolve(c.dataDir, c.store.path),
      },
    }));
}

type Issue = { path: (string | number)[]; message: string };

// Runs even when other fields failed (so all problems show at once); hence every access is
// defensive: any field may be missing or still hold its raw, unparsed value.
function crossFieldChecks(value: unknown, ctx: { addIssue(issue: Issue & { code: 'custom' }): void }): void {
  const add = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const v = asRecord(value);
  const agents = asArray(v['agents']).map(asRecord);
  const connections = asArray(v['connections']).map(asRecord);
  const listen = asRecord(v['listen']);
  const tunnel = asRecord(v['tunnel']);

  const agentNames = duplicates(agents, 'agents', 'agent', add);
  duplicates(connections, 'connections', 'connection', add);

  connections.forEach((c, i) => {
    const agent = c['agent'];
    if (typeof agent === 'string' && agent !== '' && !agentNames.has(agent)) {
      const guess = closestMatch(agent, [...agentNames]);
      add(
        ['connections', i, 'agent'],
        problem(
          `agent "${agent}" is not declared under agents`,
          guess
            ? `did you mean "${guess}"? Otherwise add it under agents with its keyHash`
            : 'add it under agents: with its keyHash (`ward agent-key create` prints one)',
        ),
      );
    }
    const type = c['type'];
    if (
      typeof type === 'string' &&
      type !== 'http' &&
      isConnectionType(type) &&
      typeof c['llm'] === 'string' &&
      c['llm'] !== 'none'
    ) {
      add(
        ['connections', i, 'llm'],
        problem(`llm applies to http connections only, this one is ${type}`, 'remove llm'),
      );
    }
    const limits = asRecord(c['limits']);
    if (c['limits'] !== undefined && typeof type === 'string' && type !== 'http' && isConnectionType(type)) {
      add(
        ['connections', i, 'limits'],
        problem(`limits apply to http connections only, this one is ${type}`, 'remove limits'),
      );
    } else {
      const llm = c['llm'] ?? 'none';
      for (const key of ['tokensPerMinute', 'embeddingInputsPerMinute'] as const) {
        if (limits[key] === undefined) continue;
        if (llm === 'none')
          add(
            ['connections', i, 'limits', key],
            problem(
              `${key} needs an LLM connection: ward reads token usage and inputs from LLM requests only`,
              'set llm: openai or llm: anthropic on this connection, or remove the limit',
            ),
          );
        else if (key === 'embeddingInputsPerMinute' && llm === 'anthropic')
          add(
            ['connections', i, 'limits', key],
            problem(
              'the Anthropic API has no embeddings endpoint',
              'remove embeddingInputsPerMinute, or use llm: openai',
            ),
          );
      }
    }
  });

  const tunnelAddress = listen['tunnel'] as HostPort | undefined;
  const hasTls = tunnel['tls'] !== undefined;
  if (tunnel['insecure'] === true && hasTls) {
    add(
      ['tunnel', 'insecure'],
      problem(
        'tunnel.tls and tunnel.insecure: true are both set',
        'remove insecure to use TLS, or remove tls for plaintext on loopback',
      ),
    );
  } else if (tunnel['insecure'] === true && isHostPort(tunnelAddress) && !isLoopback(tunnelAddress)) {
    add(
      ['tunnel', 'insecure'],
      problem(
        `plaintext tunnel refused: listen.tunnel is ${formatHostPort(tunnelAddress)}, which other machines can reach`,
        'set tunnel.tls: { cert: …, key: … } with a certificate and key, or set listen.tunnel to a loopback address such as 127.0.0.1:7401',
      ),
    );
  } else if (tunnel['insecure'] === false && !hasTls) {
    add(
      ['tunnel'],
      problem(
        'the tunnel has neither TLS nor plaintext chosen',
        'add tunnel.tls: { cert: tls/gateway.crt, key: tls/gateway.key }, or tunnel.insecure: true while listen.tunnel is loopback',
      ),
    );
  }

  const maxFrame = tunnel['maxFrame'];
  const window = tunnel['sessionWindow'];
  if (typeof maxFrame === 'number' && (maxFrame < MAX_FRAME_RANGE.min || maxFrame > MAX_FRAME_RANGE.max)) {
    add(['tunnel', 'maxFrame'], problem(`${maxFrame} bytes is outside 1KiB-16MiB`, 'write a size such as 256KiB'));
  } else if (typeof maxFrame === 'number' && typeof window === 'number' && maxFrame > window) {
    add(
      ['tunnel', 'maxFrame'],
      problem(
        `maxFrame (${maxFrame} bytes) is larger than sessionWindow (${window} bytes), so a full frame could never be sent`,
        'make maxFrame at most sessionWindow',
      ),
    );
  }
  if (typeof window === 'number' && (window < MAX_FRAME_RANGE.min || window > SESSION_WINDOW_MAX)) {
    add(['tunnel', 'sessionWindow'], problem(`${window} bytes is outside 1KiB-1GiB`, 'write a size such as 1MiB'));
  }
  const keepalive = tunnel['keepaliveInterval'];
  if (typeof keepalive === 'number' && keepalive < KEEPALIVE_MIN_MS) {
    add(
      ['tunnel', 'keepaliveInterval'],
      problem(
        `${keepalive}ms is shorter than 1s (gRPC peers answer such pings with GOAWAY)`,
        'write 1s or more, e.g. 10s',
      ),
    );
  }

  const taken = new Map<string, string>();
  for (const key of ['http', 'tunnel', 'postgres', 'ssh'] as const) {
    const address = listen[key];
    if (!isHostPort(address) || address.port === 0) continue;
    const id = `${address.host.toLowerCase()}:${address.port}`;
    const other = taken.get(id);
    if (other) {
      add(
        ['listen', key],
        problem(`${formatHostPort(address)} is already used by listen.${other}`, 'give each listener its own port'),
      );
    } else taken.set(id, key);
  }
}

function duplicates(
  items: Record<string, unknown>[],
  list: 'agents' | 'connections',
  noun: string,
  add: (path: (string | number)[], message: string) => void,
): Set<string> {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    const name = item['name'];
    if (typeof name !== 'string') return;
    const seen = first.get(name);
    if (seen === undefined) first.set(name, i);
    else
      add(
        [list, i, 'name'],
        problem(`${noun} name "${name}" is already used by ${list}[${seen}]`, `give each ${noun} a unique name`),
      );
  });
  return new Set(first.keys());
}

function isConnectionType(v: string): v is ConnectionType {
  return (CONNECTION_TYPES as readonly string[]).includes(v);
}

/** Finds credential-looking keys under `connections`, at any depth (invariant 1). */
export function findGatewayCredentials(raw: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const walk = (node: unknown, path: (string | number)[], connection: string | undefined): void => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        walk(item, [...path, i], connection);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        if (CREDENTIAL_KEYS.has(key.toLowerCase().replace(/[-_]/g, ''))) {
          const target = connection ? `connection "${connection}"` : 'the matching connection';
          out.push({
            path: [...path, key],
            message: problem(
              CREDENTIAL_MESSAGE,
              `remove "${key}" here and set it on ${target} in agent.yaml as a secret reference, e.g. ${key}: { env: NAME }`,
            ),
          });
        } else walk(child, [...path, key], connection);
      }
    }
  };
  asArray(asRecord(raw)['connections']).forEach((c, i) => {
    const name = asRecord(c)['name'];
    walk(c, ['connections', i], typeof name === 'string' ? name : undefined);
  });
  return out;
}

/**
 * Reads and validates the gateway's YAML config; throws one error listing every problem.
 *
 * @example
 * const config = loadGatewayConfig('examples/gateway.yaml');
 * config.listen.tunnel; // { host: '127.0.0.1', port: 7401 }
 * @throws WardError ERR_CONFIG_NOT_FOUND, ERR_CONFIG_UNREADABLE, ERR_CONFIG_INVALID
 */
export function loadGatewayConfig(path: string): GatewayConfig {
  return loadConfigFile(path, gatewayConfigSchema(path), { what: 'gateway', rawCheck: findGatewayCredentials });
}

/** `loadGatewayConfig` for text in memory; `path` names the file in messages and anchors relative paths. */
export function parseGatewayConfig(text: string, path: string): GatewayConfig {
  return parseConfigText(text, path, gatewayConfigSchema(path), { rawCheck: findGatewayCredentials });
}
