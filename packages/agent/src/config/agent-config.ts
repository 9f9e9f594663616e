import { dirname, resolve } from 'node:path';
import {
  asArray,
  asRecord,
  deepFreeze,
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
  WardError,
} from '@ward/protocol';
import * as z from 'zod';
import { resolveSecret, type SecretRef, secretRefSchema } from './secret-ref.js';

export interface AgentGatewayConfig {
  /** The gateway's tunnel address (its `listen.tunnel`). */
  readonly address: HostPort;
  /** Plaintext gRPC; only ever to a loopback address. */
  readonly insecure: boolean;
  /** Absolute path of a CA bundle to verify the gateway against; system CAs when absent. */
  readonly ca?: string | undefined;
  /** Name expected in the gateway's certificate, when it differs from `address.host`. */
  readonly serverName?: string | undefined;
}

export type PostgresTlsMode = 'disable' | 'require' | 'verify-full';

export interface PostgresConnectionConfig {
  readonly name: string;
  readonly type: 'postgres';
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Absent for trust/peer authentication. */
  readonly password?: SecretRef | undefined;
  readonly tls: { readonly mode: PostgresTlsMode; readonly ca?: string | undefined };
  /** Refuse a SCRAM server asking for more PBKDF2 iterations than this (CPU exhaustion). */
  readonly maxScramIterations: number;
}

export type SshHostKey = { readonly fingerprint: string } | { readonly knownHosts: string };

export interface SshConnectionConfig {
  readonly name: string;
  readonly type: 'ssh';
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Exactly one of privateKey and password is set. */
  readonly privateKey?: SecretRef | undefined;
  readonly password?: SecretRef | undefined;
  /** How the backend's host key is verified; an unknown key is always refused. */
  readonly hostKey: SshHostKey;
}

export interface HttpConnectionConfig {
  readonly name: string;
  readonly type: 'http';
  /** Base URL of the upstream API (http: or https:, no credentials in it). */
  readonly url: string;
  /** Header the agent adds: `header: scheme secret`, or `header: secret` without a scheme. */
  readonly auth?:
    | { readonly header: string; readonly scheme?: string | undefined; readonly secret: SecretRef }
    | undefined;
  /** Upstream request timeout in milliseconds (default 60 s). */
  readonly timeout: number;
}

export type AgentConnectionConfig = PostgresConnectionConfig | SshConnectionConfig | HttpConnectionConfig;

export interface AgentConfig {
  /** Absolute path of the file this config came from. */
  readonly configPath: string;
  readonly gateway: AgentGatewayConfig;
  /** The agent key (its hash is what the gateway's `agents[].keyHash` holds). */
  readonly key: SecretRef;
  /** Tunnel streams kept open ahead of demand (default 4). */
  readonly idleStreams: number;
  /** Reconnect backoff bounds in milliseconds (defaults 250 ms and 10 s). */
  readonly reconnect: { readonly initialDelay: number; readonly maxDelay: number };
  readonly connections: readonly AgentConnectionConfig[];
}

/** `T` with every secret reference replaced by the secret it points at. */
export type WithResolvedSecrets<T> = T extends SecretRef
  ? string
  : T extends readonly (infer U)[]
    ? readonly WithResolvedSecrets<U>[]
    : T extends object
      ? { readonly [K in keyof T]: WithResolvedSecrets<T[K]> }
      : T;

export type ResolvedAgentConfig = WithResolvedSecrets<AgentConfig>;

export const AGENT_DEFAULTS = Object.freeze({
  idleStreams: 4,
  initialDelay: 250,
  maxDelay: 10_000,
  postgresPort: 5432,
  postgresTlsMode: 'require' as PostgresTlsMode,
  maxScramIterations: 100_000,
  sshPort: 22,
  httpTimeout: 60_000,
});

// Postgres's own default is 4096 iterations; a lower limit would refuse every stock server.
const SCRAM_ITERATIONS = { min: 4096, max: 10_000_000 };
const SSH_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const port = (fallback: number) =>
  z.number().int().min(1).max(65535).default(fallback).describe(`a port number such as ${fallback}`);
const text = (example: string) => z.string().min(1).describe(example);

