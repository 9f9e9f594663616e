export * from './api/index.js';
export {
  findGatewayCredentials,
  GATEWAY_DEFAULTS,
  type GatewayAgentConfig,
  type GatewayConfig,
  type GatewayConnectionConfig,
  type GatewayIdentityConfig,
  type GatewayListen,
  type GatewayStoreConfig,
  type GatewayTunnelConfig,
  gatewayConfigSchema,
  loadGatewayConfig,
  type OidcIssuerConfig,
  oidcIssuerOptions,
  parseGatewayConfig,
} from './config/index.js';
export { type RunningGateway, startGateway } from './gateway.js';
export type { GatewayConnection, GatewayOptions } from './gateway-options.js';
export * from './http/index.js';
export * from './identity/index.js';
export * from './llm/index.js';
export * from './postgres/index.js';
export * from './recording/index.js';
export * from './sessions/index.js';
export * from './ssh/index.js';
export * from './store/index.js';
export * from './tunnel/index.js';
