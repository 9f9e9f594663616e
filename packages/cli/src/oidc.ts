// The CLI's side of OpenID Connect, on `openid-client` (discovery, PKCE, the device grant,
// refresh, revocation). `ward login` starts a sign-in here; every command that talks to the
// gateway refreshes through `refreshAtIdp`.
import { WardError } from '@ward/protocol';
import * as client from 'openid-client';
import type { RefreshedTokens, SavedCredentials } from './credentials.js';

/** The access-token audience the gateway expects unless its provider list says otherwise. */
export const DEFAULT_RESOURCE = 'urn:ward';
/**
 * `offline_access` asks for a refresh token; `groups` is the conventional scope for the groups
 * claim (IdPs that do not know it ignore it). OpenID Connect Core §11 requires `prompt=consent`
 * with `offline_access`, so authorization requests carry it.
 */
export const DEFAULT_SCOPE = 'openid profile email groups offline_access';

/** One IdP the gateway accepts, from `GET /api/v1/identity/providers`. */
export interface IdentityProvider {
  issuer: string;
  clientId: string;
  audience: string;
  /** Extra scopes this IdP wants for the gateway's audience (e.g. an API scope). */
  scopes?: string[];
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]' || hostname === '::1';
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * Asks the gateway which IdPs it accepts and picks one: the one whose issuer is `issuer`, or
 * the only one.
 */
export async function pickProvider(gateway: string, issuer?: string): Promise<IdentityProvider> {
  let res: Response;
  try {
    res = await fetch(`${gateway}/api/v1/identity/providers`, { headers: { accept: 'application/json' } });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${gateway}`, {
      cause: err,
    });
  }
  type Listed = { issuer?: unknown; clientId?: unknown; audience?: unknown; scopes?: unknown };
  const body = (await res.json().catch(() => undefined)) as { providers?: Listed[] } | Listed[] | undefined;
  const listed = Array.isArray(body) ? body : Array.isArray(body?.providers) ? body.providers : [];
  // The gateway lists `audience` as one string or several; the first is the resource to ask for.
  // An issuer without a clientId is trusted for tokens but not set up for `ward login`.
  const providers: IdentityProvider[] = listed.flatMap((p) => {
    if (typeof p?.issuer !== 'string' || typeof p.clientId !== 'string') return [];
    const audience = Array.isArray(p.audience) ? p.audience[0] : p.audience;
    const scopes = Array.isArray(p.scopes) ? p.scopes.filter((x): x is string => typeof x === 'string') : undefined;
    return [
      {
        issuer: p.issuer,
        clientId: p.clientId,
        audience: typeof audience === 'string' && audience ? audience : DEFAULT_RESOURCE,
        ...(scopes ? { scopes } : {}),
      },
    ];
  });
  if (!res.ok || providers.length === 0) {
    throw new WardError(
      'ERR_CLI_LOGIN_NO_PROVIDER',
      'not_found',
      `the gateway at ${gateway} offers no identity provider to sign in with (its config needs identity.oidc, with a clientId for ward login)`,
    );
  }
  if (issuer !== undefined) {
    const match = providers.find((p) => trimSlash(p.issuer) === trimSlash(issuer));
    if (!match)
      throw new WardError(
        'ERR_CLI_LOGIN_NO_PROVIDER',
        'not_found',
        `the gateway does not accept tokens from ${issuer}; it accepts: ${providers.map((p) => p.issuer).join(', ')}`,
      );
    return match;
  }
  if (providers.length > 1)
    throw new WardError(
      'ERR_CLI_LOGIN_PROVIDER_AMBIGUOUS',
      'invalid_argument',
      `the gateway accepts several identity providers: pick one with --issuer (${providers.map((p) => p.issuer).join(', ')})`,
    );
  return providers[0] as IdentityProvider;
}

/**
 * Reads the IdP's discovery document. Plain `http://` is allowed for a loopback issuer only
 * (a local IdP, the tests); anywhere else the issuer must be `https://`.
 */
export async function discoverIdp(issuer: string, clientId: string): Promise<client.Configuration> {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch (err) {
    throw new WardError('ERR_CLI_IDP_UNREACHABLE', 'invalid_argument', `not an issuer URL: ${issuer}`, { cause: err });
  }
  const insecure = url.protocol === 'http:' && isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !insecure)
    throw new WardError(
      'ERR_CLI_IDP_UNREACHABLE',
      'invalid_argument',
      `refusing to sign in over ${url.protocol}//: the issuer must be https:// (plain http only on loopback)`,
    );
  try {
    return await client.discovery(
      url,
      clientId,
      undefined,
      client.None(),
      insecure ? { execute: [client.allowInsecureRequests] } : undefined,
    );
  } catch (err) {
    throw new WardError(
      'ERR_CLI_IDP_UNREACHABLE',
      'unavailable',
      `cannot read the identity provider's discovery document at ${issuer} (${(err as Error).message})`,
      { cause: err },
    );
  }
}

function jwtClaims(token: string): { exp?: number; sub?: string } {
  try {
    const [, payload] = token.split('.');
    if (!payload) return {};
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: number; sub?: string };
  } catch {
    return {};
  }
}

/** Expiry and subject of a token response: `expires_in`, else the JWT's `exp`; the ID token's `sub`, else the access token's. */
export function describeTokens(
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  now = Date.now(),
): RefreshedTokens & { subject: string | undefined } {
  const claims = jwtClaims(tokens.access_token);
  const expiresIn = tokens.expiresIn();
  const expiresAtMs =
    expiresIn !== undefined
      ? now + expiresIn * 1000
      : typeof claims.exp === 'number'
        ? claims.exp * 1000
        : now + 5 * 60_000; // unknown lifetime: assume short, so it is refreshed early
  const idSub = tokens.claims()?.sub;
  return {
    token: tokens.access_token,
    expiresAt: new Date(expiresAtMs).toISOString(),
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
    subject: typeof idSub === 'string' ? idSub : claims.sub,
  };
}

/** The `Refresher` every gateway-bound command uses: a refresh_token grant at the cached issuer. */
export async function refreshAtIdp(creds: SavedCredentials): Promise<RefreshedTokens> {
  if (!creds.issuer || !creds.clientId || !creds.refreshToken) throw new Error('no refresh token');
  const config = await discoverIdp(creds.issuer, creds.clientId);
  const tokens = await client.refreshTokenGrant(config, creds.refreshToken, {
    resource: creds.resource ?? DEFAULT_RESOURCE,
  });
  const { token, expiresAt, refreshToken } = describeTokens(tokens);
  return { token, expiresAt, ...(refreshToken ? { refreshToken } : {}) };
}

/** Revokes a refresh token at the IdP (RFC 7009) when it publishes a revocation endpoint; false when it does not. */
export async function revokeAtIdp(creds: SavedCredentials): Promise<boolean> {
  if (!creds.issuer || !creds.clientId || !creds.refreshToken) return false;
  const config = await discoverIdp(creds.issuer, creds.clientId);
  if (!config.serverMetadata().revocation_endpoint) return false;
  await client.tokenRevocation(config, creds.refreshToken, { token_type_hint: 'refresh_token' });
  return true;
}

export { client };
