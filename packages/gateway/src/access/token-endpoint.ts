import type { IncomingMessage, ServerResponse } from 'node:http';
import { NAME_PATTERN, WardError } from '@ward/protocol';
import { readBody } from '../http/json-body.js';
import type { Identity, Role, TokenService } from '../identity/index.js';
import type { Recorder } from '../recording/index.js';
import type { ServiceAccountRepository } from '../store/service-accounts.js';

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const ACCEPTED_SUBJECT_TYPES = new Set([
  ACCESS_TOKEN_TYPE,
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
]);
const ROLES: ReadonlySet<string> = new Set(['admin', 'auditor', 'approver', 'user']);

export interface TokenEndpointOptions {
  tokens: TokenService;
  accounts: ServiceAccountRepository;
  /** The gateway's token verification (gateway tokens and the configured OIDC issuers). */
  authenticate(token: string): Promise<Identity>;
  recorder: Recorder;
  /** Lifetime of a service account's token, in ms. */
  serviceTokenTtlMs: number;
  /** Longest lifetime of a token exchanged for a person's token, in ms. */
  exchangeTokenTtlMs: number;
}

/** An OAuth 2.0 error (RFC 6749 §5.2) with ward's code beside it. */
class OAuthError extends Error {
  constructor(
    readonly oauth: 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type',
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return this.oauth === 'invalid_client' ? 401 : 400;
  }
}

const CLIENT_FAILED = 'client authentication failed';

/**
 * `POST /api/v1/token`, the one unauthenticated API route: an OAuth 2.0 token endpoint
 * (form-encoded as RFC 6749 says, or JSON).
 *
 * - `grant_type=client_credentials` with `client_id` (the service account's name) and
 *   `client_secret` (or HTTP Basic): a gateway token for the account, kind `service`, with its
 *   roles and groups, for `serviceAccounts.tokenTtl`.
 * - `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` with `subject_token` (any
 *   token the gateway accepts, e.g. from the organisation's IdP): the token of the service
 *   account whose federated identity is that token's issuer and subject, or else a short
 *   gateway token for the same person (subject, roles, groups; the first issuer in `orig_iss`),
 *   short enough for an SSH password.
 *
 * Answers `{access_token, token_type: "Bearer", expires_in, issued_token_type}` or an OAuth
 * error `{error, error_description, code}`. Failures say little and are recorded
 * (`token.denied`); issued tokens are recorded without the token (`token.issued`).
 *
 * @example
 * curl -s http://127.0.0.1:7400/api/v1/token -d grant_type=client_credentials -d client_id=support-bot -d client_secret=wsa_…
 */
