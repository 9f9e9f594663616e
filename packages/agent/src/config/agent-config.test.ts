import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfigText, WardError } from '@ward/protocol';
import * as z from 'zod';
import { loadAgentConfig, parseAgentConfig, resolveAgentSecrets } from './agent-config.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/', import.meta.url));
const FINGERPRINT = `SHA256:${'A'.repeat(43)}`;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-agent-config-'));
  file = join(dir, 'agent.yaml');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const HEAD = 'gateway: { address: "127.0.0.1:7401", insecure: true }\nkey: { env: WARD_AGENT_KEY }\n';

function problems(text: string): string[] {
  try {
    parseAgentConfig(text, file);
  } catch (err) {
    assert.ok(err instanceof WardError, String(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message.split('\n');
  }
  assert.fail('expected ERR_CONFIG_INVALID');
}

function where(lines: string[]): string[] {
  return lines.map((l) => {
    assert.ok(l.startsWith(`${file}:`), `problem line does not start with the file name: ${l}`);
    const m = /^(\d+):(\d+): ([^:]+): .+ Fix: .+[.?]$/.exec(l.slice(file.length + 1));
    assert.ok(m, `malformed problem line: ${l}`);
    return `${m[1]}:${m[2]} ${m[3]}`;
  });
}

/** `line:col` (1-based) of the `nth` occurrence of `needle` in `text`. */
function at(text: string, needle: string, nth = 1): string {
  let index = -1;
  for (let i = 0; i < nth; i++) {
    index = text.indexOf(needle, index + 1);
    assert.ok(index >= 0, `"${needle}" (#${nth}) not in the test text`);
  }
  const before = text.slice(0, index).split('\n');
  return `${before.length}:${(before[before.length - 1] ?? '').length + 1}`;
}

describe('the examples', () => {
  test('examples/agent.yaml loads and its secrets resolve once provided', () => {
    copyFileSync(join(EXAMPLES, 'agent.yaml'), file);
    mkdirSync(join(dir, 'keys'));
    writeFileSync(
      join(dir, 'keys', 'id_ed25519'),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
      {
        mode: 0o600,
      },
    );
    const config = loadAgentConfig(file);
    assert.deepEqual(config.gateway.address, { host: '127.0.0.1', port: 7401 });
    assert.deepEqual(config.key, { env: 'WARD_AGENT_KEY' });
    assert.deepEqual(
      config.connections.map((c) => `${c.name}:${c.type}`),
      ['demo-pg:postgres', 'demo-ssh:ssh', 'demo-openai:http'],
    );
    const env = { WARD_AGENT_KEY: 'wak_x', DEMO_PG_PASSWORD: 'pg-pw', OPENAI_API_KEY: 'sk-1' };
    const secrets = resolveAgentSecrets(config, env);
    assert.equal(secrets.key, 'wak_x');
    assert.equal(secrets.connection('demo-pg'), 'pg-pw');
    assert.equal(
      secrets.connection('demo-ssh'),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----',
    );
    assert.equal(secrets.connection('demo-openai'), 'sk-1');
    assert.equal(secrets.connection('nope'), undefined);
    const pg = secrets.config.connections[0];
    assert.ok(pg?.type === 'postgres');
    assert.equal(pg.password, 'pg-pw');
    assert.ok(Object.isFrozen(secrets.config.connections[2]));
  });

  test('the examples are wired to each other (agent key, names, tunnel address)', () => {
    const readme = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
    const keys = [...readme.matchAll(/WARD_AGENT_KEY=(wak_[A-Za-z0-9_-]+)/g)].map((m) => m[1]);
    assert.ok(keys.length >= 2, 'README shows the demo key and uses it in the agent command');
    assert.equal(new Set(keys).size, 1, 'README uses one demo key throughout');
    const hash = `sha256:${createHash('sha256')
      .update(keys[0] ?? '', 'utf8')
      .digest('hex')}`;

    // The gateway's own loader lives in @ward/gateway, which the agent must not depend on; a
    // loose read of the same file is enough to compare names.
    const gatewayShape = z.object({
      listen: z.object({ tunnel: z.string() }),
      agents: z.array(z.object({ name: z.string(), keyHash: z.string() })),
      connections: z.array(z.object({ name: z.string(), agent: z.string() })),
    });
    const gatewayPath = join(EXAMPLES, 'gateway.yaml');
    const gateway = parseConfigText(readFileSync(gatewayPath, 'utf8'), gatewayPath, gatewayShape);
    const agent = loadAgentConfig(join(EXAMPLES, 'agent.yaml'));

    const me = gateway.agents.find((a) => a.keyHash === hash);
    assert.ok(me, `no agent in gateway.yaml has keyHash ${hash}`);
    assert.equal(`${agent.gateway.address.host}:${agent.gateway.address.port}`, gateway.listen.tunnel);
    assert.deepEqual(
      agent.connections.map((c) => c.name),
      gateway.connections.map((c) => c.name),
    );
    for (const c of gateway.connections) assert.equal(c.agent, me.name);
    assert.deepEqual(agent.key, { env: 'WARD_AGENT_KEY' });
  });
});

describe('agent config', () => {
  test('defaults', () => {
    const config = parseAgentConfig(HEAD, file);
    assert.equal(config.configPath, file);
    assert.equal(config.idleStreams, 4);
    assert.deepEqual(config.reconnect, { initialDelay: 250, maxDelay: 10_000 });
    assert.deepEqual(config.connections, []);
    const c = parseAgentConfig(
      `${HEAD}connections:\n  - { name: p, type: postgres, host: db, database: app, user: app }\n  - { name: s, type: ssh, host: h, user: u, password: { env: P }, hostKey: { fingerprint: "${FINGERPRINT}" } }\n  - { name: h, type: http, url: "https://api.example.com" }\n`,
      file,
    );
    assert.deepEqual(c.connections[0], {
      name: 'p',
      type: 'postgres',
      host: 'db',
      port: 5432,
      database: 'app',
      user: 'app',
      tls: { mode: 'require' },
      maxScramIterations: 100_000,
    });
    assert.equal(c.connections[1]?.type === 'ssh' && c.connections[1].port, 22);
    assert.equal(c.connections[2]?.type === 'http' && c.connections[2].timeout, 60_000);
  });

  test('insecure is refused unless the gateway address is loopback', () => {
    const text = 'gateway: { address: "10.1.2.3:7401", insecure: true }\nkey: { env: K }\n';
    const lines = problems(text);
    assert.deepEqual(where(lines), [`${at(text, 'true')} gateway.insecure`]);
    assert.match(lines[0] ?? '', /Fix: .*ca:.*loopback/);
    assert.equal(
      parseAgentConfig('gateway: { address: "[::1]:7401", insecure: true }\nkey: { env: K }\n', file).gateway.insecure,
      true,
    );
    assert.equal(
      parseAgentConfig('gateway: { address: "10.1.2.3:7401" }\nkey: { env: K }\n', file).gateway.insecure,
      false,
    );
  });

  test('TLS settings conflict with insecure; the CA file must exist; port 0 cannot be dialled', () => {
    writeFileSync(join(dir, 'ca.crt'), 'x');
    const text = 'gateway: { address: "127.0.0.1:0", insecure: true, ca: ca.crt, serverName: gw }\nkey: { env: K }\n';
    assert.deepEqual(where(problems(text)), [
      `${at(text, '"127.0.0.1:0"')} gateway.address`,
      `${at(text, 'ca.crt')} gateway.ca`,
      `${at(text, 'gw ')} gateway.serverName`,
    ]);
    const missing = 'gateway: { address: "gw.example.com:443", ca: tls/ca.crt }\nkey: { env: K }\n';
    assert.deepEqual(where(problems(missing)), [`${at(missing, 'tls/ca.crt')} gateway.ca`]);
    const ok = parseAgentConfig(
      'gateway: { address: "gw.example.com:443", ca: ca.crt, serverName: gw }\nkey: { env: K }\n',
      file,
    );
    assert.equal(ok.gateway.ca, join(dir, 'ca.crt'));
  });

  test('an inline credential is refused, naming the field', () => {
    const text = 'gateway: { address: "127.0.0.1:7401", insecure: true }\nkey: wak_inline\n';
    const lines = problems(text);
    assert.deepEqual(where(lines), [`${at(text, 'wak_inline')} key`]);
    assert.match(lines[0] ?? '', /inline is not allowed\. Fix: write \{ env: NAME \} or \{ file:/);
  });

  test('a secret reference needs exactly one source; typos get a did-you-mean', () => {
    const text = `${HEAD}connections:\n  - { name: a, type: postgres, host: h, database: d, user: u, password: { env: A, file: /x } }\n  - { name: b, type: postgres, host: h, database: d, user: u, password: {} }\n  - { name: c, type: postgres, host: h, database: d, user: u, password: { evn: A } }\n  - { name: d, type: postgres, host: h, database: d, user: u, password: { env: "not valid" } }\n  - { name: e, type: postgres, host: h, database: d, user: u, password: { env: A, allowInsecurePermissions: true } }\n`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, '{ env: A, file')} connections[0].password`,
      `${at(text, '{}')} connections[1].password`,
      `${at(text, 'evn')} connections[2].password.evn`,
      `${at(text, '"not valid"')} connections[3].password.env`,
      `${at(text, 'true } }')} connections[4].password.allowInsecurePermissions`,
    ]);
    assert.match(lines[2] ?? '', /did you mean "env"\?/);
  });

  test('connection types: "pg" is named with the allowed ones; typos inside a branch get a did-you-mean', () => {
    const text = `${HEAD}connections:\n  - { name: a, type: pg, host: h }\n  - { name: b, host: h }\n  - { name: c, type: postgres, host: h, database: d, user: u, pasword: { env: P } }\n`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, 'pg,')} connections[0].type`,
      `${at(text, '{ name: b')} connections[1].type`,
      `${at(text, 'pasword')} connections[2].pasword`,
    ]);
    assert.match(lines[0] ?? '', /"pg" is not a connection type\. Fix: use one of postgres, ssh, http\./);
    assert.match(lines[1] ?? '', /is missing\. Fix: add type: one of postgres, ssh, http\./);
    assert.match(lines[2] ?? '', /did you mean "password"\?/);
  });

  test('unique connection names', () => {
    const text = `${HEAD}connections:\n  - { name: x, type: http, url: "http://a" }\n  - { name: x, type: http, url: "http://b" }\n`;
    assert.deepEqual(where(problems(text)), [`${at(text, 'x,', 2)} connections[1].name`]);
  });

  test('postgres: verify-full needs ca, ca needs verify-full, SCRAM limit and port bounds', () => {
    writeFileSync(join(dir, 'pg-ca.crt'), 'x');
    const pg = (extra: string) =>
      `  - { name: p${extra.length}, type: postgres, host: h, database: d, user: u, ${extra} }\n`;
    const text = `${HEAD}connections:\n${pg('tls: { mode: verify-full }')}${pg('tls: { mode: require, ca: pg-ca.crt }')}${pg('maxScramIterations: 4095')}${pg('port: 70000')}${pg('tls: { mode: prefer }')}`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, '{ mode: verify-full }')} connections[0].tls.ca`,
      `${at(text, 'pg-ca.crt')} connections[1].tls.ca`,
      `${at(text, '4095')} connections[2].maxScramIterations`,
      `${at(text, '70000')} connections[3].port`,
      `${at(text, 'prefer')} connections[4].tls.mode`,
    ]);
    const ok = parseAgentConfig(`${HEAD}connections:\n${pg('tls: { mode: verify-full, ca: pg-ca.crt }')}`, file);
    const c = ok.connections[0];
    assert.ok(c?.type === 'postgres');
    assert.deepEqual(c.tls, { mode: 'verify-full', ca: join(dir, 'pg-ca.crt') });
  });

  test('ssh: exactly one credential and exactly one host-key check, fingerprint format', () => {
    writeFileSync(join(dir, 'known_hosts'), 'x');
    const ssh = (n: string, extra: string) => `  - { name: ${n}, type: ssh, host: h, user: u, ${extra} }\n`;
    const fp = `hostKey: { fingerprint: "${FINGERPRINT}" }`;
    const text = `${HEAD}connections:\n${[
      ssh('a', fp),
      ssh('b', `privateKey: { file: k }, password: { env: P }, ${fp}`),
      ssh('c', 'password: { env: P }, hostKey: {}'),
      ssh('d', `password: { env: P }, hostKey: { fingerprint: "${FINGERPRINT}", knownHosts: known_hosts }`),
      ssh('e', 'password: { env: P }, hostKey: { fingerprint: "SHA256:short" }'),
      ssh('f', 'password: { env: P }'),
      ssh('g', 'password: { env: P }, hostKey: { knownHosts: nope }'),
    ].join('')}`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, '{ name: a')} connections[0].privateKey`,
      `${at(text, '{ env: P }, hostKey: { fingerprint')} connections[1].password`,
      `${at(text, '{}')} connections[2].hostKey`,
      `${at(text, '{ fingerprint', 3)} connections[3].hostKey`,
      `${at(text, '"SHA256:short"')} connections[4].hostKey.fingerprint`,
      `${at(text, '{ name: f')} connections[5].hostKey`,
      `${at(text, 'nope')} connections[6].hostKey.knownHosts`,
    ]);
    const ok = parseAgentConfig(
      `${HEAD}connections:\n${ssh('k', 'privateKey: { file: k }, hostKey: { knownHosts: known_hosts }')}`,
      file,
    );
    const c = ok.connections[0];
    assert.ok(c?.type === 'ssh');
    assert.deepEqual(c.hostKey, { knownHosts: join(dir, 'known_hosts') });
    assert.deepEqual(c.privateKey, { file: join(dir, 'k'), allowInsecurePermissions: false });
  });

  test('http: URL scheme, no credentials in the URL, header names, timeout with a unit', () => {
    const http = (n: string, extra: string) => `  - { name: ${n}, type: http, ${extra} }\n`;
    const text = `${HEAD}connections:\n${[
      http('a', 'url: "ftp://x"'),
      http('b', 'url: "https://user:pw@api.example.com"'),
      http('c', 'url: "not a url"'),
      http('d', 'url: "http://x", auth: { header: "bad header", secret: { env: K } }'),
      http('e', 'url: "http://x", timeout: 60'),
    ].join('')}`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, '"ftp://x"')} connections[0].url`,
      `${at(text, '"https://user')} connections[1].url`,
      `${at(text, '"not a url"')} connections[2].url`,
      `${at(text, '"bad header"')} connections[3].auth.header`,
      `${at(text, '60 ')} connections[4].timeout`,
    ]);
    const ok = parseAgentConfig(
      `${HEAD}connections:\n${http('k', 'url: "https://api.anthropic.com", auth: { header: x-api-key, secret: { env: A } }, timeout: 2m')}`,
      file,
    );
    const c = ok.connections[0];
    assert.ok(c?.type === 'http');
    assert.deepEqual(c.auth, { header: 'x-api-key', secret: { env: 'A' } });
    assert.equal(c.timeout, 120_000);
  });

  test('reconnect: initialDelay at least 10ms and at most maxDelay; idleStreams bounded', () => {
    const text = `${HEAD}reconnect: { initialDelay: 1m, maxDelay: 10s }\nidleStreams: 65\n`;
    assert.deepEqual(where(problems(text)), [`${at(text, '10s')} reconnect.maxDelay`, `${at(text, '65')} idleStreams`]);
    const fast = `${HEAD}reconnect: { initialDelay: 1ms }\n`;
    assert.deepEqual(where(problems(fast)), [`${at(fast, '1ms')} reconnect.initialDelay`]);
  });

  test('several problems at once, and a missing file', () => {
    const text =
      'gateway: { adress: "127.0.0.1:7401" }\nkey: hunter2\nidleStreams: many\nconnections:\n  - { name: A, type: ftp }\n';
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, 'adress')} gateway.adress`,
      `${at(text, 'hunter2')} key`,
      `${at(text, 'many')} idleStreams`,
      `${at(text, 'ftp')} connections[0].type`,
    ]);
    assert.throws(
      () => loadAgentConfig(join(dir, 'absent.yaml')),
      (err: unknown) => err instanceof WardError && err.code === 'ERR_CONFIG_NOT_FOUND',
    );
  });
});

