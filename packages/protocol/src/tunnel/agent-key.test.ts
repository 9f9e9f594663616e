import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { agentKeyHashEquals, generateAgentKey, hashAgentKey, isLoopbackHost, splitHostPort } from './agent-key.js';

describe('agent keys', () => {
  test('generateAgentKey: wak_ prefix and 32 random bytes in base64url', () => {
    const a = generateAgentKey();
    const b = generateAgentKey();
    assert.match(a, /^wak_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a.slice(4), 'base64url').length, 32);
    assert.notEqual(a, b);
  });

  test('hashAgentKey: sha256:<64 hex> of the UTF-8 key, deterministic', () => {
    const key = 'wak_example';
    const h = hashAgentKey(key);
    assert.match(h, /^sha256:[0-9a-f]{64}$/);
    assert.equal(h, `sha256:${createHash('sha256').update(key).digest('hex')}`);
    assert.equal(hashAgentKey(key), h);
    assert.notEqual(hashAgentKey(`${key}x`), h);
    assert.equal(h.includes(key), false);
  });

  test('agentKeyHashEquals compares whole strings, any length', () => {
    const h = hashAgentKey('k1');
    assert.equal(agentKeyHashEquals(h, hashAgentKey('k1')), true);
    assert.equal(agentKeyHashEquals(h, hashAgentKey('k2')), false);
    assert.equal(agentKeyHashEquals(h, h.slice(0, -1)), false);
    assert.equal(agentKeyHashEquals('', ''), true);
  });
});

describe('isLoopbackHost', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['[::ffff:127.0.0.1]', true],
    ['::ffff:7f00:1', true],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['0.0.0.0', false],
    ['::', false],
    ['::ffff:10.0.0.1', false],
    ['::2', false],
    ['gateway.example.com', false],
    ['127.0.0.1.nip.io', false],
    ['localhost.example.com', false],
    ['', false],
  ];
  for (const [host, expected] of cases) {
    test(`${JSON.stringify(host)} → ${expected}`, () => assert.equal(isLoopbackHost(host), expected));
  }
});

describe('splitHostPort', () => {
  test('v4, names and bracketed v6', () => {
    assert.deepEqual(splitHostPort('127.0.0.1:7401'), { host: '127.0.0.1', port: 7401 });
    assert.deepEqual(splitHostPort('gw.example.com:0'), { host: 'gw.example.com', port: 0 });
    assert.deepEqual(splitHostPort('[::1]:443'), { host: '::1', port: 443 });
  });
  test('rejects an address without a port', () => {
    assert.throws(() => splitHostPort('127.0.0.1'));
    assert.throws(() => splitHostPort('[::1]'));
  });
});