export function createTokenEndpoint(o: TokenEndpointOptions) {
  return async (req: IncomingMessage, res: ServerResponse, source: string): Promise<void> => {
    let grantType = '';
    let client: string | undefined;
    try {
      if (req.method !== 'POST') {
        throw new OAuthError('invalid_request', 'ERR_TOKEN_INVALID_REQUEST', 'use POST');
      }
      const params = await readParams(req);
      grantType = params.get('grant_type') ?? '';
      let result: { token: string; ttlSeconds: number; identity: Identity; rule: string };
      if (grantType === GRANT_CLIENT_CREDENTIALS) {
        const basic = basicCredentials(req.headers.authorization);
        client = basic?.id ?? params.get('client_id') ?? undefined;
        const secret = basic?.secret ?? params.get('client_secret') ?? '';
        if (!client || !secret) {
          throw new OAuthError(
            'invalid_request',
            'ERR_TOKEN_INVALID_REQUEST',
            'client_id and client_secret are required',
          );
        }
        const account = o.accounts.checkSecret(client, secret);
        // Unknown account, wrong secret and disabled account look the same from outside.
        if (!account || account.disabled)
          throw new OAuthError('invalid_client', 'ERR_TOKEN_INVALID_CLIENT', CLIENT_FAILED);
        result = await serviceToken(o, account.name, account.roles, account.groups);
        result.rule = 'token.client_credentials';
      } else if (grantType === GRANT_TOKEN_EXCHANGE) {
        const subjectToken = params.get('subject_token') ?? '';
        const type = params.get('subject_token_type') ?? ACCESS_TOKEN_TYPE;
        if (!subjectToken)
          throw new OAuthError('invalid_request', 'ERR_TOKEN_INVALID_REQUEST', 'subject_token is required');
        if (!ACCEPTED_SUBJECT_TYPES.has(type)) {
          throw new OAuthError(
            'invalid_request',
            'ERR_TOKEN_INVALID_REQUEST',
            `subject_token_type ${type} is not supported`,
          );
        }
        let subject: Identity;
        try {
          subject = await o.authenticate(subjectToken);
        } catch {
          throw new OAuthError('invalid_grant', 'ERR_TOKEN_INVALID_GRANT', 'the subject token was not accepted');
        }
        const account = o.accounts.findByFederated(subject.issuer, subject.subject);
        if (account) {
          client = account.name;
          if (account.disabled)
            throw new OAuthError('invalid_grant', 'ERR_TOKEN_INVALID_GRANT', 'the subject token was not accepted');
          result = await serviceToken(o, account.name, account.roles, account.groups);
          result.rule = 'token.exchange:service-account';
        } else {
          const remaining = Math.floor((subject.expiresAt.getTime() - Date.now()) / 1000);
          const ttlSeconds = Math.min(Math.floor(o.exchangeTokenTtlMs / 1000), remaining);
          if (ttlSeconds < 1)
            throw new OAuthError('invalid_grant', 'ERR_TOKEN_INVALID_GRANT', 'the subject token was not accepted');
          const token = await o.tokens.issue({
            subject: subject.subject,
            kind: subject.kind,
            roles: subject.roles,
            groups: subject.groups,
            ttlSeconds,
            originalIssuer: subject.issuer,
          });
          result = { token, ttlSeconds, identity: subject, rule: 'token.exchange:identity' };
        }
      } else {
        throw new OAuthError(
          grantType ? 'unsupported_grant_type' : 'invalid_request',
          grantType ? 'ERR_TOKEN_UNSUPPORTED_GRANT_TYPE' : 'ERR_TOKEN_INVALID_REQUEST',
          grantType
            ? `grant_type ${grantType.slice(0, 100)} is not supported: use ${GRANT_CLIENT_CREDENTIALS} or ${GRANT_TOKEN_EXCHANGE}`
            : 'grant_type is required',
        );
      }
      await o.recorder.record(undefined, 'token.issued', {
        identity: result.identity,
        source,
        decision: 'allow',
        rule: result.rule,
        data: { grantType, ttlSeconds: result.ttlSeconds },
      });
      const body = JSON.stringify({
        access_token: result.token,
        token_type: 'Bearer',
        expires_in: result.ttlSeconds,
        issued_token_type: ACCESS_TOKEN_TYPE,
      });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (err) {
      const e =
        err instanceof OAuthError
          ? err
          : err instanceof WardError && err.code === 'ERR_API_BODY_TOO_LARGE'
            ? new OAuthError('invalid_request', 'ERR_TOKEN_INVALID_REQUEST', err.message)
            : undefined;
      if (!e) throw err;
      await o.recorder.record(undefined, 'token.denied', {
        source,
        decision: 'deny',
        rule: grantType === GRANT_TOKEN_EXCHANGE ? 'token.exchange' : 'token.client_credentials',
        // Only what cannot hold a credential: a known grant type, a well-formed account name.
        data: {
          grantType: grantType === GRANT_CLIENT_CREDENTIALS || grantType === GRANT_TOKEN_EXCHANGE ? grantType : 'other',
          code: e.code,
          ...(client !== undefined && NAME_PATTERN.test(client) ? { client } : {}),
        },
      });
      const body = JSON.stringify({ error: e.oauth, error_description: e.message, code: e.code });
      res.writeHead(e.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
        ...(e.oauth === 'invalid_client' ? { 'www-authenticate': 'Basic realm="ward"' } : {}),
      });
      res.end(body);
    }
  };
}

async function serviceToken(o: TokenEndpointOptions, name: string, roles: string[], groups: string[]) {
  const ttlSeconds = Math.max(1, Math.floor(o.serviceTokenTtlMs / 1000));
  const claims = {
    subject: name,
    kind: 'service' as const,
    roles: roles.filter((r): r is Role => ROLES.has(r)),
    groups,
  };
  const token = await o.tokens.issue({ ...claims, ttlSeconds });
  const identity: Identity = {
    ...claims,
    issuer: o.tokens.issuer,
    expiresAt: new Date(Date.now() + ttlSeconds * 1000),
    tokenId: '',
  };
  return { token, ttlSeconds, identity, rule: '' };
}

async function readParams(req: IncomingMessage): Promise<URLSearchParams> {
  const text = (await readBody(req, 16 * 1024)).toString('utf8');
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (type.includes('application/json')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new OAuthError('invalid_request', 'ERR_TOKEN_INVALID_REQUEST', 'the body is not JSON');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new OAuthError('invalid_request', 'ERR_TOKEN_INVALID_REQUEST', 'send a JSON object');
    }
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') params.set(k, v);
    return params;
  }
  return new URLSearchParams(text);
}

function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const at = decoded.indexOf(':');
  if (at < 0) return undefined;
  // RFC 6749 §2.3.1: both parts are form-urlencoded inside the Basic credentials.
  try {
    return { id: decodeURIComponent(decoded.slice(0, at)), secret: decodeURIComponent(decoded.slice(at + 1)) };
  } catch {
    return undefined;
  }
}
