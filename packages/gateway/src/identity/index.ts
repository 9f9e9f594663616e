export {
  bearerToken,
  type Identity,
  MAX_TOKEN_BYTES,
  type Role,
  TokenService,
  type TokenServiceOptions,
} from './token-service.js';
