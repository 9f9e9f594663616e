// A real OpenID Provider for the tests: `oidc-provider` (the certified Node.js implementation)
// on 127.0.0.1, port chosen by the OS, with keys the test holds so it can also forge attack
// tokens signed by the IdP's own key. Interactions are headless: the interaction endpoint
// logs in the account the test chose and grants consent programmatically, so a plain fetch
// with a cookie jar (or a real browser) completes the authorization-code and device flows.
//
//   const idp = await startIdp({ accounts: { alice: { groups: ['eng'] } } });
//   const token = await idp.mintAccessToken('alice');          // a real grant, at+jwt, aud urn:ward
//   idp.nextLogin('bob');                                      // the next interactive login is bob
//   const cb = await completeBrowserLogin(idp.authorizationUrl({ redirectUri, codeChallenge, state }));
//   await idp.stop();
import { createHash, createHmac, createPublicKey, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC, errors as oidcErrors } from 'oidc-provider';

export interface IdpAccount {
  /** Default `<id>@example.test`. */
  email?: string;
  /** Default: the account id, capitalised. */
  name?: string;
  /** Default `[]`. */
  groups?: string[];
}

export interface IdpOptions {
  /** Accounts by id (the `sub`). Default: alice (groups engineering, admins), bob (engineering), carol (none). */
  accounts?: Record<string, IdpAccount>;
  /** The account an interaction logs in when `nextLogin` queued none. Default: the first account. */
  defaultAccount?: string;
  /** The resource indicator (access-token audience). Must be a URI. Default `urn:ward`. */
  resource?: string;
  /** Public client id (the CLI). Default `ward-cli`. */
  clientId?: string;
  /** Confidential client for services (`client_credentials`). Default `ward-service`. */
  serviceClientId?: string;
  /** Algorithm of access tokens: RS256 (default) or ES256. ID tokens are RS256. */
  accessTokenAlg?: 'RS256' | 'ES256';
  /** Access-token lifetime in seconds. Default 600. */
  accessTokenTtl?: number;
  /** Where the groups go in access and ID tokens; a dotted path nests (`realm_access.roles`). Default `groups`. */
  groupsClaim?: string;
  /** Extra redirect URIs for the public client (besides `http://127.0.0.1/callback`, any port). */
  redirectUris?: string[];
}

export interface IdpSigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: jose.CryptoKey;
  publicJwk: jose.JWK;
  privateJwk: jose.JWK;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  id_token?: string;
  refresh_token?: string;
  scope?: string;
}

export interface AuthorizationUrlOptions {
  redirectUri: string;
  /** S256 challenge of the code verifier (see `pkcePair()`). */
  codeChallenge: string;
  state?: string;
  /** Default `openid email profile groups offline_access ward`. */
  scope?: string;
  /** Default the IdP's resource (`urn:ward`); `null` leaves it out. */
  resource?: string | null;
  /** Default `consent` (oidc-provider drops `offline_access`, hence the refresh token, without it). */
  prompt?: string;
}

