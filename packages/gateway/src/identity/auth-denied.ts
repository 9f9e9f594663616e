import { WardError } from '@ward/protocol';

/**
 * Why a token was refused, as recorded in `auth.denied` audit records (`data.reason`). The
 * client never sees it: it gets ERR_AUTH_TOKEN_INVALID whatever the reason (no oracle), except
 * for an expired token (ERR_AUTH_TOKEN_EXPIRED, so people know to log in again) and an IdP that
 * cannot be reached (ERR_AUTH_IDP_UNAVAILABLE: not the caller's fault).
 */
export type AuthDenialReason =
  /** Longer than MAX_TOKEN_BYTES; refused before any parsing. */
  | 'token_too_large'
  /** Not a compact JWS/JWT, or its header or claims are not JSON objects. */
  | 'malformed'
  /** `iss` names neither the gateway nor a configured OIDC issuer. */
  | 'issuer_unknown'
  /** `alg` outside the issuer's allow-list (`none` and HS* never are in it). */
  | 'alg_not_allowed'
  /** No published key has this `kid` (and the JWKS was refetched at most once per cooldown). */
  | 'kid_unknown'
  | 'signature_invalid'
  | 'expired'
  /** `nbf` (or `iat`) is in the future beyond the clock tolerance. */
  | 'not_yet_valid'
  /** A required claim (`exp`, the subject claim) is absent: `data.claim` names it. */
  | 'claim_missing'
  /** A claim has the wrong type or value (`data.claim` names it). */
  | 'claim_invalid'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  /** `typ` is not `at+jwt`: e.g. an ID token presented as an access token. */
  | 'type_mismatch'
  /** Discovery or JWKS unreachable and no key cache young enough to go on with (fails closed). */
  | 'idp_unavailable';

const GENERIC = 'token verification failed';

/**
 * A refused token. Its `code` and message are what the client gets; `reason`, `claim` and
 * `issuer` are for the audit record only (see `authDenialData`).
 */
export class AuthDenied extends WardError {
  readonly reason: AuthDenialReason;
  readonly claim: string | undefined;
  /** The configured issuer the token claimed (never an unknown, attacker-chosen `iss`). */
  readonly issuer: string | undefined;

  constructor(
    reason: AuthDenialReason,
    options: { cause?: unknown; claim?: string | undefined; issuer?: string | undefined } = {},
  ) {
    const [code, kind, message] =
      reason === 'expired'
        ? (['ERR_AUTH_TOKEN_EXPIRED', 'unauthenticated', 'token expired: run `ward login` again'] as const)
        : reason === 'idp_unavailable'
          ? ([
              'ERR_AUTH_IDP_UNAVAILABLE',
              'unavailable',
              "cannot check the token: the identity provider's keys cannot be fetched; try again later",
            ] as const)
          : (['ERR_AUTH_TOKEN_INVALID', 'unauthenticated', GENERIC] as const);
    super(code, kind, message, options.cause === undefined ? {} : { cause: options.cause });
    this.reason = reason;
    this.claim = options.claim;
    this.issuer = options.issuer;
  }
}

/**
 * The audit-record fields of an authentication failure: `{ reason, claim?, issuer? }` for a
 * refused token, `{}` for anything else. Never the token.
 *
 * @example
 * recorder.record(undefined, 'auth.denied', { rule: 'auth.token', data: { code: err.code, ...authDenialData(err) } });
 */
export function authDenialData(err: unknown): { reason?: AuthDenialReason; claim?: string; issuer?: string } {
  if (!(err instanceof AuthDenied)) return {};
  return {
    reason: err.reason,
    ...(err.claim !== undefined ? { claim: err.claim } : {}),
    ...(err.issuer !== undefined ? { issuer: err.issuer } : {}),
  };
}
