import { WardError } from '@ward/protocol';
import { ensureFresh, loadCredentials, type SavedCredentials } from './credentials.js';

export interface ApiTarget {
  gateway: string;
  token: string;
  /** Set when `token` came from the token cache: `freshToken` refreshes it near expiry. */
  cached?: SavedCredentials;
}

/** Where and as whom CLI commands talk to the gateway: flags, then env, then the token cache. */
export function resolveTarget(opts: { gateway?: string | undefined; token?: string | undefined }): ApiTarget {
  const saved = loadCredentials();
  // An empty variable counts as unset (`WARD_TOKEN= ward …`).
  const envGateway = process.env['WARD_GATEWAY'] || undefined;
  const envToken = process.env['WARD_TOKEN'] || undefined;
  const gateway = opts.gateway ?? envGateway ?? saved?.gateway;
  const token = opts.token ?? envToken ?? saved?.token;
  if (!gateway || !token) {
    throw new WardError(
      'ERR_CLI_NOT_LOGGED_IN',
      'unauthenticated',
      'not logged in: run `ward demo` (or `ward login`), or pass --gateway and set WARD_TOKEN',
    );
  }
  const cached = opts.token === undefined && envToken === undefined ? saved : undefined;
  return { gateway: gateway.replace(/\/+$/, ''), token, ...(cached ? { cached } : {}) };
}

/**
 * The target's token, refreshed at the IdP first when it came from the cache and expires
 * within a minute (the cache is rewritten). Fails with ERR_CLI_LOGIN_REFRESH_FAILED ("run
 * `ward login`") when the IdP refuses. Call it before each request a long-running command
 * (e.g. `ward connect`) makes.
 */
export async function freshToken(target: ApiTarget): Promise<string> {
  if (!target.cached) return target.token;
  const { refreshAtIdp } = await import('./oidc.js');
  const fresh = await ensureFresh(target.cached, refreshAtIdp);
  target.cached = fresh;
  target.token = fresh.token;
  return fresh.token;
}

/** GETs a gateway API path; errors come back as WardErrors with the gateway's code. */
export async function apiGet(target: ApiTarget, path: string): Promise<Response> {
  const token = await freshToken(target);
  let res: Response;
  try {
    res = await fetch(`${target.gateway}${path}`, { headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${target.gateway}`, {
      cause: err,
    });
  }
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string; type?: string } };
    throw new WardError(
      body.error?.code ?? 'ERR_INTERNAL',
      (body.error?.type as WardError['kind']) ?? 'internal',
      body.error?.message ?? `HTTP ${res.status}`,
    );
  }
  return res;
}

export async function apiJson<T>(target: ApiTarget, path: string): Promise<T> {
  return (await (await apiGet(target, path)).json()) as T;
}

/** Sends a JSON body (or none) with any method; errors come back as WardErrors with the gateway's code. */
export async function apiSend<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  const token = await freshToken(target);
  let res: Response;
  try {
    res = await fetch(`${target.gateway}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${target.gateway}`, {
      cause: err,
    });
  }
  const json = (await res.json().catch(() => ({}))) as T & {
    error?: { code?: string; message?: string; type?: string };
  };
  if (!res.ok) {
    throw new WardError(
      json.error?.code ?? 'ERR_INTERNAL',
      (json.error?.type as WardError['kind']) ?? 'internal',
      json.error?.message ?? `HTTP ${res.status}`,
    );
  }
  return json;
}

/** The RFC 8693 answer of `POST /api/v1/token`. */
export interface ExchangedToken {
  access_token: string;
  token_type: string;
  expires_in: number;
  issued_token_type: string;
}

/**
 * Trades `subjectToken` (e.g. the IdP's access token) for a short gateway-issued token for the
 * same identity: an RFC 8693 token exchange at the gateway's `POST /api/v1/token`.
 */
export async function exchangeToken(target: ApiTarget, subjectToken: string): Promise<ExchangedToken> {
  let res: Response;
  try {
    res = await fetch(`${target.gateway}/api/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      }),
    });
  } catch (err) {
    throw new WardError('ERR_CLI_GATEWAY_UNREACHABLE', 'unavailable', `cannot reach the gateway at ${target.gateway}`, {
      cause: err,
    });
  }
  const body = (await res.json().catch(() => ({}))) as Partial<ExchangedToken> & {
    error?: string | { code?: string; message?: string };
    error_description?: string;
    code?: string;
  };
  if (!res.ok || typeof body.access_token !== 'string') {
    // The OAuth error shape ({error, error_description, code}), or ward's ({error:{code,message}}).
    const nested = typeof body.error === 'object' ? body.error : undefined;
    throw new WardError(
      nested?.code ?? body.code ?? 'ERR_CLI_TOKEN_EXCHANGE_FAILED',
      res.status === 404 ? 'not_found' : 'unauthenticated',
      nested?.message ??
        body.error_description ??
        (res.status === 404
          ? 'this gateway has no token endpoint (POST /api/v1/token): it is older than `ward token ssh`'
          : `the gateway refused the token exchange (HTTP ${res.status})`),
    );
  }
  return body as ExchangedToken;
}
