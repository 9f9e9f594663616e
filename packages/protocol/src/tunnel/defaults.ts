/** Tunnel constants both sides agree on. Sizes are payload bytes. */
export const AGENT_KEY_METADATA = 'ward-agent-key';

export const TUNNEL_DEFAULTS = Object.freeze({
  /** Per-session credit window, each direction (the issue asks for about 1 MiB). */
  sessionWindowBytes: 1024 * 1024,
  /** Largest payload carried by one data frame; bigger writes are split. */
  maxFrameBytes: 256 * 1024,
  keepaliveIntervalMs: 10_000,
  idleStreams: 4,
  /** How long the gateway waits for an agent to accept a session. */
  sessionStartTimeoutMs: 15_000,
  /**
   * HTTP/2 stream and connection receive windows of the tunnel's gRPC connection. HTTP/2's
   * 64 KiB default made every 64 KiB wait for a WINDOW_UPDATE round trip, which capped a
   * session far below what its credit window allows. Memory stays bounded by the session
   * credit: grpc-js reads every stream eagerly whatever the HTTP/2 window.
   */
  http2WindowBytes: 8 * 1024 * 1024,
});

/** gRPC message limit: a full data frame plus room for the frame's own fields. */
export function grpcMessageLimit(maxFrameBytes: number): number {
  return maxFrameBytes + 64 * 1024;
}

/** Channel/server options both ends set explicitly (message limits, keepalives). */
export function grpcOptions(maxFrameBytes: number, keepaliveIntervalMs: number): Record<string, number> {
  const limit = grpcMessageLimit(maxFrameBytes);
  return {
    'grpc.max_receive_message_length': limit,
    'grpc.max_send_message_length': limit,
    // Applied by grpc-js on the client (the agent); TunnelServer applies it to its sessions.
    'grpc-node.flow_control_window': TUNNEL_DEFAULTS.http2WindowBytes,
    'grpc.keepalive_time_ms': keepaliveIntervalMs,
    'grpc.keepalive_timeout_ms': Math.max(2_000, Math.min(keepaliveIntervalMs, 10_000)),
    'grpc.keepalive_permit_without_calls': 1,
    // The server must accept pings at the client's rate, or it answers GOAWAY too_many_pings.
    'grpc.http2.min_ping_interval_without_data_ms': Math.min(keepaliveIntervalMs, 5_000),
    'grpc.http2.max_pings_without_data': 0,
  };
}
