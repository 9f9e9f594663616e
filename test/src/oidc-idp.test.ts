// The test IdP helper itself: tokens it issues through real grants verify with jose against
// its published JWKS, and the device flow and key rotation behave as a real IdP's do.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { completeDeviceLogin, type Idp, startIdp } from './helpers/oidc-idp.js';

describe('test IdP helper (oidc-provider)', () => {
  let idp: Idp;
  before(async () => {
    idp = await startIdp({ accounts: { alice: { groups: ['eng', 'admins'] }, bob: { groups: ['eng'] } } });
  });
  after(async () => {
    await idp.stop();
  });

  it('publishes discovery with the issuer and the JWKS', async () => {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as { issuer: string; jwks_uri: string; device_authorization_endpoint: string };
    assert.equal(meta.issuer, idp.issuer);
    assert.equal(meta.jwks_uri, idp.jwksUri);
    assert.ok(meta.device_authorization_endpoint);
  });

  it('mints an at+jwt access token for urn:ward that verifies against its JWKS, with groups', async () => {
    const tokens = await idp.mintTokens('alice');
    const jwks = jose.createLocalJWKSet(idp.publicJwks());
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
      issuer: idp.issuer,
      audience: 'urn:ward',
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.kid, idp.currentKid);
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.groups, ['eng', 'admins']);
    assert.equal(payload.email, 'alice@example.test');
    // The ID token is marked apart: audience is the client, typ is not at+jwt.
    assert.ok(tokens.id_token);
    const id = await jose.jwtVerify(tokens.id_token, jwks, { issuer: idp.issuer, audience: idp.clientId });
    assert.notEqual(id.protectedHeader.typ, 'at+jwt');
    await assert.rejects(jose.jwtVerify(tokens.id_token, jwks, { audience: 'urn:ward' }), {
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    });
    // offline_access with prompt=consent gives a refresh token that works.
    assert.ok(tokens.refresh_token);
    const refreshed = await idp.refresh(tokens.refresh_token);
    const again = await jose.jwtVerify(refreshed.access_token, jwks, { audience: 'urn:ward', typ: 'at+jwt' });
    assert.equal(again.payload.sub, 'alice');
  });

  it('overrides groups per token and issues client_credentials tokens', async () => {
    const token = await idp.mintAccessToken('bob', { groups: ['auditors'] });
    assert.deepEqual(jose.decodeJwt(token).groups, ['auditors']);
    const svc = await idp.serviceToken();
    const { payload } = await jose.jwtVerify(svc.access_token, jose.createLocalJWKSet(idp.publicJwks()), {
      audience: 'urn:ward',
      typ: 'at+jwt',
    });
    assert.equal(payload.client_id, idp.serviceClient.clientId);
  });

  it('completes a device flow headlessly for the chosen account', async () => {
    const auth = await fetch(`${idp.issuer}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: idp.clientId, scope: 'openid ward', resource: idp.resource }),
    });
    assert.equal(auth.status, 200);
    const device = (await auth.json()) as { device_code: string; verification_uri_complete: string };
    idp.nextLogin('bob');
    await completeDeviceLogin(device.verification_uri_complete);
    const res = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: device.device_code,
        client_id: idp.clientId,
      }),
    });
    const body = (await res.json()) as { access_token: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    const { payload } = await jose.jwtVerify(body.access_token, jose.createLocalJWKSet(idp.publicJwks()), {
      audience: 'urn:ward',
      typ: 'at+jwt',
    });
    assert.equal(payload.sub, 'bob');
  });

  it('rotates keys: new kid signs, old kept published, JWKS fetches counted', async () => {
    const old = await idp.mintAccessToken('alice');
    const oldKid = idp.currentKid;
    await idp.rotateKeys();
    assert.notEqual(idp.currentKid, oldKid);
    idp.resetCounters();
    const res = await fetch(idp.jwksUri);
    const published = (await res.json()) as jose.JSONWebKeySet;
    assert.equal(idp.jwksRequests, 1);
    assert.ok(published.keys.some((k) => k.kid === oldKid));
    assert.ok(
      published.keys.every((k) => k.d === undefined),
      'no private parts published',
    );
    const fresh = await idp.mintAccessToken('alice');
    assert.equal(jose.decodeProtectedHeader(fresh).kid, idp.currentKid);
    const jwks = jose.createLocalJWKSet(published);
    await jose.jwtVerify(old, jwks, { audience: 'urn:ward' });
    await jose.jwtVerify(fresh, jwks, { audience: 'urn:ward' });
    await idp.retireOldKeys();
    await assert.rejects(jose.jwtVerify(old, jose.createLocalJWKSet(idp.publicJwks()), { audience: 'urn:ward' }), {
      code: 'ERR_JWKS_NO_MATCHING_KEY',
    });
  });

  it('forges attack tokens the tests need', async () => {
    const jwks = jose.createLocalJWKSet(idp.publicJwks());
    const good = await idp.sign({ sub: 'alice' });
    await jose.jwtVerify(good, jwks, { issuer: idp.issuer, audience: 'urn:ward', typ: 'at+jwt' });
    const noExp = await idp.sign({ sub: 'alice', exp: undefined });
    assert.equal(jose.decodeJwt(noExp).exp, undefined);
    await assert.rejects(jose.jwtVerify(idp.forge.algNone(), jwks), { code: 'ERR_JOSE_NOT_SUPPORTED' });
    await assert.rejects(jose.jwtVerify(idp.forge.hs256WithPublicKey(), jwks), { code: 'ERR_JOSE_NOT_SUPPORTED' });
    await assert.rejects(jose.jwtVerify(await idp.forge.wrongKeyRightKid(), jwks), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  it('answers 503 while set unavailable', async () => {
    idp.setAvailable(false);
    try {
      assert.equal((await fetch(idp.jwksUri)).status, 503);
    } finally {
      idp.setAvailable(true);
    }
    assert.equal((await fetch(idp.jwksUri)).status, 200);
  });
});
