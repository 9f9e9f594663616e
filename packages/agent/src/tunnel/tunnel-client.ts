import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import {
  AGENT_KEY_METADATA,
  type AgentMessage,
  AgentMessageSchema,
  backoffDelay,
  ConnectionType,
  create,
  errorFromInfo,
  fromGrpcError,
  type GatewayMessage,
  grpcOptions,
  isLoopbackHost,
  SessionChannel,
  type SessionFrame,
  type SessionStart,
  splitHostPort,
  TUNNEL_DEFAULTS,
  tunnelServiceDefinition,
  WardError,
  type Welcome,
} from '@ward/protocol';

export type ConnectionKind = 'postgres' | 'ssh' | 'http';

export interface TunnelClientOptions {
  /** Gateway tunnel address, `host:port`. */
  address: string;
  /** Plaintext gRPC; refused unless the address is loopback. */
  insecure?: boolean;
  /** PEM CA bundle that signed the gateway's certificate (system roots when absent). */
  ca?: Buffer;
  /** Name to verify in the gateway's certificate, when it differs from the address. */
  serverName?: string;
  /** The agent key. Sent as call metadata, never logged. */
  key: string;
  connections: ReadonlyArray<{ name: string; type: ConnectionKind }>;
  idleStreams?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  keepaliveIntervalMs?: number;
  version?: string;
  /** Serves one session; owns the channel until it closes. */
  onSession: (start: SessionStart, channel: SessionChannel) => void;
}

export type TunnelClientState = 'connecting' | 'online' | 'waiting' | 'stopped';

const TYPE_TO_PROTO: Record<ConnectionKind, ConnectionType> = {
  postgres: ConnectionType.POSTGRES,
  ssh: ConnectionType.SSH,
  http: ConnectionType.HTTP,
};

type GenericClient = grpc.Client & {
  control(metadata: grpc.Metadata): grpc.ClientDuplexStream<AgentMessage, GatewayMessage>;
  session(metadata: grpc.Metadata): grpc.ClientDuplexStream<SessionFrame, SessionFrame>;
};
const TunnelClientCtor = grpc.makeGenericClientConstructor(tunnelServiceDefinition(), 'Tunnel') as unknown as new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ClientOptions,
) => GenericClient;

/**
 * The agent's end of the tunnel. It dials the gateway (the agent never listens), says which
 * connections it serves, keeps a pool of idle Session streams for the gateway to start
 * sessions on, and reconnects by itself with exponential backoff and full jitter.
 *
 * Events: `online` (Welcome), `offline` (WardError), `refused` (WardError: bad or revoked key),
 * `state` (TunnelClientState).
 *
 * @example
 * const client = new TunnelClient({ address: '127.0.0.1:7401', insecure: true, key, connections, onSession });
 * client.start();
 */
export class TunnelClient extends EventEmitter {
  readonly #options: TunnelClientOptions;
  readonly #idleTarget: number;
  #state: TunnelClientState = 'stopped';
  #attempt = 0;
  #client: GenericClient | undefined;
  #control: grpc.ClientDuplexStream<AgentMessage, GatewayMessage> | undefined;
  #welcome: Welcome | undefined;
  #idle = new Set<SessionChannel>();
  #active = new Set<SessionChannel>();
  #retryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #lastHeard = 0;
  #nonce = 0n;

  constructor(options: TunnelClientOptions) {
    super();
    const { host } = splitHostPort(options.address);
    if (options.insecure && !isLoopbackHost(host)) {
      throw new WardError(
        'ERR_TUNNEL_INSECURE_NON_LOOPBACK',
        'invalid_argument',
        `plaintext tunnel refused to ${options.address}: configure gateway.ca (TLS) or use a loopback address`,
      );
    }
    this.#options = options;
    this.#idleTarget = options.idleStreams ?? TUNNEL_DEFAULTS.idleStreams;
  }

  get state(): TunnelClientState {
    return this.#state;
  }

  /** The gateway's last Welcome: accepted and rejected connections, window, limits. */
  get welcome(): Welcome | undefined {
    return this.#welcome;
  }

  get activeSessions(): number {
    return this.#active.size;
  }

