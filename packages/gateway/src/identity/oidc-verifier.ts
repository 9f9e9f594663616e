import { createHash } from 'node:crypto';
import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { type AuthDenialReason, AuthDenied } from './auth-denied.js';
import type { Identity, Role } from './token-service.js';

/** Signature algorithms an issuer may be allowed; HS* and `none` are never among them. */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type OidcAlgorithm = (typeof OIDC_ALGORITHMS)[number];
export const DEFAULT_OIDC_ALGORITHMS: readonly OidcAlgorithm[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

/** One trusted OIDC issuer, already validated (see config/identity-config.ts for the YAML form). */
export interface OidcIssuerOptions {
  /** Exactly the `iss` its tokens carry and its discovery document states. */
  issuer: string;
  /** Accepted `aud` values (one must match); e.g. `urn:ward`. */
  audience: string | readonly string[];
  /** The public client `ward login` uses (published by /api/v1/identity/providers; not checked here). */
  clientId?: string | undefined;
  /** Default RS256, PS256, ES256, EdDSA. */
  algorithms?: readonly OidcAlgorithm[] | undefined;
  /** Claim holding the subject. Default `sub`. */
  subjectClaim?: string | undefined;
  /** Claim holding the groups; a dotted path reaches nested claims (`realm_access.roles`). Default `groups`. */
  groupsClaim?: string | undefined;
  /** Role → the groups that grant it. */
  roles?: Partial<Record<Role, readonly string[] | undefined>> | undefined;
  /** Roles every verified user of this issuer has. Default `['user']`. */
  defaultRoles?: readonly Role[] | undefined;
  /** Seconds of clock skew accepted on exp/nbf. Default 30. */
  clockToleranceSeconds?: number | undefined;
  /** Milliseconds the JWKS is used without refetching; past it, an unreachable IdP fails closed. Default 10 min. */
  jwksCacheMaxAgeMs?: number | undefined;
  /** Least milliseconds between two JWKS fetches (unknown kids, failures). Default 30 s. */
  jwksCooldownMs?: number | undefined;
  /** Require `typ: at+jwt` (RFC 9068). Default true; false only for IdPs that do not mark access tokens. */
  requireAccessTokenType?: boolean | undefined;
  /** Skip discovery and fetch keys here (discovery is used otherwise). */
  jwksUri?: string | undefined;
  /** Timeout of one discovery or JWKS request. Default 5 s. */
  fetchTimeoutMs?: number | undefined;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;
const MAX_GROUPS = 1000;

/**
 * Maps a jose verification error to the reason recorded for it. Anything unrecognised is
 * `malformed`: the token did not even parse into something jose could check.
 */
export function reasonFromJoseError(err: unknown): { reason: AuthDenialReason; claim?: string } {
  if (err instanceof joseErrors.JWTExpired) return { reason: 'expired' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = err.claim;
    if (err.reason === 'missing') return { reason: 'claim_missing', claim };
    if (err.reason === 'invalid') return { reason: 'claim_invalid', claim };
    switch (claim) {
      case 'typ':
        return { reason: 'type_mismatch' };
      case 'iss':
        return { reason: 'issuer_mismatch' };
      case 'aud':
        return { reason: 'audience_mismatch' };
      case 'nbf':
      case 'iat':
        return { reason: 'not_yet_valid', claim };
      default:
        return { reason: 'claim_invalid', claim };
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return { reason: 'alg_not_allowed' };
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return { reason: 'kid_unknown' };
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { reason: 'signature_invalid' };
  return { reason: 'malformed' };
}

class IdpUnreachable extends Error {}

/**
 * Verifies access tokens of one OIDC issuer: discovery, JWKS with a cache and a cooldown,
 * algorithm allow-list, `iss`, `aud`, `exp` required, `nbf`, clock tolerance, `typ: at+jwt`,
 * then maps subject, groups and roles.
 *
 * Keys: fetched on first use (the gateway starts while the IdP is down), used for
 * `jwksCacheMaxAgeMs`, refetched when stale or when a token names an unknown `kid` - but never
 * more than once per `jwksCooldownMs`, whatever the traffic (a flood of random kids costs one
 * fetch). A fetch that fails while the cache is still young changes nothing; once the cache is
 * older than its max age and the IdP cannot be reached, every token of this issuer fails
 * closed with ERR_AUTH_IDP_UNAVAILABLE.
 *
 * jose's createRemoteJWKSet is not used: its cooldown counts from the last successful fetch
 * only, so with a stale cache and the IdP down it would go to the IdP on every request.
 *
 * @example
 * const v = new OidcVerifier({ issuer: 'https://idp.example.com', audience: 'urn:ward',
 *   roles: { admin: ['platform-admins'] } });
 * const who = await v.verify(token); // { subject: 'alice', groups: [...], roles: ['user', 'admin'], … }
 */
export class OidcVerifier {
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly clientId: string | undefined;
  readonly #algorithms: readonly string[];
  readonly #subjectClaim: string;
  readonly #groupsPath: readonly string[];
  readonly #roles: readonly [Role, ReadonlySet<string>][];
  readonly #defaultRoles: readonly Role[];
  readonly #tolerance: number;
  readonly #maxAge: number;
  readonly #cooldown: number;
  readonly #typ: string | undefined;
  readonly #timeout: number;
  readonly #now: () => number;
  #jwksUri: string | undefined;
  #keys: JWTVerifyGetKey | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  #fetches = 0;

  constructor(options: OidcIssuerOptions, clock: { now(): number } = Date) {
    this.issuer = options.issuer;
    this.audience = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
    this.clientId = options.clientId;
    this.#algorithms = [...(options.algorithms ?? DEFAULT_OIDC_ALGORITHMS)];
    for (const alg of this.#algorithms) {
      if (!(OIDC_ALGORITHMS as readonly string[]).includes(alg)) throw new TypeError(`algorithm ${alg} is not allowed`);
    }
    this.#subjectClaim = options.subjectClaim ?? 'sub';
    this.#groupsPath = (options.groupsClaim ?? 'groups').split('.');
    this.#roles = Object.entries(options.roles ?? {}).map(([role, groups]) => [role as Role, new Set(groups)]);
    this.#defaultRoles = [...(options.defaultRoles ?? ['user'])];
    this.#tolerance = options.clockToleranceSeconds ?? 30;
    this.#maxAge = options.jwksCacheMaxAgeMs ?? 10 * 60_000;
    this.#cooldown = options.jwksCooldownMs ?? 30_000;
    this.#typ = options.requireAccessTokenType === false ? undefined : 'at+jwt';
    this.#timeout = options.fetchTimeoutMs ?? 5_000;
    this.#jwksUri = options.jwksUri;
    this.#now = () => clock.now();
  }

  /** Discovery + JWKS requests made so far (for tests and metrics). */
  get fetches(): number {
    return this.#fetches;
  }

  /**
   * Verifies an access token of this issuer. `alg` is checked against the allow-list before
   * any key is looked up, so `none`/HS* tokens never cause a fetch.
   * @throws AuthDenied
   */
  async verify(token: string, header: { alg?: unknown }): Promise<Identity> {
    if (typeof header.alg !== 'string' || !this.#algorithms.includes(header.alg)) {
      throw new AuthDenied('alg_not_allowed', { issuer: this.issuer });
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (h, t) => this.#key(h, t), {
        algorithms: [...this.#algorithms],
        issuer: this.issuer,
        audience: [...this.audience],
        requiredClaims: ['exp'],
        clockTolerance: this.#tolerance,
        ...(this.#typ ? { typ: this.#typ } : {}),
      }));
    } catch (err) {
      if (err instanceof AuthDenied) throw err;
      if (err instanceof IdpUnreachable) throw new AuthDenied('idp_unavailable', { cause: err, issuer: this.issuer });
      const { reason, claim } = reasonFromJoseError(err);
      throw new AuthDenied(reason, { cause: err, claim, issuer: this.issuer });
    }
    return this.#identity(token, payload);
  }

  #identity(token: string, payload: JWTPayload): Identity {
    const subject = payload[this.#subjectClaim];
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 255) {
      throw new AuthDenied(subject === undefined ? 'claim_missing' : 'claim_invalid', {
        claim: this.#subjectClaim,
        issuer: this.issuer,
      });
    }
    let node: unknown = payload;
    for (const part of this.#groupsPath) {
      node =
        typeof node === 'object' && node !== null && !Array.isArray(node)
          ? (node as Record<string, unknown>)[part]
          : undefined;
    }
    const raw = typeof node === 'string' ? [node] : Array.isArray(node) ? node : [];
    const groups = [...new Set(raw.filter((g): g is string => typeof g === 'string' && g.length > 0))].slice(
      0,
      MAX_GROUPS,
    );
    const roles = new Set<Role>(this.#defaultRoles);
    for (const [role, grantedBy] of this.#roles) if (groups.some((g) => grantedBy.has(g))) roles.add(role);
    const email = typeof payload['email'] === 'string' ? payload['email'] : undefined;
    const display =
      email ??
      (typeof payload['preferred_username'] === 'string' ? payload['preferred_username'] : undefined) ??
      (typeof payload['name'] === 'string' ? payload['name'] : undefined);
    // RFC 9068 §2.2: a client_credentials token names the client itself as its subject.
    const clientId = typeof payload['client_id'] === 'string' ? payload['client_id'] : undefined;
    const identity: Identity = {
      subject,
      kind: clientId !== undefined && clientId === subject ? 'service' : 'user',
      roles: [...roles],
      groups,
      issuer: this.issuer,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
      // A token id for the records that never lets anyone rebuild the token.
      tokenId:
        typeof payload.jti === 'string' && payload.jti.length <= 255
          ? payload.jti
          : `sha256:${createHash('sha256').update(token).digest('hex').slice(0, 32)}`,
    };
    if (email !== undefined) identity.email = email;
    if (display !== undefined) identity.displayName = display;
    return identity;
  }

  async #key(header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) {
    const now = this.#now();
    if (!this.#keys || now - this.#fetchedAt >= this.#maxAge) {
      // Stale or never fetched: without a fresh set, fail closed.
      if (
        now - this.#attemptedAt < this.#cooldown &&
        this.#pending === undefined &&
        this.#attemptedAt > this.#fetchedAt
      ) {
        throw new IdpUnreachable('the last JWKS fetch failed; waiting for the cooldown');
      }
      await this.#reload();
    }
    const keys = this.#keys;
    if (!keys) throw new IdpUnreachable('no JWKS');
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey) || this.#now() - this.#attemptedAt < this.#cooldown) throw err;
      // A kid we do not know: maybe the IdP rotated. One refetch per cooldown; if it fails,
      // the (still young) cache stands and the token is refused for its kid.
      await this.#reload().catch(() => {});
      const fresh = this.#keys;
      if (!fresh || fresh === keys) throw err;
      return fresh(header, token);
    }
  }

  #reload(): Promise<void> {
    this.#pending ??= (async () => {
      this.#attemptedAt = this.#now();
      try {
        this.#jwksUri ??= await this.#discover();
        const jwks = (await this.#fetchJson(this.#jwksUri)) as JSONWebKeySet;
        if (!Array.isArray(jwks.keys)) throw new IdpUnreachable('the JWKS has no keys array');
        this.#keys = createLocalJWKSet(jwks);
        this.#fetchedAt = this.#now();
      } finally {
        this.#pending = undefined;
      }
    })();
    return this.#pending;
  }

  async #discover(): Promise<string> {
    const meta = (await this.#fetchJson(
      `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`,
    )) as Record<string, unknown>;
    // OpenID Connect Discovery §4.3: the document must state exactly the issuer we trust.
    if (meta['issuer'] !== this.issuer) {
      throw new IdpUnreachable('the discovery document names another issuer');
    }
    const uri = meta['jwks_uri'];
    if (typeof uri !== 'string' || !/^https?:\/\//.test(uri)) throw new IdpUnreachable('discovery has no jwks_uri');
    return uri;
  }

  async #fetchJson(url: string): Promise<unknown> {
    this.#fetches += 1;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(this.#timeout), headers: { accept: 'application/json' } });
    } catch (err) {
      throw new IdpUnreachable(`cannot fetch ${url}`, { cause: err });
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new IdpUnreachable(`${url} answered ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_DOCUMENT_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new IdpUnreachable(`${url} is too large`);
    }
    try {
      const text = await res.text();
      if (text.length > MAX_DOCUMENT_BYTES) throw new IdpUnreachable(`${url} is too large`);
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw err instanceof IdpUnreachable ? err : new IdpUnreachable(`${url} is not JSON`, { cause: err });
    }
  }
}
