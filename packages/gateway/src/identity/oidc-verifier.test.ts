import assert from 'node:assert/strict';
import { createHmac, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from 'jose';
import { AuthDenied, authDenialData } from './auth-denied.js';
import { Authenticator } from './authenticator.js';
import { OidcVerifier } from './oidc-verifier.js';
import { MAX_TOKEN_BYTES, TokenService } from './token-service.js';

interface Key {
  kid: string;
  privateKey: KeyLike;
  jwk: JWK;
}

async function rsaKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomBytes(6).toString('hex');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A local IdP: discovery + JWKS, counted, that can be taken down. */
class LocalIdp {
  server: Server = createServer((req, res) => {
    if (!this.up) {
      res.writeHead(503).end();
      return;
    }
    if (req.url === '/.well-known/openid-configuration') {
      this.discoveryHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: this.issuer, jwks_uri: `${this.issuer}/jwks` }));
    } else if (req.url === '/jwks') {
      this.jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
    } else res.writeHead(404).end();
  });
  issuer = '';
  keys: Key[] = [];
  up = true;
  jwksHits = 0;
  discoveryHits = 0;

  async start(): Promise<void> {
    this.keys = [await rsaKey()];
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  sign(
    claims: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
    key = this.keys[0],
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const body: Record<string, unknown> = {
      iss: this.issuer,
      aud: 'urn:ward',
      sub: 'alice',
      iat: now,
      exp: now + 300,
      email: 'alice@example.test',
      groups: ['eng', 'platform-admins'],
      ...claims,
    };
    for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
    const k = key as Key;
    return new SignJWT(body)
      .setProtectedHeader({ alg: 'RS256', kid: k.kid, typ: 'at+jwt', ...header })
      .sign(k.privateKey);
  }
}

async function denial(promise: Promise<unknown>): Promise<AuthDenied> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AuthDenied, `expected AuthDenied, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the token to be refused');
}

function unsigned(header: object, claims: object, sig = ''): string {
  const b = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b(header)}.${b(claims)}.${sig}`;
}