/** The agent file's schema; relative paths resolve against the directory of `configPath`. */
export function agentConfigSchema(configPath: string) {
  const absPath = resolve(configPath);
  const baseDir = dirname(absPath);
  const secret = secretRefSchema(baseDir);
  const existingFile = (example: string) => pathField(baseDir, { mustExist: 'file' }).describe(example);

  const postgres = z.strictObject({
    name: nameField('connection').describe('a connection name such as demo-pg'),
    type: z.literal('postgres'),
    host: text('a host name or IP address such as 127.0.0.1'),
    port: port(AGENT_DEFAULTS.postgresPort),
    database: text('a database name such as app'),
    user: text('a database role such as app'),
    password: secret.optional(),
    tls: z
      .strictObject({
        mode: enumField(['disable', 'require', 'verify-full'], 'a Postgres TLS mode').default(
          AGENT_DEFAULTS.postgresTlsMode,
        ),
        ca: existingFile('the path of a CA certificate (PEM), e.g. tls/pg-ca.crt').optional(),
      })
      .prefault({}),
    maxScramIterations: z
      .number()
      .int()
      .min(SCRAM_ITERATIONS.min)
      .max(SCRAM_ITERATIONS.max)
      .default(AGENT_DEFAULTS.maxScramIterations),
  });

  const ssh = z.strictObject({
    name: nameField('connection').describe('a connection name such as demo-ssh'),
    type: z.literal('ssh'),
    host: text('a host name or IP address such as 127.0.0.1'),
    port: port(AGENT_DEFAULTS.sshPort),
    user: text('a login name such as deploy'),
    privateKey: secret.optional(),
    password: secret.optional(),
    hostKey: z
      .strictObject({
        fingerprint: z
          .string()
          .regex(SSH_FINGERPRINT, {
            error: (issue) =>
              problem(
                `${JSON.stringify(issue.input)} is not an OpenSSH SHA256 fingerprint`,
                'run `ssh-keyscan HOST | ssh-keygen -lf -` and copy the SHA256:… part (43 base64 characters after the colon)',
              ),
          })
          .optional(),
        knownHosts: existingFile('the path of a known_hosts file').optional(),
      })
      .superRefine((h, ctx) => {
        const forms = [h.fingerprint, h.knownHosts].filter((x) => x !== undefined).length;
        if (forms !== 1) {
          ctx.addIssue({
            code: 'custom',
            message: problem(
              forms === 0 ? 'hostKey names no way to verify the server' : 'hostKey has both fingerprint and knownHosts',
              'write either { fingerprint: "SHA256:…" } or { knownHosts: /path/to/known_hosts }',
            ),
          });
        }
      })
      .transform(
        (h): SshHostKey =>
          h.fingerprint !== undefined ? { fingerprint: h.fingerprint } : { knownHosts: h.knownHosts ?? '' },
      )
      .describe('{ fingerprint: "SHA256:…" } or { knownHosts: /path/to/known_hosts }'),
  });

  const http = z.strictObject({
    name: nameField('connection').describe('a connection name such as demo-openai'),
    type: z.literal('http'),
    url: text('a base URL such as https://api.openai.com'),
    auth: z
      .strictObject({
        header: z.string().regex(HTTP_TOKEN, {
          error: () => problem('is not an HTTP header name', 'write e.g. authorization or x-api-key'),
        }),
        scheme: z
          .string()
          .regex(HTTP_TOKEN, { error: () => problem('is not an auth scheme', 'write one word such as Bearer') })
          .optional(),
        secret,
      })
      .optional(),
    timeout: durationField().default(AGENT_DEFAULTS.httpTimeout),
  });

  return z
    .strictObject({
      gateway: z
        .strictObject({
          address: hostPortField().describe("the gateway's tunnel address, e.g. 127.0.0.1:7401"),
          insecure: z.boolean().default(false),
          ca: existingFile('the path of the CA certificate that signed the gateway certificate').optional(),
          serverName: text('the host name in the gateway certificate').optional(),
        })
        .describe('{ address: 127.0.0.1:7401, insecure: true } (or ca: for TLS)'),
      key: secret,
      idleStreams: z.number().int().min(0).max(64).default(AGENT_DEFAULTS.idleStreams),
      reconnect: z
        .strictObject({
          initialDelay: durationField().default(AGENT_DEFAULTS.initialDelay),
          maxDelay: durationField().default(AGENT_DEFAULTS.maxDelay),
        })
        .prefault({}),
      connections: z
        .array(
          z.discriminatedUnion('type', [postgres, ssh, http], {
            error: (issue) => {
              const type = (issue.input as { type?: unknown } | undefined)?.type;
              return issue.code === 'invalid_union' && typeof type === 'string'
                ? problem(`${JSON.stringify(type)} is not a connection type`, 'use one of postgres, ssh, http')
                : undefined;
            },
          }),
        )
        .default([]),
    })
    .superRefine(crossFieldChecks, { when: () => true })
    .transform((c) => ({ configPath: absPath, ...c }));
}