describe('resolveAgentSecrets', () => {
  const config = (password: string, key = '{ env: WARD_AGENT_KEY }') =>
    parseAgentConfig(
      `gateway: { address: "127.0.0.1:7401", insecure: true }\nkey: ${key}\nconnections:\n  - { name: db, type: postgres, host: h, database: d, user: u, password: ${password} }\n  - { name: open, type: postgres, host: h, database: d, user: u }\n`,
      file,
    );

  test('env and file references resolve; a connection without a secret has none', () => {
    writeFileSync(join(dir, 'pw'), 's3cret\r\n', { mode: 0o600 });
    const secrets = resolveAgentSecrets(config('{ file: pw }'), { WARD_AGENT_KEY: 'k1' });
    assert.equal(secrets.key, 'k1');
    assert.equal(secrets.connection('db'), 's3cret');
    assert.equal(secrets.connection('open'), undefined);
    const open = secrets.config.connections[1];
    assert.ok(open?.type === 'postgres' && !('password' in open));
  });

  test('every missing secret is reported at once, naming its field', () => {
    let caught: unknown;
    try {
      resolveAgentSecrets(config('{ env: DB_PASSWORD }'), {});
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof WardError);
    assert.equal(caught.code, 'ERR_CONFIG_SECRET_MISSING');
    const lines = caught.message.split('\n');
    assert.equal(lines.length, 2);
    assert.ok(lines[0]?.startsWith(`${file}: key: environment variable WARD_AGENT_KEY is not set.`), lines[0]);
    assert.ok(
      lines[1]?.startsWith(`${file}: connections[0].password: environment variable DB_PASSWORD is not set.`),
      lines[1],
    );
    assert.ok(caught.cause instanceof AggregateError);
    assert.equal(caught.cause.errors.length, 2);
  });

  test('a group/other-readable secret file is refused; the first problem sets the code', () => {
    writeFileSync(join(dir, 'pw'), 'x\n');
    chmodSync(join(dir, 'pw'), 0o640);
    assert.throws(
      () => resolveAgentSecrets(config('{ file: pw }'), { WARD_AGENT_KEY: 'k' }),
      (err: unknown) =>
        err instanceof WardError &&
        err.code === 'ERR_CONFIG_SECRET_INSECURE' &&
        err.kind === 'permission_denied' &&
        err.message.includes('connections[0].password') &&
        err.message.includes('chmod 600'),
    );
    const ok = resolveAgentSecrets(config('{ file: pw, allowInsecurePermissions: true }'), { WARD_AGENT_KEY: 'k' });
    assert.equal(ok.connection('db'), 'x');
  });
});