describe('OidcVerifier', () => {
  const idp = new LocalIdp();
  before(() => idp.start());
  after(() => new Promise<void>((r) => idp.server.close(() => r())));

  const verifier = (extra: Partial<ConstructorParameters<typeof OidcVerifier>[0]> = {}, clock?: { now(): number }) =>
    new OidcVerifier(
      { issuer: idp.issuer, audience: 'urn:ward', roles: { admin: ['platform-admins'], auditor: ['sec'] }, ...extra },
      clock,
    );
  const header = (token: string) => JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString());

  it('verifies a good token: subject, groups, roles from groups plus the default role, display', async () => {
    const v = verifier();
    const token = await idp.sign();
    const who = await v.verify(token, header(token));
    assert.equal(who.subject, 'alice');
    assert.equal(who.kind, 'user');
    assert.equal(who.issuer, idp.issuer);
    assert.deepEqual(who.groups, ['eng', 'platform-admins']);
    assert.deepEqual(who.roles.sort(), ['admin', 'user']);
    assert.equal(who.email, 'alice@example.test');
    assert.equal(who.displayName, 'alice@example.test');
    assert.match(who.tokenId, /^sha256:/);
  });

  it('reads groups from a nested claim, a custom subject claim, and no default role when told so', async () => {
    const v = verifier({ groupsClaim: 'realm_access.roles', subjectClaim: 'oid', defaultRoles: [] });
    const token = await idp.sign({ oid: 'u-42', groups: undefined, realm_access: { roles: ['sec', 7] } });
    const who = await v.verify(token, header(token));
    assert.equal(who.subject, 'u-42');
    assert.deepEqual(who.groups, ['sec']);
    assert.deepEqual(who.roles, ['auditor']);
  });

  it('marks a client_credentials token (sub = client_id) as a service', async () => {
    const token = await idp.sign({ sub: 'etl-bot', client_id: 'etl-bot', groups: [] });
    const who = await verifier().verify(token, header(token));
    assert.equal(who.kind, 'service');
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, () => Promise<string>, string, string, string?][] = [
    ['expired', () => idp.sign({ exp: now() - 120 }), 'ERR_AUTH_TOKEN_EXPIRED', 'expired'],
    ['nbf in the future', () => idp.sign({ nbf: now() + 600 }), 'ERR_AUTH_TOKEN_INVALID', 'not_yet_valid', 'nbf'],
    ['no exp', () => idp.sign({ exp: undefined }), 'ERR_AUTH_TOKEN_INVALID', 'claim_missing', 'exp'],
    ['wrong audience', () => idp.sign({ aud: 'urn:other' }), 'ERR_AUTH_TOKEN_INVALID', 'audience_mismatch'],
    ['wrong issuer', () => idp.sign({ iss: 'https://evil.example' }), 'ERR_AUTH_TOKEN_INVALID', 'issuer_mismatch'],
    ['an ID token (typ JWT)', () => idp.sign({}, { typ: 'JWT' }), 'ERR_AUTH_TOKEN_INVALID', 'type_mismatch'],
    ['no subject', () => idp.sign({ sub: undefined }), 'ERR_AUTH_TOKEN_INVALID', 'claim_missing', 'sub'],
    [
      'alg none',
      async () =>
        unsigned({ alg: 'none', typ: 'at+jwt' }, { iss: idp.issuer, aud: 'urn:ward', sub: 'a', exp: now() + 60 }),
      'ERR_AUTH_TOKEN_INVALID',
      'alg_not_allowed',
    ],
    [
      'HS256 signed with the RSA public key',
      async () => {
        const k = idp.keys[0] as Key;
        const pem = createPublicKey({ key: k.jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
        const h = { alg: 'HS256', kid: k.kid, typ: 'at+jwt' };
        const c = { iss: idp.issuer, aud: 'urn:ward', sub: 'a', exp: now() + 60 };
        const input = unsigned(h, c).slice(0, -1);
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      },
      'ERR_AUTH_TOKEN_INVALID',
      'alg_not_allowed',
    ],
    [
      'the right kid with a wrong key',
      async () => idp.sign({}, {}, { ...(await rsaKey()), kid: (idp.keys[0] as Key).kid }),
      'ERR_AUTH_TOKEN_INVALID',
      'signature_invalid',
    ],
  ];
  for (const [name, make, code, reason, claim] of cases) {
    it(`refuses ${name} (${reason})`, async () => {
      const token = await make();
      const err = await denial(verifier().verify(token, header(token)));
      assert.equal(err.code, code);
      assert.equal(err.reason, reason);
      if (claim) assert.equal(err.claim, claim);
      assert.equal(err.issuer, idp.issuer);
    });
  }

  it('accepts an untyped token only when the issuer is configured not to mark access tokens', async () => {
    const token = await idp.sign({}, { typ: 'JWT' });
    const who = await verifier({ requireAccessTokenType: false }).verify(token, header(token));
    assert.equal(who.subject, 'alice');
  });

  it('tolerates 30 s of clock skew by default, not more', async () => {
    const v = verifier();
    const ok = await idp.sign({ exp: now() - 10 });
    await v.verify(ok, header(ok));
    const late = await idp.sign({ exp: now() - 60 });
    assert.equal((await denial(v.verify(late, header(late)))).reason, 'expired');
  });

  it('picks up a rotated key (new kid first) and keeps accepting the old one while published', async () => {
    const v = verifier({ jwksCooldownMs: 0 });
    const old = await idp.sign();
    await v.verify(old, header(old));
    const fresh = await rsaKey();
    idp.keys = [fresh, ...idp.keys];
    const before = idp.jwksHits;
    const token = await idp.sign({}, {}, fresh);
    assert.equal((await v.verify(token, header(token))).subject, 'alice');
    assert.equal(idp.jwksHits, before + 1, 'one refetch for the new kid');
    await v.verify(old, header(old));
    assert.equal(idp.jwksHits, before + 1, 'the old key is still cached');
    idp.keys = [fresh];
  });

  it('lets 50 tokens with random kids cause at most one JWKS fetch per cooldown', async () => {
    const v = verifier({ jwksCooldownMs: 60_000 });
    const good = await idp.sign();
    await v.verify(good, header(good));
    const before = idp.jwksHits;
    const tokens = await Promise.all(
      Array.from({ length: 50 }, () => idp.sign({}, { kid: randomBytes(8).toString('hex') })),
    );
    const errors = await Promise.all(tokens.map((t) => denial(v.verify(t, header(t)))));
    assert.ok(errors.every((e) => e.reason === 'kid_unknown'));
    assert.ok(idp.jwksHits - before <= 1, `JWKS fetched ${idp.jwksHits - before} times`);
    const more = await Promise.all(Array.from({ length: 10 }, () => idp.sign({}, { kid: 'x' })));
    await Promise.all(more.map((t) => denial(v.verify(t, header(t)))));
    assert.ok(idp.jwksHits - before <= 1, 'still within the cooldown: no new fetch');
  });

  it('keeps working from its cache while the IdP is down, then fails closed past the max age', async () => {
    let t = Date.now();
    const clock = { now: () => t };
    const v = verifier({ jwksCacheMaxAgeMs: 600_000, jwksCooldownMs: 30_000 }, clock);
    const token = await idp.sign();
    await v.verify(token, header(token));
    idp.up = false;
    try {
      t += 300_000; // within the max age: cached keys still do
      assert.equal((await v.verify(token, header(token))).subject, 'alice');
      t += 400_000; // past it: fail closed, distinct from a bad token
      const err = await denial(v.verify(token, header(token)));
      assert.equal(err.code, 'ERR_AUTH_IDP_UNAVAILABLE');
      assert.equal(err.kind, 'unavailable');
      assert.equal(err.reason, 'idp_unavailable');
      const fetches = v.fetches;
      await denial(v.verify(token, header(token)));
      assert.equal(v.fetches, fetches, 'no new fetch while cooling down after a failure');
    } finally {
      idp.up = true;
    }
    t += 31_000;
    assert.equal((await v.verify(token, header(token))).subject, 'alice', 'back once the IdP is');
  });

  it('fails closed when the IdP was never reachable, without a fetch per token', async () => {
    idp.up = false;
    try {
      const v = verifier();
      const token = await idp.sign();
      assert.equal((await denial(v.verify(token, header(token)))).code, 'ERR_AUTH_IDP_UNAVAILABLE');
      const fetches = v.fetches;
      for (let i = 0; i < 5; i++) await denial(v.verify(token, header(token)));
      assert.equal(v.fetches, fetches);
    } finally {
      idp.up = true;
    }
  });

  it('refuses a discovery document that names another issuer', async () => {
    const v = new OidcVerifier({ issuer: `${idp.issuer}/`, audience: 'urn:ward' });
    const token = await idp.sign({ iss: `${idp.issuer}/` });
    assert.equal((await denial(v.verify(token, header(token)))).reason, 'idp_unavailable');
  });
});

describe('Authenticator', () => {
  const idp = new LocalIdp();
  let dir: string;
  let tokens: TokenService;
  before(async () => {
    await idp.start();
    dir = mkdtempSync(join(tmpdir(), 'ward-auth-'));
    tokens = await TokenService.open({ keyPath: join(dir, 'token-key.pem'), issuer: 'urn:ward:gateway' });
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await new Promise<void>((r) => idp.server.close(() => r()));
  });

  it('dispatches on the unverified issuer: gateway tokens and OIDC tokens both work', async () => {
    const auth = new Authenticator(tokens, [{ issuer: idp.issuer, audience: 'urn:ward', clientId: 'ward-cli' }]);
    const gw = await tokens.issue({ subject: 'root', roles: ['admin'], ttlSeconds: 60 });
    assert.equal((await auth.authenticate(gw)).issuer, 'urn:ward:gateway');
    const oidc = await idp.sign();
    assert.equal((await auth.authenticate(oidc)).issuer, idp.issuer);
    assert.deepEqual(auth.providers(), [{ issuer: idp.issuer, clientId: 'ward-cli', audience: ['urn:ward'] }]);
  });

  it('refuses a 1 MB token before parsing it, an unknown issuer and garbage, recording only known issuers', async () => {
    const auth = new Authenticator(tokens, [{ issuer: idp.issuer, audience: 'urn:ward' }]);
    const hits = idp.jwksHits + idp.discoveryHits;
    const huge = await denial(auth.authenticate(`eyJ${'A'.repeat(1024 * 1024)}`));
    assert.equal(huge.reason, 'token_too_large');
    const justOver = await denial(auth.authenticate('a'.repeat(MAX_TOKEN_BYTES + 1)));
    assert.equal(justOver.reason, 'token_too_large');
    const unknown = await denial(auth.authenticate(await idp.sign({ iss: 'https://evil.example' })));
    assert.equal(unknown.reason, 'issuer_unknown');
    assert.equal(unknown.code, 'ERR_AUTH_TOKEN_INVALID');
    assert.deepEqual(authDenialData(unknown), { reason: 'issuer_unknown' }, 'an attacker-chosen iss is not recorded');
    assert.equal((await denial(auth.authenticate('not-a-jwt'))).reason, 'malformed');
    assert.equal(idp.jwksHits + idp.discoveryHits, hits, 'none of these reached the IdP');
  });

  it('gives gateway-token failures a reason too', async () => {
    const auth = new Authenticator(tokens, []);
    const gw = await tokens.issue({ subject: 'root', roles: ['admin'], ttlSeconds: 60 });
    const [h, p] = gw.split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`;
    const err = await denial(auth.authenticate(forged));
    assert.equal(err.reason, 'signature_invalid');
    assert.equal(err.code, 'ERR_AUTH_TOKEN_INVALID');
  });
});