export interface Idp {
  /** `http://127.0.0.1:<port>`; discovery at `${issuer}/.well-known/openid-configuration`. */
  issuer: string;
  /** The public CLI client (`ward-cli`): authorization_code + PKCE, device_code, refresh_token. */
  clientId: string;
  /** The confidential service client (`client_credentials`) and its secret. */
  serviceClient: { clientId: string; clientSecret: string };
  /** The access-token audience (`urn:ward`). */
  resource: string;
  /** The registered loopback redirect URI; any port is accepted (RFC 8252 §7.3). */
  redirectUri: string;
  /** `${issuer}/jwks`. */
  jwksUri: string;
  /** How many times the JWKS endpoint was fetched (by anyone) since start or `resetCounters()`. */
  readonly jwksRequests: number;
  /** Current signing keys, newest first; `[0]` of an alg is the one the IdP signs with. */
  readonly keys: IdpSigningKey[];
  /** The kid the IdP signs access tokens with now. */
  readonly currentKid: string;
  /** The public JWKS as the IdP publishes it. */
  publicJwks(): jose.JSONWebKeySet;
  /** The account the next interactive login (browser or device) signs in as. Queued, FIFO. */
  nextLogin(accountId: string): void;
  /** Add or change an account (e.g. its groups) for tokens issued from now on. */
  setAccount(accountId: string, account: IdpAccount): void;
  /**
   * A valid access token for `accountId`, obtained through a real authorization-code grant
   * (PKCE) against the provider's endpoints. `groups` overrides the account's groups for this
   * token (and later ones) .
   */
  mintAccessToken(accountId: string, options?: { groups?: string[] }): Promise<string>;
  /** Like `mintAccessToken` but the whole token response (access, ID and refresh tokens). */
  mintTokens(accountId: string, options?: { groups?: string[]; scope?: string }): Promise<TokenResponse>;
  /** A `client_credentials` access token for the service client. */
  serviceToken(): Promise<TokenResponse>;
  /** Exchange a refresh token at the token endpoint (public client). */
  refresh(refreshToken: string): Promise<TokenResponse>;
  /** The authorization URL for the public client (the CLI's `ward login` builds the same). */
  authorizationUrl(options: AuthorizationUrlOptions): string;
  /**
   * Sign any payload with the IdP's real private key: for crafting attack tokens. Defaults
   * fill in iss, aud, sub, iat, exp (+5 min), client_id; a claim set to `undefined` is left
   * out (`{ exp: undefined }` → no exp). Header defaults `{ alg, kid: currentKid, typ: 'at+jwt' }`.
   */
  sign(payload?: Record<string, unknown>, header?: Partial<jose.JWSHeaderParameters>): Promise<string>;
  /** Ready-made hostile tokens (each otherwise well-formed, for `sub`). */
  forge: {
    /** `alg: none`, no signature. */
    algNone(payload?: Record<string, unknown>): string;
    /** HS256 with the IdP's RSA public key (PEM) as the HMAC secret: the classic key-confusion attack. */
    hs256WithPublicKey(payload?: Record<string, unknown>): string;
    /** The IdP's current `kid` but signed by a different RSA key. */
    wrongKeyRightKid(payload?: Record<string, unknown>): Promise<string>;
  };
  /** New RS256 and ES256 keys first; the old ones stay published until `retireOldKeys()`. */
  rotateKeys(): Promise<void>;
  /** Drop all keys but the newest of each alg (tokens signed by old keys no longer verify). */
  retireOldKeys(): Promise<void>;
  /** While false, every endpoint answers 503 (the IdP is "down" but keeps its port). */
  setAvailable(available: boolean): void;
  resetCounters(): void;
  stop(): Promise<void>;
}

const DEFAULT_ACCOUNTS: Record<string, IdpAccount> = {
  alice: { groups: ['engineering', 'admins'] },
  bob: { groups: ['engineering'] },
  carol: { groups: [] },
};

const RS_SCOPE = 'ward';
const DEFAULT_SCOPE = `openid email profile groups offline_access ${RS_SCOPE}`;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

