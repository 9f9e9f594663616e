import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { toWardError, WardError } from '@ward/protocol';
import type { Authorizer } from '../access/index.js';
import { authDenialData, bearerToken, type Identity } from '../identity/index.js';
import { RateLimiter } from '../llm/rate-limiter.js';
import { peerAddress } from '../sessions/index.js';
import type { ConnectionKind } from '../tunnel/index.js';
import { type HttpConnectionLimits, type HttpProxyContext, proxyHttpExchange } from './http-proxy.js';
import { sendJson, sendJsonError } from './json-error.js';

/** Routes mounted under /api/v1 (sessions, audit, …); returns false when it has no such route. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity) => Promise<boolean>;

/** What the HTTP listener needs to know of a connection. */
export interface HttpConnectionInfo {
  type: ConnectionKind;
  llm?: 'openai' | 'anthropic' | 'none' | undefined;
  limits?: HttpConnectionLimits | undefined;
}

export interface GatewayHttpOptions {
  proxy: HttpProxyContext;
  authenticate(token: string): Promise<Identity>;
  connectionType(name: string): ConnectionKind | undefined;
  /** Who may use which connection: a refusal is a 403 in the OpenAI error shape. */
  authorize: Authorizer;
  /** `POST /api/v1/token`, the one API route that takes no bearer token. */
  tokenEndpoint?: (req: IncomingMessage, res: ServerResponse, source: string) => Promise<void>;
  /** A connection's LLM API and limits; without it every HTTP connection is plain (`llm: none`, no limits). */
  connection?(name: string): HttpConnectionInfo | undefined;
  /** What /healthz reports; `ok: false` answers 503. */
  health(): { ok: boolean; [key: string]: unknown };
  api?: ApiHandler;
  /** Routes under /api/ that answer without a token (e.g. /api/v1/identity/providers). */
  publicApi?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
}

const CONNECTION_PATH = /^\/c\/([a-z0-9][a-z0-9_-]{0,62})(\/.*)?$/;

/**
 * The gateway's HTTP listener: health, the API, and every HTTP connection at
 * `/c/<connection>/…` (an OpenAI client's base URL is `…/c/<connection>/v1`).
 */
export function createGatewayHttpServer(options: GatewayHttpOptions): http.Server {
  const resolved: GatewayHttpOptions = {
    ...options,
    proxy: { ...options.proxy, rateLimiter: options.proxy.rateLimiter ?? new RateLimiter() },
    authenticate: cachedAuthenticate(options.authenticate),
  };
  const server = http.createServer((req, res) => {
    handle(resolved, req, res).catch((err) => sendJsonError(res, toWardError(err)));
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

async function handle(options: GatewayHttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://gateway.invalid');
  if (url.pathname === '/healthz') {
    const health = options.health();
    sendJson(res, health.ok ? 200 : 503, health);
    return;
  }
  const match = CONNECTION_PATH.exec(url.pathname);
  const isApi = url.pathname.startsWith('/api/');
  if (!match && !isApi) {
    sendJsonError(res, new WardError('ERR_HTTP_NOT_FOUND', 'not_found', `no route for ${url.pathname}`));
    return;
  }
  if (isApi && options.publicApi && (await options.publicApi(req, res, url))) return;
  const connection = match?.[1];
  const source = peerAddress(req.socket);
  const recorder = options.proxy.recorder;
  if (url.pathname === '/api/v1/token' && options.tokenEndpoint && recorder.healthy) {
    await options.tokenEndpoint(req, res, source);
    return;
  }
  if (!recorder.healthy) {
    sendJsonError(
      res,
      new WardError(
        'ERR_AUDIT_UNAVAILABLE',
        'unavailable',
        'the audit store cannot write; the gateway refuses new work until it can',
      ),
    );
    return;
  }

  let identity: Identity;
  try {
    const token = bearerToken(req.headers.authorization, header(req, 'x-api-key'));
    if (!token)
      throw new WardError(
        'ERR_AUTH_TOKEN_MISSING',
        'unauthenticated',
        'send a ward token as "Authorization: Bearer <token>" (the API key of an OpenAI client)',
      );
    identity = await options.authenticate(token);
    // Verified tokens are cached: a service account disabled since is refused here.
    options.authorize.assertEnabled(identity);
  } catch (err) {
    const error = toWardError(err, 'ERR_AUTH_TOKEN_INVALID', 'unauthenticated');
    await recorder.record(undefined, 'auth.denied', {
      source,
      connection,
      decision: 'deny',
      rule: 'auth.token',
      data: { code: error.code, protocol: 'http', ...authDenialData(error) },
    });
    sendJsonError(res, error, { 'www-authenticate': 'Bearer realm="ward"' });
    return;
  }

  if (isApi) {
    if (!options.api || !(await options.api(req, res, url, identity))) {
      sendJsonError(
        res,
        new WardError('ERR_HTTP_NOT_FOUND', 'not_found', `no API route for ${req.method} ${url.pathname}`),
      );
    }
    return;
  }

  const name = connection ?? '';
  const type = options.connectionType(name);
  if (type !== 'http') {
    const error = type
      ? new WardError('ERR_CONN_TYPE_MISMATCH', 'invalid_argument', `"${name}" is a ${type} connection, not http`)
      : new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${name}"`);
    sendJsonError(res, error);
    return;
  }
  let rule: string;
  try {
    // The rule goes on the exchange's own record (one record per request, not two).
    ({ rule } = await options.authorize.authorize({
      identity,
      connection: name,
      action: 'connect',
      source,
      protocol: 'http',
      recordAllow: false,
    }));
  } catch (err) {
    req.resume();
    sendJsonError(res, err);
    return;
  }
  const info = options.connection?.(name);
  await proxyHttpExchange(options.proxy, req, res, {
    connection: name,
    path: `${match?.[2] ?? '/'}${url.search}`,
    identity,
    source,
    llm: info?.llm ?? 'none',
    limits: info?.limits,
    rule,
  });
}

const TOKEN_CACHE_MS = 60_000;
const TOKEN_CACHE_MAX = 10_000;

/**
 * Remembers verified tokens for up to a minute (never past their expiry): an SDK sends the
 * same token on every request, and a signature check per request was a visible share of the
 * gateway's CPU. Failures are never cached. Tokens live in memory only.
 */
function cachedAuthenticate(verify: (token: string) => Promise<Identity>): (token: string) => Promise<Identity> {
  const cache = new Map<string, { identity: Identity; until: number }>();
  return async (token) => {
    const now = Date.now();
    const hit = cache.get(token);
    if (hit && hit.until > now) return hit.identity;
    if (hit) cache.delete(token);
    const identity = await verify(token);
    if (cache.size >= TOKEN_CACHE_MAX) cache.clear();
    cache.set(token, { identity, until: Math.min(now + TOKEN_CACHE_MS, identity.expiresAt.getTime()) });
    return identity;
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