  start(): void {
    if (this.#state !== 'stopped') return;
    this.#connect();
  }

  /** Closes every session and the tunnel; no reconnect. */
  async stop(): Promise<void> {
    this.#setState('stopped');
    clearTimeout(this.#retryTimer);
    const reason = new WardError('ERR_AGENT_SHUTDOWN', 'unavailable', 'the agent is shutting down');
    for (const channel of [...this.#active, ...this.#idle]) channel.close(reason);
    this.#teardown();
  }

  #setState(state: TunnelClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }

  #credentials(): grpc.ChannelCredentials {
    return this.#options.insecure
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(this.#options.ca ?? null);
  }

  #metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(AGENT_KEY_METADATA, this.#options.key);
    return md;
  }

  #connect(): void {
    this.#setState('connecting');
    const keepalive = this.#options.keepaliveIntervalMs ?? TUNNEL_DEFAULTS.keepaliveIntervalMs;
    const options: grpc.ClientOptions = {
      ...grpcOptions(TUNNEL_DEFAULTS.maxFrameBytes * 4, keepalive),
      // Our own loop does the backoff; grpc-js's channel backoff must not add minutes to it.
      'grpc.initial_reconnect_backoff_ms': this.#options.initialDelayMs ?? 250,
      'grpc.max_reconnect_backoff_ms': this.#options.maxDelayMs ?? 10_000,
      ...(this.#options.serverName
        ? {
            'grpc.ssl_target_name_override': this.#options.serverName,
            'grpc.default_authority': this.#options.serverName,
          }
        : {}),
    };
    const client = new TunnelClientCtor(this.#options.address, this.#credentials(), options);
    this.#client = client;
    const control = client.control(this.#metadata());
    this.#control = control;
    let ended = false;
    const end = (error: WardError) => {
      if (ended) return;
      ended = true;
      this.#onControlLost(control, error);
    };
    control.on('data', (message: GatewayMessage) => this.#onGatewayMessage(message, end));
    control.on('error', (err) => end(fromGrpcError(err)));
    control.on('end', () =>
      end(new WardError('ERR_TUNNEL_UNAVAILABLE', 'unavailable', 'the gateway ended the control stream')),
    );
    control.write(
      create(AgentMessageSchema, {
        msg: {
          case: 'hello',
          value: {
            agentVersion: this.#options.version ?? '',
            hostname: hostname(),
            idleStreams: this.#idleTarget,
            connections: this.#options.connections.map((c) => ({ name: c.name, type: TYPE_TO_PROTO[c.type] })),
          },
        },
      }),
    );
  }

  #onGatewayMessage(message: GatewayMessage, end: (error: WardError) => void): void {
    this.#lastHeard = Date.now();
    switch (message.msg.case) {
      case 'welcome': {
        this.#welcome = message.msg.value;
        this.#attempt = 0;
        this.#setState('online');
        this.#startKeepalive(message.msg.value.keepaliveIntervalMs || TUNNEL_DEFAULTS.keepaliveIntervalMs, end);
        for (let i = 0; i < this.#idleTarget; i++) this.#openIdle();
        this.emit('online', message.msg.value);
        return;
      }
      case 'wantStreams':
        for (let i = 0; i < Math.min(message.msg.value.count, 64); i++) this.#openIdle();
        return;
      case 'ping':
        this.#control?.write(
          create(AgentMessageSchema, { msg: { case: 'pong', value: { nonce: message.msg.value.nonce } } }),
        );
        return;
      case 'pong':
        return;
      case 'refusal': {
        const error = errorFromInfo(message.msg.value.error);
        this.emit('refused', error);
        end(error);
        return;
      }
      default:
        return;
    }
  }

  #startKeepalive(intervalMs: number, end: (error: WardError) => void): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (Date.now() - this.#lastHeard > 3 * intervalMs) {
        end(new WardError('ERR_TUNNEL_KEEPALIVE', 'deadline_exceeded', 'the gateway stopped answering keepalives'));
        return;
      }
      this.#nonce += 1n;
      this.#control?.write(create(AgentMessageSchema, { msg: { case: 'ping', value: { nonce: this.#nonce } } }));
    }, intervalMs);
    this.#pingTimer.unref();
  }

  #openIdle(): void {
    const client = this.#client;
    const welcome = this.#welcome;
    if (!client || !welcome || this.#state !== 'online') return;
    const stream = client.session(this.#metadata());
    const channel = new SessionChannel(stream, {
      windowBytes: welcome.sessionWindowBytes || TUNNEL_DEFAULTS.sessionWindowBytes,
      maxFrameBytes: welcome.maxFrameBytes || TUNNEL_DEFAULTS.maxFrameBytes,
    });
    this.#idle.add(channel);
    channel.onClose(() => {
      this.#idle.delete(channel);
      this.#active.delete(channel);
    });
    channel.onFrame((frame) => {
      if (!this.#idle.delete(channel)) return;
      channel.onFrame(undefined);
      if (frame.frame.case !== 'start') {
        channel.close(
          new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', `expected start, got ${frame.frame.case}`),
        );
        return;
      }
      this.#active.add(channel);
      this.#openIdle(); // refill the pool
      try {
        this.#options.onSession(frame.frame.value, channel);
      } catch (err) {
        channel.close(err instanceof WardError ? err : new WardError('ERR_AGENT_INTERNAL', 'internal', String(err)));
      }
    });
  }

  #onControlLost(control: grpc.ClientDuplexStream<AgentMessage, GatewayMessage>, error: WardError): void {
    if (this.#control !== control) return;
    this.#teardown();
    if (this.#state === 'stopped') return;
    this.emit('offline', error);
    const delay =
      error.kind === 'unauthenticated'
        ? (this.#options.maxDelayMs ?? 10_000) // a bad key will not fix itself quickly
        : backoffDelay(this.#attempt++, this.#options.initialDelayMs ?? 250, this.#options.maxDelayMs ?? 10_000);
    this.#setState('waiting');
    this.emit('retry', { delayMs: delay, error });
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #teardown(): void {
    clearInterval(this.#pingTimer);
    const reason = new WardError('ERR_TUNNEL_UNAVAILABLE', 'unavailable', 'the tunnel to the gateway was lost');
    // Sessions ride on the same HTTP/2 connection; without it they cannot go on.
    for (const channel of [...this.#idle, ...this.#active]) channel.destroy(reason);
    this.#idle.clear();
    this.#active.clear();
    this.#control?.cancel();
    this.#control = undefined;
    this.#welcome = undefined;
    this.#client?.close();
    this.#client = undefined;
  }
}
