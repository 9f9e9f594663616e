export {
  type ConnectionKind,
  TunnelClient,
  type TunnelClientOptions,
  type TunnelClientState,
} from './tunnel-client.js';
