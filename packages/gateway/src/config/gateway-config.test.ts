import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WardError } from '@ward/protocol';
import { loadGatewayConfig, parseGatewayConfig } from './gateway-config.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/', import.meta.url));
const HASH = `sha256:${'ab'.repeat(32)}`;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-gw-config-'));
  file = join(dir, 'gateway.yaml');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function base(extra = ''): string {
  return [
    'tunnel: { insecure: true }',
    'agents:',
    `  - { name: dc1, keyHash: "${HASH}" }`,
    'connections:',
    '  - name: demo-pg',
    '    type: postgres',
    '    agent: dc1',
    extra,
  ].join('\n');
}

function problems(text: string): string[] {
  try {
    parseGatewayConfig(text, file);
  } catch (err) {
    assert.ok(err instanceof WardError, String(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message.split('\n');
  }
  assert.fail('expected ERR_CONFIG_INVALID');
}

/** `line:col field` of each problem, the part of a message tests can rely on. */
function where(lines: string[]): string[] {
  return lines.map((l) => {
    assert.ok(l.startsWith(`${file}:`), `problem line does not start with the file name: ${l}`);
    const m = /^(\d+):(\d+): ([^:]+): .+ Fix: .+[.?]$/.exec(l.slice(file.length + 1));
    assert.ok(m, `malformed problem line: ${l}`);
    return `${m[1]}:${m[2]} ${m[3]}`;
  });
}

/** `line:col` (1-based) of the `nth` occurrence of `needle` in `text`: what a problem should point at. */
function at(text: string, needle: string, nth = 1): string {
  let index = -1;
  for (let i = 0; i < nth; i++) {
    index = text.indexOf(needle, index + 1);
    assert.ok(index >= 0, `"${needle}" (#${nth}) not in the test text`);
  }
  const before = text.slice(0, index).split('\n');
  return `${before.length}:${(before[before.length - 1] ?? '').length + 1}`;
}

describe('gateway config', () => {
  test('examples/gateway.yaml loads, with paths resolved against its directory', () => {
    const config = loadGatewayConfig(join(EXAMPLES, 'gateway.yaml'));
    assert.equal(config.configPath, join(EXAMPLES, 'gateway.yaml'));
    assert.deepEqual(config.listen.tunnel, { host: '127.0.0.1', port: 7401 });
    assert.equal(config.dataDir, join(EXAMPLES, 'ward-data'));
    assert.equal(config.store.path, join(EXAMPLES, 'ward-data', 'ward.db'));
    assert.deepEqual(
      config.agents.map((a) => a.name),
      ['dc1'],
    );
    assert.deepEqual(
      config.connections.map((c) => `${c.name}:${c.type}:${c.agent}:${c.llm}`),
      ['demo-pg:postgres:dc1:none', 'demo-ssh:ssh:dc1:none', 'demo-openai:http:dc1:openai'],
    );
    assert.ok(Object.isFrozen(config.connections[0]));
  });

  test('defaults: loopback listeners, 1MiB window, 10s keepalive, 256KiB frames, sqlite group', () => {
    const config = parseGatewayConfig('tunnel: { insecure: true }\n', file);
    assert.deepEqual(config.listen, {
      http: { host: '127.0.0.1', port: 7400 },
      tunnel: { host: '127.0.0.1', port: 7401 },
      postgres: { host: '127.0.0.1', port: 7432 },
      ssh: { host: '127.0.0.1', port: 7422 },
    });
    assert.equal(config.tunnel.sessionWindow, 1024 * 1024);
    assert.equal(config.tunnel.keepaliveInterval, 10_000);
    assert.equal(config.tunnel.maxFrame, 256 * 1024);
    assert.equal(config.tunnel.tls, undefined);
    assert.deepEqual(config.store, { driver: 'sqlite', path: join(dir, 'ward-data', 'ward.db'), durability: 'group' });
    assert.deepEqual([config.agents.length, config.connections.length], [0, 0]);
  });

  test('unique connection names: the second one is flagged', () => {
    const text = base('  - { name: demo-pg, type: ssh, agent: dc1 }\n');
    assert.deepEqual(where(problems(text)), [`${at(text, 'demo-pg', 2)} connections[1].name`]);
  });

  test('unique agent names', () => {
    const text = base().replace('agents:\n', `agents:\n  - { name: dc1, keyHash: "${HASH}" }\n`);
    assert.deepEqual(where(problems(text)), [`${at(text, 'dc1', 2)} agents[1].name`]);
  });

  test('connection names follow [a-z0-9][a-z0-9-_]{0,62}', () => {
    const text = base('  - { name: Demo_PG, type: ssh, agent: dc1 }\n  - { name: -x, type: ssh, agent: dc1 }\n');
    assert.deepEqual(where(problems(text)), [
      `${at(text, 'Demo_PG')} connections[1].name`,
      `${at(text, '-x')} connections[2].name`,
    ]);
    const ok = parseGatewayConfig(base(`  - { name: ${'a'.repeat(63)}, type: ssh, agent: dc1 }\n`), file);
    assert.equal(ok.connections.length, 2);
    assert.equal(where(problems(base(`  - { name: ${'a'.repeat(64)}, type: ssh, agent: dc1 }\n`))).length, 1);
  });

  test('every connection.agent names a declared agent, with a did-you-mean', () => {
    const text = base().replace('agent: dc1', 'agent: dc2');
    const lines = problems(text);
    assert.deepEqual(where(lines), [`${at(text, 'dc2')} connections[0].agent`]);
    assert.match(lines[0] ?? '', /Fix: did you mean "dc1"\?/);
    const far = problems(base().replace('agent: dc1', 'agent: warehouse'));
    assert.match(far[0] ?? '', /Fix: add it under agents/);
  });

  test('insecure with a non-loopback tunnel address names tunnel.insecure and the fix', () => {
    const text = `listen: { tunnel: "0.0.0.0:7401" }\n${base()}`;
    const lines = problems(text);
    assert.deepEqual(where(lines), [`${at(text, 'true')} tunnel.insecure`]);
    assert.match(lines[0] ?? '', /Fix: .*tunnel\.tls.*loopback address/);
    for (const host of ['127.0.0.1', '[::1]', 'localhost']) {
      assert.equal(parseGatewayConfig(`listen: { tunnel: "${host}:7401" }\n${base()}`, file).tunnel.insecure, true);
    }
  });

  test('TLS: files must exist, and resolve against the config directory', () => {
    const tls = 'tunnel:\n  tls:\n    cert: tls/gateway.crt\n    key: tls/gateway.key\n';
    assert.deepEqual(where(problems(tls)), [
      `${at(tls, 'tls/gateway.crt')} tunnel.tls.cert`,
      `${at(tls, 'tls/gateway.key')} tunnel.tls.key`,
    ]);
    mkdirSync(join(dir, 'tls'));
    writeFileSync(join(dir, 'tls', 'gateway.crt'), 'cert');
    writeFileSync(join(dir, 'tls', 'gateway.key'), 'key');
    const config = parseGatewayConfig(`listen: { tunnel: "0.0.0.0:7401" }\n${tls}`, file);
    assert.deepEqual(config.tunnel.tls, { cert: join(dir, 'tls/gateway.crt'), key: join(dir, 'tls/gateway.key') });
    assert.equal(config.tunnel.insecure, false);
  });

  test('TLS and insecure together, or neither, are refused', () => {
    mkdirSync(join(dir, 'tls'));
    writeFileSync(join(dir, 'tls', 'c'), 'x');
    const both = 'tunnel: { tls: { cert: tls/c, key: tls/c }, insecure: true }\n';
    assert.deepEqual(where(problems(both)), [`${at(both, 'true')} tunnel.insecure`]);
    const neither = 'tunnel: { maxFrame: 64KiB }\n';
    assert.deepEqual(where(problems(neither)), [`${at(neither, '{')} tunnel`]);
    assert.deepEqual(where(problems('listen: {}\n')), ['1:1 tunnel']);
  });

  test('maxFrame may not exceed sessionWindow; keepalive is at least 1s; sizes and durations are checked', () => {
    const text = 'tunnel: { insecure: true, sessionWindow: 64KiB, maxFrame: 128KiB, keepaliveInterval: 500ms }\n';
    assert.deepEqual(where(problems(text)), [
      `${at(text, '128KiB')} tunnel.maxFrame`,
      `${at(text, '500ms')} tunnel.keepaliveInterval`,
    ]);
    const bad = 'tunnel: { insecure: true, sessionWindow: big, keepaliveInterval: 10 }\n';
    assert.deepEqual(where(problems(bad)), [
      `${at(bad, 'big')} tunnel.sessionWindow`,
      `${at(bad, '10 ')} tunnel.keepaliveInterval`,
    ]);
  });

  test('two listeners on one address are refused (port 0 excepted)', () => {
    const text = 'listen: { http: "127.0.0.1:9000", ssh: "127.0.0.1:9000" }\ntunnel: { insecure: true }\n';
    assert.deepEqual(where(problems(text)), [`${at(text, '"127.0.0.1:9000"', 2)} listen.ssh`]);
    const ephemeral = parseGatewayConfig(
      'listen: { http: "127.0.0.1:0", tunnel: "127.0.0.1:0", postgres: "127.0.0.1:0", ssh: "127.0.0.1:0" }\ntunnel: { insecure: true }\n',
      file,
    );
    assert.equal(ephemeral.listen.ssh.port, 0);
  });

  test('llm applies to http connections only', () => {
    const onPg = base('    llm: openai\n');
    assert.deepEqual(where(problems(onPg)), [`${at(onPg, 'openai')} connections[0].llm`]);
    const ok = parseGatewayConfig(base('  - { name: ai, type: http, agent: dc1, llm: anthropic }\n'), file);
    assert.equal(ok.connections[1]?.llm, 'anthropic');
    const unknown = base('  - { name: ai, type: http, agent: dc1, llm: gemini }\n');
    assert.deepEqual(where(problems(unknown)), [`${at(unknown, 'gemini')} connections[1].llm`]);
  });

  test('connections[].limits: rates are whole positive numbers, token and embedding limits need an LLM connection', () => {
    const ok = parseGatewayConfig(
      base(
        '  - name: ai\n    type: http\n    agent: dc1\n    llm: openai\n    limits: { requestsPerMinute: 60, tokensPerMinute: 100000, embeddingInputsPerMinute: 500, maxResponseBody: 16MiB }\n',
      ),
      file,
    );
    assert.deepEqual(ok.connections[1]?.limits, {
      requestsPerMinute: 60,
      tokensPerMinute: 100000,
      embeddingInputsPerMinute: 500,
      maxResponseBody: 16 * 1024 * 1024,
    });
    assert.equal(ok.connections[0]?.limits, undefined);
    const bad = base(
      '  - { name: ai, type: http, agent: dc1, llm: openai, limits: { requestsPerMinute: 0, tokensPerMinute: 1.5, burst: 3 } }\n',
    );
    assert.deepEqual(
      where(problems(bad)).sort(),
      [
        `${at(bad, '0,')} connections[1].limits.requestsPerMinute`,
        `${at(bad, '1.5')} connections[1].limits.tokensPerMinute`,
        `${at(bad, 'burst')} connections[1].limits.burst`,
      ].sort(),
    );
    const plain = base('  - { name: api, type: http, agent: dc1, limits: { tokensPerMinute: 10 } }\n');
    const lines = problems(plain);
    assert.deepEqual(where(lines), [`${at(plain, '10 ')} connections[1].limits.tokensPerMinute`]);
    assert.match(lines[0] ?? '', /Fix: set llm: openai/);
    const anthropic = base(
      '  - { name: c, type: http, agent: dc1, llm: anthropic, limits: { embeddingInputsPerMinute: 10 } }\n',
    );
    assert.deepEqual(where(problems(anthropic)), [
      `${at(anthropic, '10 ')} connections[1].limits.embeddingInputsPerMinute`,
    ]);
    const onPg = base('    limits: { requestsPerMinute: 5 }\n');
    assert.deepEqual(where(problems(onPg)), [`${at(onPg, '{ requestsPerMinute')} connections[0].limits`]);
  });

  test('keyHash must be sha256:<64 hex>; upper case is normalised', () => {
    for (const wrong of ['sha256:abc', 'wak_plainkey', `sha1:${'a'.repeat(40)}`]) {
      const text = base().replace(HASH, wrong);
      assert.deepEqual(where(problems(text)), [`${at(text, `"${wrong}"`)} agents[0].keyHash`]);
    }
    const upper = parseGatewayConfig(base().replace(HASH, HASH.toUpperCase().replace('SHA256', 'sha256')), file);
    assert.equal(upper.agents[0]?.keyHash, HASH);
    assert.equal(upper.agents[0]?.revoked, false);
  });

  test('store: relative path under dataDir, absolute kept, :memory: kept; durability checked', () => {
    const rel = parseGatewayConfig(
      'tunnel: { insecure: true }\ndataDir: /var/lib/ward\nstore: { path: audit.db, durability: strict }\n',
      file,
    );
    assert.deepEqual(rel.store, { driver: 'sqlite', path: '/var/lib/ward/audit.db', durability: 'strict' });
    assert.equal(
      parseGatewayConfig('tunnel: { insecure: true }\nstore: { path: /x/y.db }\n', file).store.path,
      '/x/y.db',
    );
    assert.equal(
      parseGatewayConfig('tunnel: { insecure: true }\nstore: { path: ":memory:" }\n', file).store.path,
      ':memory:',
    );
    const text = 'tunnel: { insecure: true }\nstore: { durability: lazy, driver: postgres }\n';
    assert.deepEqual(where(problems(text)), [
      `${at(text, 'lazy')} store.durability`,
      `${at(text, 'postgres')} store.driver`,
    ]);
  });
});

describe('the gateway refuses credentials (invariant 1)', () => {
  const MESSAGE = "credentials belong in the agent's config (agent.yaml), never the gateway's";
  for (const key of ['password', 'privateKey', 'apiKey', 'secret', 'private_key', 'API-KEY']) {
    test(`${key} under a connection`, () => {
      const text = base(`    ${key}: hunter2\n`);
      const lines = problems(text);
      assert.deepEqual(where(lines), [`${at(text, key)} connections[0].${key}`]);
      assert.ok(lines[0]?.includes(MESSAGE), lines[0]);
      assert.match(lines[0] ?? '', /connection "demo-pg" in agent\.yaml/);
    });
  }

  test('at any depth under connections, alongside the unknown parent key', () => {
    const text = base('    auth: { header: authorization, secret: { env: OPENAI_API_KEY } }\n');
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, 'auth')} connections[0].auth`,
      `${at(text, 'secret')} connections[0].auth.secret`,
    ]);
    assert.ok(lines[1]?.includes(MESSAGE));
  });

  test('an ordinary unknown key under a connection is only "unknown"', () => {
    const lines = problems(base('    hostname: db1\n'));
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]?.includes(MESSAGE));
  });
});

describe('several problems at once', () => {
  test('are all reported, one per line, in file order', () => {
    const text = [
      'listen:',
      '  tunnel: 10.0.0.5:7401', // 2
      '  htp: 127.0.0.1:1', // 3: did-you-mean
      'tunnel: { insecure: true, maxFrame: 1MiB, sessionWindow: 512KiB }', // 4: insecure + maxFrame
      'agents:',
      '  - { name: dc1, keyHash: nope }', // 6
      'connections:',
      '  - { name: a, type: pg, agent: dc1, password: x }', // 8: type + credential
      '  - { name: a, type: ssh, agent: dc9 }', // 9: duplicate + agent
      '',
    ].join('\n');
    const lines = problems(text);
    assert.deepEqual(where(lines), [
      `${at(text, 'htp:')} listen.htp`,
      `${at(text, 'true')} tunnel.insecure`,
      `${at(text, '1MiB')} tunnel.maxFrame`,
      `${at(text, 'nope')} agents[0].keyHash`,
      `${at(text, 'pg,')} connections[0].type`,
      `${at(text, 'password')} connections[0].password`,
      `${at(text, 'a, type: ssh')} connections[1].name`,
      `${at(text, 'dc9')} connections[1].agent`,
    ]);
  });

  test('a missing file is ERR_CONFIG_NOT_FOUND', () => {
    assert.throws(
      () => loadGatewayConfig(join(dir, 'absent.yaml')),
      (err: unknown) => err instanceof WardError && err.code === 'ERR_CONFIG_NOT_FOUND',
    );
  });
});
