import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { TokenService } from './token-service.js';

async function service(t: TestContext, issuer = 'urn:ward:test') {
  const dir = mkdtempSync(join(tmpdir(), 'ward-tokens-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, tokens: await TokenService.open({ keyPath: join(dir, 'key.pem'), issuer }) };
}

const rejectsWith = (p: Promise<unknown>, code: string) =>
  assert.rejects(p, (err: { code?: string }) => err.code === code);

test('issues and verifies a token; the key file is private and reused', async (t) => {
  const { dir, tokens } = await service(t);
  assert.equal(statSync(join(dir, 'key.pem')).mode & 0o077, 0);
  const token = await tokens.issue({ subject: 'alice', roles: ['admin', 'user'], ttlSeconds: 60 });
  const who = await tokens.verify(token);
  assert.equal(who.subject, 'alice');
  assert.deepEqual(who.roles, ['admin', 'user']);
  assert.equal(who.kind, 'user');
  const again = await TokenService.open({ keyPath: join(dir, 'key.pem'), issuer: 'urn:ward:test' });
  assert.equal((await again.verify(token)).subject, 'alice');
});

test('refuses tokens that fail any check, saying little', async (t) => {
  const { tokens } = await service(t);
  const { tokens: other } = await service(t);
  const { tokens: otherIssuer } = await service(t, 'urn:ward:elsewhere');
  const good = await tokens.issue({ subject: 'a', roles: ['user'], ttlSeconds: 60 });
  await rejectsWith(
    tokens.verify(await other.issue({ subject: 'a', roles: ['user'], ttlSeconds: 60 })),
    'ERR_AUTH_TOKEN_INVALID',
  );
  await rejectsWith(
    tokens.verify(await otherIssuer.issue({ subject: 'a', roles: ['user'], ttlSeconds: 60 })),
    'ERR_AUTH_TOKEN_INVALID',
  );
  await rejectsWith(
    tokens.verify(
      new UnsecuredJWT({ sub: 'a', roles: ['admin'] })
        .setIssuer('urn:ward:test')
        .setAudience('urn:ward')
        .setExpirationTime('1h')
        .setIssuedAt()
        .encode(),
    ),
    'ERR_AUTH_TOKEN_INVALID',
  );
  await rejectsWith(tokens.verify(`${good.slice(0, -4)}AAAA`), 'ERR_AUTH_TOKEN_INVALID');
  await rejectsWith(tokens.verify('x'.repeat(1024 * 1024)), 'ERR_AUTH_TOKEN_INVALID');
  await rejectsWith(tokens.verify('not.a.jwt'), 'ERR_AUTH_TOKEN_INVALID');
  // HS256 with a shared secret is not an accepted algorithm, whatever the secret.
  const hs = await new SignJWT({ roles: ['admin'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
    .setIssuer('urn:ward:test')
    .setAudience('urn:ward')
    .setSubject('a')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('guessable'));
  await rejectsWith(tokens.verify(hs), 'ERR_AUTH_TOKEN_INVALID');
  // Right key type, but no expiry: exp is required.
  const { privateKey } = generateKeyPairSync('ed25519');
  const noExp = await new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
    .setIssuer('urn:ward:test')
    .setAudience('urn:ward')
    .setSubject('a')
    .setIssuedAt()
    .sign(privateKey);
  await rejectsWith(tokens.verify(noExp), 'ERR_AUTH_TOKEN_INVALID');
});

test('an expired token says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ward-tokens-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokens = await TokenService.open({
    keyPath: join(dir, 'key.pem'),
    issuer: 'urn:ward:test',
    clockToleranceSeconds: 0,
  });
  const token = await tokens.issue({ subject: 'a', roles: ['user'], ttlSeconds: 1 });
  await new Promise((r) => setTimeout(r, 2100));
  await rejectsWith(tokens.verify(token), 'ERR_AUTH_TOKEN_EXPIRED');
});
