import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { parseGatewayConfig } from './gateway-config.js';

const HASH = `sha256:${'ab'.repeat(32)}`;
const FILE = join('/nonexistent', 'gateway.yaml');

function parse(access: string) {
  return parseGatewayConfig(
    [
      'tunnel: { insecure: true }',
      `agents: [{ name: dc1, keyHash: "${HASH}" }]`,
      'connections: [{ name: prod-pg, type: postgres, agent: dc1 }]',
      access,
    ].join('\n'),
    FILE,
  );
}

function problems(access: string): string {
  try {
    parse(access);
  } catch (err) {
    assert.ok(err instanceof WardError);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('expected ERR_CONFIG_INVALID');
}

describe('access: config', () => {
  test('defaults: no grants, 8h JIT maximum, 10 min service tokens, 1h exchanged tokens', () => {
    const c = parse('');
    assert.deepEqual(c.access, {
      grants: [],
      jit: { maxDuration: 8 * 3_600_000 },
      serviceAccounts: { tokenTtl: 600_000 },
      tokenExchange: { ttl: 3_600_000 },
    });
  });

  test('a grant with groups, identities (bare names are users), globs and a weekday window', () => {
    const c = parse(
      [
        'access:',
        '  grants:',
        '    - id: dba-weekdays',
        '      identities: [alice, "service:etl-bot"]',
        '      groups: [dba]',
        "      connections: ['prod-*']",
        '      actions: [connect]',
        "      windows: [{ days: [mon, tue, wed, thu, fri], from: '08:00', to: '18:00' }]",
        '    - groups: [oncall]',
        "      connections: ['*']",
        '  jit: { maxDuration: 2h }',
        '  serviceAccounts: { tokenTtl: 5m }',
      ].join('\n'),
    );
    assert.deepEqual(c.access.grants[0], {
      id: 'dba-weekdays',
      identities: ['user:alice', 'service:etl-bot'],
      groups: ['dba'],
      connections: ['prod-*'],
      actions: ['connect'],
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: 8 * 3600, to: 18 * 3600 }],
    });
    assert.equal(c.access.grants[1]?.id, 'grant-2');
    assert.deepEqual(c.access.grants[1]?.actions, ['connect', 'exec']);
    assert.equal(c.access.jit.maxDuration, 7_200_000);
    assert.equal(c.access.serviceAccounts.tokenTtl, 300_000);
  });

  test('mistakes are named with a fix', () => {
    assert.match(problems("access: { grants: [{ connections: ['x'] }] }"), /names no identity and no group/);
    assert.match(
      problems("access: { grants: [{ groups: [a], connections: ['x'], windows: [{ from: '8am', to: '18:00' }] }] }"),
      /not a time of day/,
    );
    assert.match(
      problems("access: { grants: [{ groups: [a], connections: ['Prod PG'] }] }"),
      /not a connection name or pattern/,
    );
    assert.match(
      problems("access: { grants: [{ groups: [a], connections: ['x'], actions: [drop] }] }"),
      /not an action/,
    );
    assert.match(
      problems(
        "access: { grants: [{ id: g, groups: [a], connections: ['x'] }, { id: g, groups: [b], connections: ['y'] }] }",
      ),
      /used twice/,
    );
    assert.match(problems("access: { grants: [{ identities: ['robot:x'], connections: ['x'] }] }"), /not an identity/);
  });
});