async function newKey(alg: 'RS256' | 'ES256'): Promise<IdpSigningKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk, privateJwk };
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next === 'object' && next !== null) node = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      node[part] = created;
      node = created;
    }
  }
  node[parts[parts.length - 1] as string] = value;
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** A PKCE verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Starts a real `oidc-provider` on 127.0.0.1 (port 0). */
export async function startIdp(options: IdpOptions = {}): Promise<Idp> {
  const accounts = new Map<string, IdpAccount>(Object.entries(options.accounts ?? DEFAULT_ACCOUNTS));
  const defaultAccount = options.defaultAccount ?? [...accounts.keys()][0] ?? 'alice';
  const resource = options.resource ?? 'urn:ward';
  const clientId = options.clientId ?? 'ward-cli';
  const serviceClientId = options.serviceClientId ?? 'ward-service';
  const serviceClientSecret = randomBytes(24).toString('base64url');
  const accessTokenAlg = options.accessTokenAlg ?? 'RS256';
  const accessTokenTtl = options.accessTokenTtl ?? 600;
  const groupsClaim = options.groupsClaim ?? 'groups';
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const loginQueue: string[] = [];
  let keys: IdpSigningKey[] = [await newKey('RS256'), await newKey('ES256')];
  let jwksRequests = 0;
  let available = true;

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const redirectUri = 'http://127.0.0.1/callback';

  function accountClaims(accountId: string): Record<string, unknown> {
    const account = accounts.get(accountId) ?? {};
    const claims: Record<string, unknown> = {
      email: account.email ?? `${accountId}@example.test`,
      email_verified: true,
      name: account.name ?? accountId.charAt(0).toUpperCase() + accountId.slice(1),
      preferred_username: accountId,
    };
    setPath(claims, groupsClaim, [...(account.groups ?? [])]);
    return claims;
  }

  function buildProvider(): Provider {
    const configuration: Configuration = {
      clients: [
        {
          client_id: clientId,
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
          response_types: ['code'],
          redirect_uris: [redirectUri, 'http://localhost/callback', ...(options.redirectUris ?? [])],
        },
        {
          client_id: serviceClientId,
          client_secret: serviceClientSecret,
          token_endpoint_auth_method: 'client_secret_basic',
          grant_types: ['client_credentials'],
          response_types: [],
          redirect_uris: [],
        },
      ],
      jwks: { keys: keys.map((k) => k.privateJwk) as never },
      cookies: { keys: cookieKeys },
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name', 'preferred_username'],
        groups: [groupsClaim.split('.')[0] as string],
      },
      scopes: ['openid', 'offline_access', RS_SCOPE],
      conformIdTokenClaims: false,
      async findAccount(_ctx, sub) {
        if (!accounts.has(sub)) return undefined;
        return { accountId: sub, claims: () => ({ sub, ...accountClaims(sub) }) };
      },
      async extraTokenClaims(_ctx, token) {
        // Real IdPs (Okta, Entra, Keycloak) put groups and the user's names in access tokens.
        if (token.kind === 'AccessToken' && 'accountId' in token && typeof token.accountId === 'string') {
          return accountClaims(token.accountId);
        }
        return undefined;
      },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      features: {
        devInteractions: { enabled: false },
        deviceFlow: { enabled: true },
        clientCredentials: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async (_ctx: KoaContextWithOIDC, _client: unknown, oneOf?: string[]) => oneOf ?? resource,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: KoaContextWithOIDC, indicator: string) => {
            if (indicator !== resource) throw new oidcErrors.InvalidTarget();
            return {
              scope: RS_SCOPE,
              audience: resource,
              accessTokenTTL: accessTokenTtl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: accessTokenAlg } },
            };
          },
        } as never,
      },
      ttl: {
        AccessToken: accessTokenTtl,
        ClientCredentials: accessTokenTtl,
        IdToken: accessTokenTtl,
        DeviceCode: 600,
        Interaction: 600,
        Session: 3600,
        Grant: 3600,
        RefreshToken: 24 * 3600,
        AuthorizationCode: 60,
      },
      renderError: async (ctx, out) => {
        ctx.type = 'json';
        ctx.body = out;
      },
    };
    const provider = new Provider(issuer, configuration);
    // oidc-provider logs server errors through koa's app 'error' event; keep tests quiet.
    provider.on('server_error', () => {});
    return provider;
  }

  let provider = buildProvider();

  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const p = provider;
    const details = await p.interactionDetails(req, res);
    const sessionAccount = details.session?.accountId;
    const accountId = sessionAccount ?? loginQueue.shift() ?? defaultAccount;
    if (!accounts.has(accountId)) {
      await p.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'unknown account' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const requestClientId = String(details.params.client_id);
    const grant = details.grantId
      ? ((await p.Grant.find(details.grantId)) ?? new p.Grant({ accountId, clientId: requestClientId }))
      : new p.Grant({ accountId, clientId: requestClientId });
    const scope = typeof details.params.scope === 'string' ? details.params.scope : 'openid';
    grant.addOIDCScope(scope);
    const requested = details.params.resource;
    const resources = Array.isArray(requested) ? requested : typeof requested === 'string' ? [requested] : [resource];
    for (const r of resources) grant.addResourceScope(String(r), scope);
    const missing = (details.prompt.details as { missingResourceScopes?: Record<string, string[]> })
      .missingResourceScopes;
    for (const [r, scopes] of Object.entries(missing ?? {})) grant.addResourceScope(r, scopes.join(' '));
    const grantId = await grant.save();
    await p.interactionFinished(
      req,
      res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!available) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"temporarily_unavailable"}');
      return;
    }
    if (path === '/jwks') jwksRequests += 1;
    if (path.startsWith('/interaction/')) {
      interaction(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'server_error', error_description: String(err) }));
      });
      return;
    }
    provider.callback()(req, res);
  });

  async function tokenRequest(body: Record<string, string>, basic?: string): Promise<TokenResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (basic) headers.authorization = `Basic ${basic}`;
    const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(body) });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`IdP token endpoint: ${res.status} ${JSON.stringify(json)}`);
    return json as unknown as TokenResponse;
  }

  function authorizationUrl(o: AuthorizationUrlOptions): string {
    const url = new URL(`${issuer}/auth`);
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('redirect_uri', o.redirectUri);
    url.searchParams.set('scope', o.scope ?? DEFAULT_SCOPE);
    url.searchParams.set('code_challenge', o.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('state', o.state ?? randomBytes(8).toString('hex'));
    url.searchParams.set('prompt', o.prompt ?? 'consent');
    const r = o.resource === undefined ? resource : o.resource;
    if (r !== null) url.searchParams.set('resource', r);
    return url.toString();
  }

  async function mintTokens(accountId: string, o: { groups?: string[]; scope?: string } = {}): Promise<TokenResponse> {
    if (!accounts.has(accountId)) throw new Error(`startIdp: no account ${accountId}`);
    if (o.groups) accounts.set(accountId, { ...accounts.get(accountId), groups: o.groups });
    const { verifier, challenge } = pkcePair();
    // A port nothing listens on: completeBrowserLogin stops at the redirect to it.
    const callback = 'http://127.0.0.1:9/callback';
    nextLogin(accountId);
    const url = authorizationUrl({
      redirectUri: callback,
      codeChallenge: challenge,
      ...(o.scope ? { scope: o.scope } : {}),
    });
    const { code } = await completeBrowserLogin(url, { deliver: false });
    if (!code) throw new Error('startIdp: the authorization flow ended without a code');
    return tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: callback,
      code_verifier: verifier,
      client_id: clientId,
      resource,
    });
  }

  function nextLogin(accountId: string): void {
    loginQueue.push(accountId);
  }

  function signingKey(alg: 'RS256' | 'ES256'): IdpSigningKey {
    const key = keys.find((k) => k.alg === alg);
    if (!key) throw new Error(`startIdp: no ${alg} key`);
    return key;
  }

  function baseClaims(payload: Record<string, unknown>): Record<string, unknown> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      aud: resource,
      sub: 'alice',
      client_id: clientId,
      iat: now,
      exp: now + 300,
      jti: randomBytes(8).toString('hex'),
      scope: RS_SCOPE,
      ...accountClaims(typeof payload.sub === 'string' ? payload.sub : 'alice'),
      ...payload,
    };
    for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
    return claims;
  }

  function rawJwt(header: Record<string, unknown>, claims: Record<string, unknown>, sign: (input: string) => string) {
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${sign(input)}`;
  }

  const idp: Idp = {
    issuer,
    clientId,
    serviceClient: { clientId: serviceClientId, clientSecret: serviceClientSecret },
    resource,
    redirectUri,
    jwksUri: `${issuer}/jwks`,
    get jwksRequests() {
      return jwksRequests;
    },
    get keys() {
      return [...keys];
    },
    get currentKid() {
      return signingKey(accessTokenAlg).kid;
    },
    publicJwks: () => ({ keys: keys.map((k) => ({ ...k.publicJwk })) }),
    nextLogin,
    setAccount(accountId, account) {
      accounts.set(accountId, account);
    },
    async mintAccessToken(accountId, o = {}) {
      return (await mintTokens(accountId, o)).access_token;
    },
    mintTokens,
    serviceToken() {
      const basic = Buffer.from(
        `${encodeURIComponent(serviceClientId)}:${encodeURIComponent(serviceClientSecret)}`,
      ).toString('base64');
      return tokenRequest({ grant_type: 'client_credentials', resource, scope: RS_SCOPE }, basic);
    },
    refresh(refreshToken) {
      return tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, resource });
    },
    authorizationUrl,
    async sign(payload = {}, header = {}) {
      const alg = (header.alg as 'RS256' | 'ES256' | undefined) ?? accessTokenAlg;
      const key = signingKey(alg);
      return new jose.SignJWT(baseClaims(payload))
        .setProtectedHeader({ alg, kid: key.kid, typ: 'at+jwt', ...header })
        .sign(key.privateKey);
    },
    forge: {
      algNone(payload = {}) {
        return `${rawJwt({ alg: 'none', typ: 'at+jwt' }, baseClaims(payload), () => '')}`;
      },
      hs256WithPublicKey(payload = {}) {
        const rsa = signingKey('RS256');
        const pem = createPublicKey({ key: rsa.publicJwk as never, format: 'jwk' })
          .export({ type: 'spki', format: 'pem' })
          .toString();
        return rawJwt({ alg: 'HS256', kid: rsa.kid, typ: 'at+jwt' }, baseClaims(payload), (input) =>
          createHmac('sha256', pem).update(input).digest('base64url'),
        );
      },
      async wrongKeyRightKid(payload = {}) {
        const other = await jose.generateKeyPair('RS256');
        return new jose.SignJWT(baseClaims(payload))
          .setProtectedHeader({ alg: 'RS256', kid: signingKey('RS256').kid, typ: 'at+jwt' })
          .sign(other.privateKey);
      },
    },
    async rotateKeys() {
      keys = [await newKey('RS256'), await newKey('ES256'), ...keys];
      // oidc-provider reads its keystore once; a real IdP reloads its config the same way.
      provider = buildProvider();
    },
    async retireOldKeys() {
      keys = [signingKey('RS256'), signingKey('ES256')];
      provider = buildProvider();
    },
    setAvailable(value) {
      available = value;
    },
    resetCounters() {
      jwksRequests = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return idp;
}

/** A minimal cookie jar: name → value, sent to every path of the one origin (enough for oidc-provider). */
class CookieJar {
  readonly #cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\b/i.test(a));
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface BrowserLoginResult {
  /** The redirect the IdP sent the browser to (the client's loopback redirect URI). */
  callbackUrl: string;
  code: string | undefined;
  state: string | undefined;
  /** `error` from the callback, when the IdP refused. */
  error: string | undefined;
  /** The loopback server's answer when `deliver` was true. */
  response?: Response;
}

async function follow(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = jar.header();
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(res);
  return res;
}

/**
 * Plays the browser for an authorization-code flow: follows the IdP's redirects (with a fresh
 * cookie jar) through the headless interaction until the IdP redirects to a URL outside its
 * own origin (the client's redirect URI). With `deliver` (default true) it then requests that
 * callback, as a browser would, so a CLI's loopback server receives the code.
 * Queue the account first with `idp.nextLogin('alice')`.
 */
export async function completeBrowserLogin(
  authorizationUrl: string,
  options: { deliver?: boolean } = {},
): Promise<BrowserLoginResult> {
  const jar = new CookieJar();
  const origin = new URL(authorizationUrl).origin;
  let url = authorizationUrl;
  for (let hop = 0; hop < 20; hop += 1) {
    const res = await follow(jar, url);
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      const body = await res.text();
      throw new Error(`completeBrowserLogin: IdP answered ${res.status} at ${url}: ${body.slice(0, 300)}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    const next = new URL(location, url);
    if (next.origin !== origin) {
      const result: BrowserLoginResult = {
        callbackUrl: next.toString(),
        code: next.searchParams.get('code') ?? undefined,
        state: next.searchParams.get('state') ?? undefined,
        error: next.searchParams.get('error') ?? undefined,
      };
      if (options.deliver !== false) result.response = await fetch(next, { redirect: 'manual' });
      return result;
    }
    url = next.toString();
  }
  throw new Error('completeBrowserLogin: too many redirects');
}

