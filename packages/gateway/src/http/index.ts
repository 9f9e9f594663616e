export { BodyCapture } from './body-capture.js';
export { type ConnectUpgradeOptions, createConnectUpgrade } from './connect-upgrade.js';
export { type HttpExchangeTarget, type HttpProxyContext, proxyHttpExchange, redactPath } from './http-proxy.js';
export { type ApiHandler, createGatewayHttpServer, type GatewayHttpOptions } from './http-server.js';
export { sendJson, sendJsonError } from './json-error.js';
