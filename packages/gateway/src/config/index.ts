export {
  ACCESS_DEFAULTS,
  type AccessAction,
  type AccessConfig,
  type AccessGrantConfig,
  type AccessWindowConfig,
  accessConfigSchema,
  parseTimeOfDay,
  type Weekday,
} from './access-config.js';
export {
  type ConnectionType,
  findGatewayCredentials,
  GATEWAY_DEFAULTS,
  type GatewayAgentConfig,
  type GatewayConfig,
  type GatewayConnectionConfig,
  type GatewayConnectionLimits,
  type GatewayListen,
  type GatewayStoreConfig,
  type GatewayTunnelConfig,
  gatewayConfigSchema,
  type LlmApi,
  loadGatewayConfig,
  parseGatewayConfig,
} from './gateway-config.js';
export {
  type GatewayIdentityConfig,
  IDENTITY_DEFAULTS,
  identityConfigSchema,
  type OidcIssuerConfig,
  oidcIssuerOptions,
} from './identity-config.js';