function formOf(html: string): { action: string; fields: URLSearchParams } | undefined {
  // The code-input and confirm forms (`op.deviceInputForm`, `op.deviceConfirmForm`), then the
  // self-submitting "Submitting Callback" form that resumes the device flow.
  const form = /<form[^>]*method="post"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const action = /action="([^"]*)"/i.exec(form[0])?.[1] ?? '';
  const fields = new URLSearchParams();
  for (const input of form[1]?.matchAll(/<input\b([^>]*)>/gi) ?? []) {
    const attrs = input[1] ?? '';
    const name = /name="([^"]*)"/i.exec(attrs)?.[1];
    const value = /value="([^"]*)"/i.exec(attrs)?.[1];
    if (name && value !== undefined) fields.set(name, value.replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
  }
  return { action, fields };
}

/**
 * Plays the user's browser for a device flow: opens `verification_uri_complete`, submits the
 * code and confirmation forms the IdP renders (as a user clicking "Continue" would), goes
 * through the headless interaction and stops at the IdP's success page. Resolves when the
 * device is authorised; the device's own polling then gets its tokens.
 * Queue the account first with `idp.nextLogin('alice')`.
 */
export async function completeDeviceLogin(verificationUriComplete: string): Promise<void> {
  const jar = new CookieJar();
  let res = await follow(jar, verificationUriComplete);
  let url = verificationUriComplete;
  for (let hop = 0; hop < 20; hop += 1) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer().catch(() => undefined);
      url = new URL(location, url).toString();
      res = await follow(jar, url);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`completeDeviceLogin: IdP answered ${res.status}: ${html.slice(0, 300)}`);
    const form = formOf(html);
    if (!form) {
      if (/Sign-in Success/.test(html)) return;
      throw new Error(`completeDeviceLogin: unexpected page: ${html.slice(0, 300)}`);
    }
    url = new URL(form.action, url).toString();
    res = await follow(jar, url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.fields,
    });
  }
  throw new Error('completeDeviceLogin: too many steps');
}
