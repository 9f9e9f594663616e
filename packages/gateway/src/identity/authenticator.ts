import { toWardError, WardError } from '@ward/protocol';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { AuthDenied } from './auth-denied.js';
import { type OidcIssuerOptions, OidcVerifier, reasonFromJoseError } from './oidc-verifier.js';
import { type Identity, MAX_TOKEN_BYTES, type TokenService } from './token-service.js';

/** What `GET /api/v1/identity/providers` publishes of one issuer (what `ward login` needs). */
export interface IdentityProviderInfo {
  issuer: string;
  clientId: string | null;
  audience: string[];
}

/**
 * The one `authenticate(token)` every protocol path calls. It refuses oversized tokens
 * before parsing anything, peeks at the unverified `iss` and hands the token to whoever can
 * vouch for that issuer: the gateway's own TokenService or the configured OIDC issuer's
 * verifier. An unknown issuer is ERR_AUTH_TOKEN_INVALID like any other bad token. Every
 * refusal is an `AuthDenied` carrying the precise reason for the audit record
 * (`authDenialData`), while the client hears only the generic code.
 *
 * @example
 * const auth = new Authenticator(tokens, [{ issuer: 'https://idp.example.com', audience: 'urn:ward' }]);
 * const who = await auth.authenticate(token);
 */
export class Authenticator {
  readonly #tokens: TokenService;
  readonly #verifiers: ReadonlyMap<string, OidcVerifier>;

  constructor(tokens: TokenService, issuers: readonly (OidcIssuerOptions | OidcVerifier)[] = []) {
    this.#tokens = tokens;
    const verifiers = new Map<string, OidcVerifier>();
    for (const i of issuers) {
      const verifier = i instanceof OidcVerifier ? i : new OidcVerifier(i);
      if (verifier.issuer === tokens.issuer || verifiers.has(verifier.issuer)) {
        throw new WardError('ERR_CONFIG_INVALID', 'invalid_argument', `issuer ${verifier.issuer} is configured twice`);
      }
      verifiers.set(verifier.issuer, verifier);
    }
    this.#verifiers = verifiers;
  }

  /** The configured OIDC issuers, for `ward login`. */
  providers(): IdentityProviderInfo[] {
    return [...this.#verifiers.values()].map((v) => ({
      issuer: v.issuer,
      clientId: v.clientId ?? null,
      audience: [...v.audience],
    }));
  }

  verifier(issuer: string): OidcVerifier | undefined {
    return this.#verifiers.get(issuer);
  }

  /** @throws AuthDenied */
  async authenticate(token: string): Promise<Identity> {
    // Characters before bytes: a 1 MB string is refused without walking it.
    if (token.length > MAX_TOKEN_BYTES || Buffer.byteLength(token) > MAX_TOKEN_BYTES) {
      throw new AuthDenied('token_too_large');
    }
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch (err) {
      throw new AuthDenied('malformed', { cause: err });
    }
    const iss = claims.iss;
    if (iss === this.#tokens.issuer) {
      try {
        return await this.#tokens.verify(token);
      } catch (err) {
        const cause = err instanceof WardError ? err.cause : err;
        const { reason, claim } = reasonFromJoseError(cause);
        throw new AuthDenied(reason, { cause: toWardError(err), claim, issuer: iss });
      }
    }
    const verifier = typeof iss === 'string' ? this.#verifiers.get(iss) : undefined;
    if (!verifier) throw new AuthDenied('issuer_unknown');
    return verifier.verify(token, header);
  }
}
