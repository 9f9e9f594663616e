export { agentKeyHashEquals, generateAgentKey, hashAgentKey, isLoopbackHost, splitHostPort } from './agent-key.js';
export { backoffDelay } from './backoff.js';
export { ReceiveWindow, SendWindow } from './credit.js';
export { AGENT_KEY_METADATA, grpcMessageLimit, grpcOptions, TUNNEL_DEFAULTS } from './defaults.js';
export { encodeSessionFrame, tunnelServiceDefinition } from './frame-codec.js';
export {
  type FrameStream,
  fromGrpcError,
  payloadBytes,
  SessionChannel,
  type SessionChannelOptions,
} from './session-channel.js';
export { unexpectedFrame } from './unexpected-frame.js';
