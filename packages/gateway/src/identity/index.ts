export { type AuthDenialReason, AuthDenied, authDenialData } from './auth-denied.js';
export { Authenticator, type IdentityProviderInfo } from './authenticator.js';
export {
  DEFAULT_OIDC_ALGORITHMS,
  OIDC_ALGORITHMS,
  type OidcAlgorithm,
  type OidcIssuerOptions,
  OidcVerifier,
} from './oidc-verifier.js';
export {
  bearerToken,
  type Identity,
  MAX_TOKEN_BYTES,
  type Role,
  TokenService,
  type TokenServiceOptions,
} from './token-service.js';
