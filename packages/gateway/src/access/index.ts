export { type AccessApiContext, createAccessApi } from './access-api.js';
export {
  AccessControl,
  type AccessControlOptions,
  type AccessDecision,
  type AccessProtocol,
  type AuthorizeRequest,
  type Authorizer,
  type Verdict,
} from './access-control.js';
export { connectionMatches, matchStaticGrant, windowOpenUntil } from './grants.js';
export {
  createTokenEndpoint,
  GRANT_CLIENT_CREDENTIALS,
  GRANT_TOKEN_EXCHANGE,
  type TokenEndpointOptions,
} from './token-endpoint.js';