type AddIssue = (path: (string | number)[], message: string) => void;

// Runs even when other fields failed, so every access is defensive (see the gateway's twin).
function crossFieldChecks(
  value: unknown,
  ctx: { addIssue(issue: { code: 'custom'; path: (string | number)[]; message: string }): void },
) {
  const add: AddIssue = (path, message) => ctx.addIssue({ code: 'custom', path, message });
  const v = asRecord(value);
  const gateway = asRecord(v['gateway']);
  const address = gateway['address'];
  if (isHostPort(address)) {
    if (address.port === 0)
      add(
        ['gateway', 'address'],
        problem('port 0 cannot be dialled', "write the gateway's listen.tunnel port, e.g. 7401"),
      );
    if (gateway['insecure'] === true && !isLoopback(address)) {
      add(
        ['gateway', 'insecure'],
        problem(
          `plaintext tunnel refused: ${formatHostPort(address)} is not a loopback address`,
          'remove insecure and give ca: (the CA that signed the gateway certificate), or dial a loopback address such as 127.0.0.1:7401',
        ),
      );
    }
  }
  if (gateway['insecure'] === true) {
    for (const key of ['ca', 'serverName'] as const) {
      if (gateway[key] !== undefined)
        add(
          ['gateway', key],
          problem(`${key} has no effect with insecure: true`, `remove ${key}, or remove insecure to use TLS`),
        );
    }
  }

  const reconnect = asRecord(v['reconnect']);
  const initial = reconnect['initialDelay'];
  const max = reconnect['maxDelay'];
  if (typeof initial === 'number' && initial < 10) {
    add(
      ['reconnect', 'initialDelay'],
      problem(`${initial}ms would hammer the gateway`, 'write 10ms or more, e.g. 250ms'),
    );
  } else if (typeof initial === 'number' && typeof max === 'number' && initial > max) {
    add(
      ['reconnect', 'maxDelay'],
      problem(`maxDelay (${max}ms) is shorter than initialDelay (${initial}ms)`, 'make maxDelay at least initialDelay'),
    );
  }

  const firstByName = new Map<string, number>();
  asArray(v['connections']).forEach((raw, i) => {
    const c = asRecord(raw);
    const name = c['name'];
    if (typeof name === 'string') {
      const seen = firstByName.get(name);
      if (seen === undefined) firstByName.set(name, i);
      else
        add(
          ['connections', i, 'name'],
          problem(
            `connection name "${name}" is already used by connections[${seen}]`,
            'give each connection a unique name',
          ),
        );
    }
    if (c['type'] === 'postgres') checkPostgres(asRecord(c['tls']), i, add);
    if (c['type'] === 'ssh') checkSsh(c, i, add);
    if (c['type'] === 'http' && typeof c['url'] === 'string') checkUrl(c['url'], i, add);
  });
}

function checkPostgres(tls: Record<string, unknown>, i: number, add: AddIssue): void {
  if (tls['mode'] === 'verify-full' && tls['ca'] === undefined && !('ca' in tls)) {
    add(
      ['connections', i, 'tls', 'ca'],
      problem('verify-full needs the CA that signed the server certificate', 'add ca: path/to/ca.crt'),
    );
  }
  if (tls['ca'] !== undefined && tls['mode'] !== 'verify-full' && typeof tls['mode'] === 'string') {
    add(
      ['connections', i, 'tls', 'ca'],
      problem(`ca is only used with mode: verify-full (mode is ${tls['mode']})`, 'set mode: verify-full, or remove ca'),
    );
  }
}

function checkSsh(c: Record<string, unknown>, i: number, add: AddIssue): void {
  const hasKey = c['privateKey'] !== undefined;
  const hasPassword = c['password'] !== undefined;
  if (hasKey === hasPassword) {
    add(
      ['connections', i, hasKey ? 'password' : 'privateKey'],
      problem(
        hasKey ? 'privateKey and password are both set' : 'no credential: privateKey or password is needed',
        hasKey ? 'keep one of them' : 'add privateKey: { file: keys/id_ed25519 } (or password: { env: NAME })',
      ),
    );
  }
}

