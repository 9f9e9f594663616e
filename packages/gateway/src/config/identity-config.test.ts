import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { parseGatewayConfig } from './gateway-config.js';
import { oidcIssuerOptions } from './identity-config.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-identity-config-'));
  file = join(dir, 'gateway.yaml');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const withIdentity = (yaml: string) => `tunnel: { insecure: true }\nidentity:\n${yaml}`;

/** `line:col field` of each problem (the part a test can rely on), checking each has a fix. */
function where(text: string): string[] {
  try {
    parseGatewayConfig(text, file);
  } catch (err) {
    assert.ok(err instanceof WardError, String(err));
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message.split('\n').map((l) => {
      const m = /^(\d+):(\d+): ([^:]+): .+ Fix: .+[.?]$/.exec(l.slice(file.length + 1));
      assert.ok(m, `malformed problem line: ${l}`);
      return `${m[1]}:${m[2]} ${m[3]}`;
    });
  }
  assert.fail('expected ERR_CONFIG_INVALID');
}

describe('gateway config: identity', () => {
  test('absent: no OIDC issuer; one issuer gets the documented defaults', () => {
    assert.deepEqual(parseGatewayConfig('tunnel: { insecure: true }\n', file).identity, { oidc: [] });
    const config = parseGatewayConfig(withIdentity('  oidc:\n    - issuer: https://login.example.com\n'), file);
    assert.deepEqual(config.identity.oidc[0], {
      issuer: 'https://login.example.com',
      audience: ['urn:ward'],
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      subjectClaim: 'sub',
      groupsClaim: 'groups',
      roles: {},
      defaultRoles: ['user'],
      clockTolerance: 30_000,
      jwksCacheMaxAge: 600_000,
      jwksCooldown: 30_000,
      requireAccessTokenType: true,
    });
    assert.ok(Object.isFrozen(config.identity.oidc[0]));
  });

  test('every field, and what the Authenticator is given', () => {
    const config = parseGatewayConfig(
      withIdentity(
        [
          '  oidc:',
          '    - issuer: https://login.example.com/realms/acme',
          '      audience: [urn:ward, account]',
          '      clientId: ward-cli',
          '      algorithms: [RS256, ES256]',
          '      subjectClaim: preferred_username',
          '      groupsClaim: realm_access.roles',
          '      roles: { admin: [platform-admins], auditor: [security], approver: [leads] }',
          '      defaultRoles: []',
          '      clockTolerance: 10s',
          '      jwksCacheMaxAge: 1h',
          '      jwksCooldown: 1m',
          '      requireAccessTokenType: false',
          '      jwksUri: https://login.example.com/realms/acme/certs',
          '    - issuer: http://127.0.0.1:8080',
          '',
        ].join('\n'),
      ),
      file,
    );
    const [keycloak, local] = oidcIssuerOptions(config.identity);
    assert.deepEqual(keycloak, {
      issuer: 'https://login.example.com/realms/acme',
      audience: ['urn:ward', 'account'],
      clientId: 'ward-cli',
      algorithms: ['RS256', 'ES256'],
      subjectClaim: 'preferred_username',
      groupsClaim: 'realm_access.roles',
      roles: { admin: ['platform-admins'], auditor: ['security'], approver: ['leads'] },
      defaultRoles: [],
      clockToleranceSeconds: 10,
      jwksCacheMaxAgeMs: 3_600_000,
      jwksCooldownMs: 60_000,
      requireAccessTokenType: false,
      jwksUri: 'https://login.example.com/realms/acme/certs',
    });
    assert.equal(local?.issuer, 'http://127.0.0.1:8080');
  });

  test('HS* and none are refused by name, like any unknown algorithm', () => {
    const text = withIdentity(
      '  oidc:\n    - issuer: https://idp.example\n      algorithms: [RS256, HS256, none, RS1]\n',
    );
    assert.deepEqual(where(text), [
      '5:27 identity.oidc[0].algorithms[1]',
      '5:34 identity.oidc[0].algorithms[2]',
      '5:40 identity.oidc[0].algorithms[3]',
    ]);
  });

  test('issuers: https, or http on loopback only; no duplicates; a URL', () => {
    assert.deepEqual(where(withIdentity('  oidc:\n    - issuer: http://idp.example.com\n')), [
      '4:15 identity.oidc[0].issuer',
    ]);
    assert.deepEqual(where(withIdentity('  oidc:\n    - issuer: login.example.com\n')), [
      '4:15 identity.oidc[0].issuer',
    ]);
    assert.deepEqual(
      where(withIdentity('  oidc:\n    - issuer: https://a.example\n    - issuer: https://a.example\n')),
      ['5:15 identity.oidc[1].issuer'],
    );
  });

  test('claims, roles, durations and unknown keys are checked with a fix', () => {
    const text = withIdentity(
      [
        '  oidc:',
        '    - issuer: https://a.example',
        '      groupsClaim: "realm access"',
        '      roles: { admins: [x] }',
        '      clockTolerance: 10m',
        '      jwksCooldown: 10',
        '      audiance: urn:ward',
        '',
      ].join('\n'),
    );
    assert.deepEqual(where(text), [
      '5:20 identity.oidc[0].groupsClaim',
      '6:16 identity.oidc[0].roles.admins',
      '7:23 identity.oidc[0].clockTolerance',
      '8:21 identity.oidc[0].jwksCooldown',
      '9:7 identity.oidc[0].audiance',
    ]);
  });
});
