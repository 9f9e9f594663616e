import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { WardError } from '@ward/protocol';
import { importPKCS8, importSPKI, type JWTPayload, errors as joseErrors, jwtVerify, type KeyLike, SignJWT } from 'jose';

export type Role = 'admin' | 'auditor' | 'approver' | 'user';

/** A verified caller. Every session and audit record carries one. */
export interface Identity {
  subject: string;
  kind: 'user' | 'service';
  roles: Role[];
  groups: string[];
  /** Who vouched for it: the gateway itself, or an OIDC issuer. */
  issuer: string;
  expiresAt: Date;
  tokenId: string;
  /** From an OIDC token's `email` claim, when it has one. */
  email?: string;
  /** What to show for the person: email, else preferred_username, else name (OIDC only). */
  displayName?: string;
}

export interface TokenServiceOptions {
  /** PEM file holding the gateway's Ed25519 token key; created (mode 0600) when missing. */
  keyPath: string;
  issuer: string;
  audience?: string;
  clockToleranceSeconds?: number;
}

/** Tokens longer than this are refused before any parsing (a 1 MB token is an attack). */
export const MAX_TOKEN_BYTES = 8 * 1024;
const ALGORITHM = 'EdDSA';
const ROLES: ReadonlySet<string> = new Set(['admin', 'auditor', 'approver', 'user']);

/**
 * Gateway-issued tokens: EdDSA JWTs for the demo admin and for bootstrap, checked like any
 * other token (algorithm allow-list, issuer, audience, `exp` required, `nbf`, small clock
 * tolerance). OIDC tokens from an organisation's IdP are verified elsewhere, to the same rules.
 *
 * @example
 * const tokens = await TokenService.open({ keyPath: 'data/token-key.pem', issuer: 'ward:local' });
 * const token = await tokens.issue({ subject: 'alice', roles: ['admin'], ttlSeconds: 3600 });
 * const who = await tokens.verify(token); // { subject: 'alice', roles: ['admin'], … }
 */
export class TokenService {
  readonly issuer: string;
  readonly audience: string;
  readonly #privateKey: KeyLike;
  readonly #publicKey: KeyLike;
  readonly #tolerance: number;

  private constructor(options: TokenServiceOptions, privateKey: KeyLike, publicKey: KeyLike) {
    this.issuer = options.issuer;
    this.audience = options.audience ?? 'urn:ward';
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#tolerance = options.clockToleranceSeconds ?? 30;
  }

  static async open(options: TokenServiceOptions): Promise<TokenService> {
    if (!existsSync(options.keyPath)) {
      mkdirSync(dirname(options.keyPath), { recursive: true, mode: 0o700 });
      const { privateKey } = generateKeyPairSync('ed25519');
      writeFileSync(options.keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    }
    const pem = readFileSync(options.keyPath, 'utf8');
    const spki = createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
    return new TokenService(options, await importPKCS8(pem, ALGORITHM), await importSPKI(spki, ALGORITHM));
  }

  async issue(claims: {
    subject: string;
    roles: Role[];
    kind?: 'user' | 'service';
    groups?: string[];
    ttlSeconds: number;
    /** For a token exchanged for another issuer's (`POST /api/v1/token`): who vouched first. */
    originalIssuer?: string;
  }): Promise<string> {
    return new SignJWT({
      roles: claims.roles,
      groups: claims.groups ?? [],
      kind: claims.kind ?? 'user',
      ...(claims.originalIssuer !== undefined ? { orig_iss: claims.originalIssuer } : {}),
    })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(claims.subject)
      .setIssuedAt()
      .setNotBefore('0s')
      .setJti(randomUUID())
      .setExpirationTime(`${Math.max(1, Math.floor(claims.ttlSeconds))}s`)
      .sign(this.#privateKey);
  }

  /** Verifies a token and returns who it names. Failures say little on purpose (no oracle). */
  async verify(token: string): Promise<Identity> {
    if (token.length > MAX_TOKEN_BYTES) {
      throw new WardError('ERR_AUTH_TOKEN_INVALID', 'unauthenticated', 'token verification failed');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#publicKey, {
        algorithms: [ALGORITHM],
        issuer: this.issuer,
        audience: this.audience,
        requiredClaims: ['exp', 'sub', 'iat'],
        typ: 'at+jwt',
        clockTolerance: this.#tolerance,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) {
        throw new WardError('ERR_AUTH_TOKEN_EXPIRED', 'unauthenticated', 'token expired: run `ward login` again', {
          cause: err,
        });
      }
      throw new WardError('ERR_AUTH_TOKEN_INVALID', 'unauthenticated', 'token verification failed', { cause: err });
    }
    const roles = Array.isArray(payload['roles'])
      ? payload['roles'].filter((r): r is Role => typeof r === 'string' && ROLES.has(r))
      : [];
    const groups = Array.isArray(payload['groups'])
      ? payload['groups'].filter((g): g is string => typeof g === 'string')
      : [];
    return {
      subject: payload.sub ?? '',
      kind: payload['kind'] === 'service' ? 'service' : 'user',
      roles,
      groups,
      issuer: typeof payload['orig_iss'] === 'string' ? payload['orig_iss'] : this.issuer,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
      tokenId: payload.jti ?? '',
    };
  }
}

/** Pulls a bearer token out of an Authorization header or an API-key header. */
export function bearerToken(authorization: string | undefined, apiKeyHeader?: string | undefined): string | undefined {
  if (authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
  }
  return apiKeyHeader && apiKeyHeader.length > 0 ? apiKeyHeader : undefined;
}
