export {
  type AgentEntry,
  type OnlineAgent,
  type TunnelConnectionEntry,
  TunnelServer,
  type TunnelServerOptions,
} from './tunnel-server.js';
export type { ConnectionKind, TunnelEvent } from './types.js';
