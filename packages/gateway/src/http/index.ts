export { BodyCapture } from './body-capture.js';
export { type ConnectUpgradeOptions, createConnectUpgrade } from './connect-upgrade.js';
export type { ExchangeInfo, HttpExchangeHooks, ResponseInfo } from './exchange-hooks.js';
export {
  HTTP_PROXY_DEFAULTS,
  type HttpConnectionLimits,
  type HttpExchangeTarget,
  type HttpProxyContext,
  proxyHttpExchange,
  redactPath,
} from './http-proxy.js';
export {
  type ApiHandler,
  createGatewayHttpServer,
  type GatewayHttpOptions,
  type HttpConnectionInfo,
} from './http-server.js';
export { readBody, readJsonObject } from './json-body.js';
export { sendJson, sendJsonError } from './json-error.js';
export { ResponseRelay, type ResponseRelayOptions } from './response-relay.js';
