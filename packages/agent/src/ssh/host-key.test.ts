import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import ssh2 from 'ssh2';
import {
  checkKnownHosts,
  fingerprintMatches,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  parseFingerprint,
  parseKnownHosts,
  sha256Fingerprint,
} from './host-key.js';

function newKey(type: 'ed25519' | 'ecdsa' = 'ed25519'): { line: string; blob: Buffer; type: string } {
  const pair =
    type === 'ed25519'
      ? ssh2.utils.generateKeyPairSync('ed25519')
      : ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
  const [keyType, base64] = pair.public.split(/\s+/) as [string, string];
  return { line: `${keyType} ${base64}`, blob: Buffer.from(base64, 'base64'), type: keyType };
}

function hashedName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('fingerprints', () => {
  test('SHA256: base64 of the blob digest, no padding', () => {
    const { blob } = newKey();
    const fp = sha256Fingerprint(blob);
    assert.equal(fp, `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`);
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  test('match, mismatch, tolerated padding and whitespace, malformed pins', () => {
    const { blob } = newKey();
    const fp = sha256Fingerprint(blob);
    const cases: Array<[string, boolean]> = [
      [fp, true],
      [`${fp}=`, true],
      [`  ${fp}\n`, true],
      [sha256Fingerprint(newKey().blob), false],
      [fp.toLowerCase(), false],
      ['MD5:00:11:22', false],
      ['SHA256:short', false],
      ['', false],
      [fp.replace('SHA256:', 'SHA512:'), false],
    ];
    for (const [pin, expected] of cases) assert.equal(fingerprintMatches(pin, blob), expected, pin);
    assert.equal(parseFingerprint('SHA256:!!!')?.byteLength, undefined);
  });

  test('keyTypeOf reads the blob header and refuses garbage', () => {
    assert.equal(keyTypeOf(newKey().blob), 'ssh-ed25519');
    assert.equal(keyTypeOf(newKey('ecdsa').blob), 'ecdsa-sha2-nistp256');
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0])), undefined);
    assert.equal(keyTypeOf(Buffer.from([0, 0, 1, 0, 1])), undefined);
  });
});

describe('known_hosts', () => {
  const key = newKey();
  const other = newKey();
  const ecdsa = newKey('ecdsa');

  test('the looked-up name: host on port 22, [host]:port otherwise, lower case', () => {
    assert.equal(knownHostsName('Example.COM', 22), 'example.com');
    assert.equal(knownHostsName('10.0.0.1', 2222), '[10.0.0.1]:2222');
  });

  const table: Array<{ name: string; file: string; host: string; port: number; result: string }> = [
    { name: 'plain name', file: `web.internal ${key.line}`, host: 'web.internal', port: 22, result: 'match' },
    { name: 'comma list', file: `a,web.internal,b ${key.line} c`, host: 'web.internal', port: 22, result: 'match' },
    { name: '[host]:port', file: `[127.0.0.1]:2222 ${key.line}`, host: '127.0.0.1', port: 2222, result: 'match' },
    { name: 'port must match', file: `[127.0.0.1]:2222 ${key.line}`, host: '127.0.0.1', port: 22, result: 'unknown' },
    {
      name: 'plain does not cover other ports',
      file: `127.0.0.1 ${key.line}`,
      host: '127.0.0.1',
      port: 2222,
      result: 'unknown',
    },
    { name: 'wildcard *', file: `*.internal ${key.line}`, host: 'db.internal', port: 22, result: 'match' },
    { name: 'wildcard ?', file: `web?.internal ${key.line}`, host: 'web1.internal', port: 22, result: 'match' },
    { name: 'dot is literal', file: `web.internal ${key.line}`, host: 'webxinternal', port: 22, result: 'unknown' },
    {
      name: 'negation vetoes',
      file: `*.internal,!db.internal ${key.line}`,
      host: 'db.internal',
      port: 22,
      result: 'unknown',
    },
    { name: 'case-insensitive', file: `WEB.internal ${key.line}`, host: 'web.INTERNAL', port: 22, result: 'match' },
    {
      name: 'hashed name',
      file: `${hashedName('web.internal')} ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'match',
    },
    {
      name: 'hashed [host]:port',
      file: `${hashedName('[10.1.2.3]:2200')} ${key.line}`,
      host: '10.1.2.3',
      port: 2200,
      result: 'match',
    },
    {
      name: 'hashed other name',
      file: `${hashedName('other')} ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'unknown',
    },
    {
      name: 'other key for host',
      file: `web.internal ${other.line}`,
      host: 'web.internal',
      port: 22,
      result: 'mismatch',
    },
    {
      name: 'one of several keys',
      file: `web.internal ${other.line}\nweb.internal ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'match',
    },
    {
      name: 'revoked wins',
      file: `web.internal ${key.line}\n@revoked * ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'revoked',
    },
    {
      name: 'cert-authority lines are not host keys',
      file: `@cert-authority * ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'unknown',
    },
    {
      name: 'comments and blanks',
      file: `# web.internal ${key.line}\n\n   \nweb.internal ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'match',
    },
    {
      name: 'type field must match the blob',
      file: `web.internal ssh-rsa ${key.line.split(' ')[1]}`,
      host: 'web.internal',
      port: 22,
      result: 'unknown',
    },
    {
      name: 'garbage lines are skipped',
      file: `web.internal\n@bogus x y z\nweb.internal ssh-ed25519 !!!\nweb.internal ${key.line}`,
      host: 'web.internal',
      port: 22,
      result: 'match',
    },
  ];
  for (const row of table) {
    test(row.name, () => {
      const verdict = checkKnownHosts(parseKnownHosts(row.file), row.host, row.port, key.blob);
      assert.equal(verdict.result, row.result);
    });
  }

  test('a mismatch names the key types known for the host; known types order the algorithms', () => {
    const entries = parseKnownHosts(
      `web.internal ${ecdsa.line}\nweb.internal ${other.line}\nweb.internal ${ecdsa.line}`,
    );
    const verdict = checkKnownHosts(entries, 'web.internal', 22, key.blob);
    assert.deepEqual(verdict, { result: 'mismatch', knownTypes: ['ecdsa-sha2-nistp256', 'ssh-ed25519'] });
    assert.deepEqual(knownKeyTypes(entries, 'web.internal', 22), ['ecdsa-sha2-nistp256', 'ssh-ed25519']);
    assert.deepEqual(hostKeyAlgorithmsFor(['ssh-rsa', 'ssh-ed25519']), [
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
    ]);
  });

  test('CRLF files and line numbers', () => {
    const entries = parseKnownHosts(`# header\r\nweb.internal ${key.line}\r\n`);
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.line, 2);
    assert.deepEqual(checkKnownHosts(entries, 'web.internal', 22, key.blob), { result: 'match', line: 2 });
  });
});