function checkUrl(url: string, i: number, add: AddIssue): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    add(
      ['connections', i, 'url'],
      problem(`${JSON.stringify(url)} is not a URL`, 'write a base URL such as https://api.openai.com'),
    );
    return;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    add(
      ['connections', i, 'url'],
      problem(`${parsed.protocol} URLs are not supported`, 'use an http:// or https:// URL'),
    );
  } else if (parsed.username !== '' || parsed.password !== '') {
    add(
      ['connections', i, 'url'],
      problem(
        'the URL carries credentials',
        'remove user:password@ from the URL and use auth: { header, scheme, secret } instead',
      ),
    );
  }
}

/**
 * Reads and validates the agent's YAML config. Secret references are NOT resolved here; call
 * `resolveAgentSecrets` at start-up so that a missing secret is reported on its own.
 *
 * @example
 * const config = loadAgentConfig('examples/agent.yaml');
 * const resolved = resolveAgentSecrets(config); // reads WARD_AGENT_KEY, secret files, …
 * @throws WardError ERR_CONFIG_NOT_FOUND, ERR_CONFIG_UNREADABLE, ERR_CONFIG_INVALID
 */
export function loadAgentConfig(path: string): AgentConfig {
  return loadConfigFile(path, agentConfigSchema(path), { what: 'agent' });
}

/** `loadAgentConfig` for text in memory; `path` names the file in messages and anchors relative paths. */
export function parseAgentConfig(text: string, path: string): AgentConfig {
  return parseConfigText(text, path, agentConfigSchema(path));
}

/** The secrets of an agent config, read once at start-up. */
export interface AgentSecrets {
  /** The agent key the tunnel handshake presents. */
  readonly key: string;
  /**
   * The credential of a connection: the Postgres password, the SSH private key or password
   * (exactly one is configured), or the HTTP auth secret; undefined when it has none.
   */
  connection(name: string): string | undefined;
  /** The whole config with every secret reference replaced by its value. */
  readonly config: ResolvedAgentConfig;
}

/**
 * Resolves every secret reference in the config (agent key, passwords, private keys, API
 * keys). All failures are reported together, one line each; the error's code is that of the
 * first, its cause that error or an AggregateError of all of them.
 *
 * @example
 * const secrets = resolveAgentSecrets(loadAgentConfig('agent.yaml'));
 * secrets.key; // the value of $WARD_AGENT_KEY
 * secrets.connection('demo-pg'); // the password its { env } / { file } reference points at
 * @throws WardError ERR_CONFIG_SECRET_MISSING, ERR_CONFIG_SECRET_INSECURE
 */
export function resolveAgentSecrets(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): AgentSecrets {
  const errors: WardError[] = [];
  const byConnection = new Map<string, string>();
  const resolveAt = (ref: SecretRef, field: string, connection?: string): string => {
    try {
      const value = resolveSecret(ref, { field, env });
      if (connection !== undefined) byConnection.set(connection, value);
      return value;
    } catch (err) {
      if (!(err instanceof WardError)) throw err;
      errors.push(err);
      return '';
    }
  };

  const key = resolveAt(config.key, 'key');
  const connections = config.connections.map((c, i): WithResolvedSecrets<AgentConnectionConfig> => {
    const at = `connections[${i}]`;
    if (c.type === 'postgres') {
      const { password, ...rest } = c;
      return password ? { ...rest, password: resolveAt(password, `${at}.password`, c.name) } : rest;
    }
    if (c.type === 'ssh') {
      const { password, privateKey, ...rest } = c;
      return {
        ...rest,
        ...(privateKey ? { privateKey: resolveAt(privateKey, `${at}.privateKey`, c.name) } : {}),
        ...(password ? { password: resolveAt(password, `${at}.password`, c.name) } : {}),
      };
    }
    const { auth, ...rest } = c;
    return auth ? { ...rest, auth: { ...auth, secret: resolveAt(auth.secret, `${at}.auth.secret`, c.name) } } : rest;
  });

  const first = errors[0];
  if (first) {
    const cause =
      errors.length === 1 ? first : new AggregateError(errors, `${errors.length} secrets could not be resolved`);
    throw new WardError(first.code, first.kind, errors.map((e) => `${config.configPath}: ${e.message}`).join('\n'), {
      cause,
    });
  }
  const resolved: ResolvedAgentConfig = deepFreeze({ ...config, key, connections });
  return Object.freeze({ key, connection: (name: string) => byConnection.get(name), config: resolved });
}
