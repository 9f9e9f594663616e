import { EventEmitter } from 'node:events';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import {
  AGENT_KEY_METADATA,
  type AgentMessage,
  ConnectionType,
  create,
  errorKindToProto,
  type GatewayMessage,
  GatewayMessageSchema,
  grpcOptions,
  hashAgentKey,
  isLoopbackHost,
  type MessageInitShape,
  SessionChannel,
  type SessionFrame,
  SessionFrameSchema,
  type SessionStartSchema,
  splitHostPort,
  TUNNEL_DEFAULTS,
  tunnelServiceDefinition,
  WardError,
} from '@ward/protocol';
import type { ConnectionKind, TunnelEvent } from './types.js';

export interface AgentEntry {
  name: string;
  /** `sha256:<hex>` of the agent key; the gateway never holds the key itself. */
  keyHash: string;
  revoked?: boolean;
}

export interface TunnelConnectionEntry {
  name: string;
  type: ConnectionKind;
  /** The agent allowed to serve it; any authenticated agent when absent. */
  agent?: string;
}

export interface TunnelServerOptions {
  /** `host:port`; port 0 picks a free one. */
  address: string;
  tls?: { cert: Buffer; key: Buffer };
  /** Plaintext gRPC. Refused unless `address` is a loopback address. */
  insecure?: boolean;
  agents: readonly AgentEntry[];
  connections: readonly TunnelConnectionEntry[];
  sessionWindowBytes?: number;
  maxFrameBytes?: number;
  keepaliveIntervalMs?: number;
  sessionStartTimeoutMs?: number;
  gatewayVersion?: string;
  /** Every agent-level event worth an audit record or a log line. */
  onEvent?: (event: TunnelEvent) => void;
}

/** An agent with a live Control stream. */
export interface OnlineAgent {
  name: string;
  hostname: string;
  version: string;
  peer: string;
  since: Date;
  connections: string[];
}

interface AgentState extends OnlineAgent {
  control: grpc.ServerDuplexStream<AgentMessage, GatewayMessage>;
  idle: Array<grpc.ServerDuplexStream<SessionFrame, SessionFrame>>;
  waiting: Array<(stream: grpc.ServerDuplexStream<SessionFrame, SessionFrame> | undefined) => void>;
  lastSeen: number;
  watchdog: NodeJS.Timeout;
}

/**
 * grpc-js honours 'grpc-node.flow_control_window' on the client only; its server keeps
 * HTTP/2's 64 KiB windows, so an agent's data waited for a WINDOW_UPDATE round trip every
 * 64 KiB (a session topped out near 60 MiB/s on loopback, far below its credit window). This
 * widens the windows of each HTTP/2 session the server accepts, with public node:http2 calls;
 * the one private hook is grpc-js's `createHttp2Server`. If a grpc-js release drops it, the
 * tunnel keeps working at the old speed (and the tunnel benchmark shows it).
 */
function widenHttp2Windows(server: grpc.Server, bytes: number): void {
  const internals = server as unknown as { createHttp2Server?: (credentials: unknown) => Http2Server };
  const original = internals.createHttp2Server;
  if (typeof original !== 'function') return;
  internals.createHttp2Server = function (this: unknown, credentials: unknown): Http2Server {
    const http2Server = original.call(this, credentials);
    // grpc-js sets TCP_NODELAY on its client sockets only. Without it on the gateway's side, a
    // small frame (credit, a keystroke, a 64-byte query) can wait behind Nagle for an ACK.
    http2Server.on('connection', (socket: Socket) => socket.setNoDelay(true));
    http2Server.on('session', (session: ServerHttp2Session) => {
      try {
        session.settings({ initialWindowSize: bytes, maxFrameSize: 1024 * 1024 });
        session.setLocalWindowSize(bytes);
      } catch {
        // The session is already gone; nothing to widen.
      }
    });
    return http2Server;
  };
}

const TYPE_FROM_PROTO: Record<number, ConnectionKind | undefined> = {
  [ConnectionType.POSTGRES]: 'postgres',
  [ConnectionType.SSH]: 'ssh',
  [ConnectionType.HTTP]: 'http',
};

/**
 * The gateway's end of the tunnel: a gRPC server that agents dial. It authenticates each call
 * by the hash of the agent key, keeps a live registry of which agent serves which connection,
 * and hands out sessions on the agents' idle Session streams.
 *
 * @example
 * const tunnel = new TunnelServer({ address: '127.0.0.1:7401', insecure: true, agents, connections });
 * const { port } = await tunnel.start();
 * const channel = await tunnel.openSession({ connection: 'demo-openai', identity: 'alice', target: { case: 'http', value: {} } });
 */
export class TunnelServer extends EventEmitter {
  readonly #options: Required<
    Pick<TunnelServerOptions, 'sessionWindowBytes' | 'maxFrameBytes' | 'keepaliveIntervalMs' | 'sessionStartTimeoutMs'>
  > &
    TunnelServerOptions;
  readonly #server: grpc.Server;
  readonly #agentsByHash = new Map<string, AgentEntry>();
  readonly #connections = new Map<string, TunnelConnectionEntry>();
  readonly #online = new Map<string, AgentState>();
  /** connection name → agent name currently serving it. */
  readonly #servedBy = new Map<string, string>();
  readonly #sessions = new Set<SessionChannel>();
  #sessionCounter = 0;
  #stopping = false;

  constructor(options: TunnelServerOptions) {
    super();
    this.#options = {
      sessionWindowBytes: TUNNEL_DEFAULTS.sessionWindowBytes,
      maxFrameBytes: TUNNEL_DEFAULTS.maxFrameBytes,
      keepaliveIntervalMs: TUNNEL_DEFAULTS.keepaliveIntervalMs,
      sessionStartTimeoutMs: TUNNEL_DEFAULTS.sessionStartTimeoutMs,
      ...options,
    };
    const { host } = splitHostPort(options.address);
    if (!options.tls && !options.insecure) {
      throw new WardError(
        'ERR_TUNNEL_TLS_REQUIRED',
        'invalid_argument',
        'the tunnel needs a TLS certificate and key, or insecure: true on a loopback address',
      );
    }
    if (!options.tls && !isLoopbackHost(host)) {
      throw new WardError(
        'ERR_TUNNEL_INSECURE_NON_LOOPBACK',
        'invalid_argument',
        `plaintext tunnel refused on ${options.address}: use TLS, or listen on a loopback address`,
      );
    }
    this.reload(options.agents, options.connections);
    this.#server = new grpc.Server(grpcOptions(this.#options.maxFrameBytes, this.#options.keepaliveIntervalMs));
    widenHttp2Windows(this.#server, TUNNEL_DEFAULTS.http2WindowBytes);
    this.#server.addService(tunnelServiceDefinition(), {
      control: (call: grpc.ServerDuplexStream<AgentMessage, GatewayMessage>) => this.#onControl(call),
      session: (call: grpc.ServerDuplexStream<SessionFrame, SessionFrame>) => this.#onSession(call),
    });
  }

  /** Replaces the known agents and connections (config reload); online agents stay. */
  reload(agents: readonly AgentEntry[], connections: readonly TunnelConnectionEntry[]): void {
    this.#agentsByHash.clear();
    for (const agent of agents) this.#agentsByHash.set(agent.keyHash, agent);
    this.#connections.clear();
    for (const c of connections) this.#connections.set(c.name, c);
  }

  start(): Promise<{ port: number }> {
    const credentials = this.#options.tls
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ cert_chain: this.#options.tls.cert, private_key: this.#options.tls.key }],
          false,
        )
      : grpc.ServerCredentials.createInsecure();
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(this.#options.address, credentials, (err, port) => {
        if (err) {
          reject(
            new WardError(
              'ERR_TUNNEL_LISTEN',
              'unavailable',
              `cannot listen on ${this.#options.address}: ${err.message}`,
              { cause: err },
            ),
          );
        } else resolve({ port });
      });
    });
  }

  /** Agents online now. */
  agents(): OnlineAgent[] {
    return [...this.#online.values()].map(({ name, hostname, version, peer, since, connections }) => ({
      name,
      hostname,
      version,
      peer,
      since,
      connections: [...connections],
    }));
  }

  /** The agent serving a connection, if one is online. */
  agentFor(connection: string): string | undefined {
    return this.#servedBy.get(connection);
  }

  /** Sessions open through the tunnel now. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * Starts a session on the agent that serves `connection` and resolves once the agent says
   * the backend is ready. Rejects with a WardError the caller maps to its client's protocol:
   * ERR_CONN_UNKNOWN, ERR_AGENT_OFFLINE, ERR_AGENT_TIMEOUT or the agent's own backend error.
   */
  async openSession(
    start: MessageInitShape<typeof SessionStartSchema> & { connection: string },
    signal?: AbortSignal,
  ): Promise<{
    channel: SessionChannel;
    ready: Extract<SessionFrame['frame'], { case: 'ready' }>['value'];
    sessionId: string;
  }> {
    const { channel, ready, sessionId } = await this.startSession(start, signal);
    return { channel, ready: await ready, sessionId };
  }

  /**
   * `openSession` without the wait for ready: resolves once the start frame is sent, so the
   * caller may send its first frames right behind it (they count against the session's credit
   * window). `ready` settles as `openSession` would; frames after it are held until the caller
   * sets `channel.onFrame`, which it must do only after `ready` resolved.
   */
  async startSession(
    start: MessageInitShape<typeof SessionStartSchema> & { connection: string },
    signal?: AbortSignal,
  ): Promise<{
    channel: SessionChannel;
    ready: Promise<Extract<SessionFrame['frame'], { case: 'ready' }>['value']>;
    sessionId: string;
  }> {
    if (!this.#connections.has(start.connection)) {
      throw new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${start.connection}"`);
    }
    const agentName = this.#servedBy.get(start.connection);
    const agent = agentName ? this.#online.get(agentName) : undefined;
    if (!agent) {
      throw new WardError(
        'ERR_AGENT_OFFLINE',
        'unavailable',
        `no agent is online for connection "${start.connection}"`,
      );
    }
    const stream = await this.#takeIdle(agent, signal);
    const channel = new SessionChannel(stream, {
      windowBytes: this.#options.sessionWindowBytes,
      maxFrameBytes: this.#options.maxFrameBytes,
    });
    this.#sessions.add(channel);
    channel.onClose(() => this.#sessions.delete(channel));
    const sessionId = start.sessionId || `ses_${Date.now().toString(36)}${(++this.#sessionCounter).toString(36)}`;
    const ready = new Promise<Extract<SessionFrame['frame'], { case: 'ready' }>['value']>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new WardError(
          'ERR_AGENT_TIMEOUT',
          'deadline_exceeded',
          `agent "${agent.name}" did not open "${start.connection}" in time`,
        );
        channel.close(err);
        reject(err);
      }, this.#options.sessionStartTimeoutMs);
      const onAbort = () => {
        const err = new WardError(
          'ERR_SESSION_ABORTED',
          'unavailable',
          'the client went away before the session started',
        );
        channel.close(err);
        reject(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      channel.onClose((reason) => {
        settle();
        reject(
          reason ??
            new WardError('ERR_AGENT_REFUSED_SESSION', 'unavailable', 'the agent closed the session before it started'),
        );
      });
      channel.onFrame((frame) => {
        settle();
        // Hold later frames until the caller takes the channel over.
        channel.onFrame(undefined);
        if (frame.frame.case === 'ready') resolve(frame.frame.value);
        else {
          const err = new WardError(
            'ERR_TUNNEL_MALFORMED_FRAME',
            'internal',
            `agent answered ${frame.frame.case} before ready`,
          );
          channel.close(err);
          reject(err);
        }
      });
      channel.send(create(SessionFrameSchema, { frame: { case: 'start', value: { ...start, sessionId } } }));
    });
    return { channel, ready, sessionId };
  }

  /** Stops accepting, ends every session with a reason clients see, then closes the server. */
  async stop(graceMs = 2_000): Promise<void> {
    this.#stopping = true;
    const reason = new WardError('ERR_GATEWAY_SHUTDOWN', 'unavailable', 'the gateway is shutting down');
    for (const session of [...this.#sessions]) session.close(reason);
    for (const agent of [...this.#online.values()]) this.#dropAgent(agent, reason, false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends every open session at once (the audit store failed, a grant was revoked…). */
  closeAllSessions(reason: WardError): void {
    for (const session of [...this.#sessions]) session.close(reason);
  }

  #authenticate(metadata: grpc.Metadata): { agent?: AgentEntry; error?: WardError } {
    const presented = metadata.get(AGENT_KEY_METADATA)[0];
    if (typeof presented !== 'string' || presented.length === 0 || presented.length > 512) {
      return {
        error: new WardError('ERR_TUNNEL_AGENT_KEY_INVALID', 'unauthenticated', 'agent key missing or malformed'),
      };
    }
    // A map lookup on the key's SHA-256: the timing of a hash lookup reveals nothing usable
    // about the key itself, and the gateway never holds keys, only their hashes.
    const agent = this.#agentsByHash.get(hashAgentKey(presented));
    if (!agent)
      return { error: new WardError('ERR_TUNNEL_AGENT_KEY_INVALID', 'unauthenticated', 'agent key not recognised') };
    if (agent.revoked) {
      return {
        agent,
        error: new WardError(
          'ERR_TUNNEL_AGENT_KEY_REVOKED',
          'unauthenticated',
          `the key of agent "${agent.name}" is revoked`,
        ),
      };
    }
    return { agent };
  }

  #onControl(call: grpc.ServerDuplexStream<AgentMessage, GatewayMessage>): void {
    const peer = call.getPeer();
    const auth = this.#authenticate(call.metadata);
    if (this.#stopping || auth.error || !auth.agent) {
      const error = auth.error ?? new WardError('ERR_GATEWAY_SHUTDOWN', 'unavailable', 'the gateway is shutting down');
      this.#emitEvent({ kind: 'agent.refused', agent: auth.agent?.name, peer, error });
      call.write(
        create(GatewayMessageSchema, {
          msg: {
            case: 'refusal',
            value: { error: { code: error.code, message: error.message, kind: errorKindToProto(error.kind) } },
          },
        }),
      );
      call.emit('error', { code: error.grpcStatus, details: `${error.code}: ${error.message}` });
      return;
    }
    const entry = auth.agent;
    let state: AgentState | undefined;
    call.on('data', (message: AgentMessage) => {
      if (state) state.lastSeen = Date.now();
      switch (message.msg.case) {
        case 'hello':
          if (state) return; // one hello per stream
          state = this.#register(entry, call, peer, message.msg.value);
          return;
        case 'ping':
          call.write(
            create(GatewayMessageSchema, { msg: { case: 'pong', value: { nonce: message.msg.value.nonce } } }),
          );
          return;
        case 'pong':
          return;
        default:
          this.#emitEvent({
            kind: 'agent.protocol_error',
            agent: entry.name,
            peer,
            error: new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', 'unknown control message'),
          });
      }
    });
    const gone = (err?: unknown) => {
      if (state && this.#online.get(entry.name) === state) {
        const reason = new WardError('ERR_AGENT_DISCONNECTED', 'unavailable', `agent "${entry.name}" disconnected`, {
          cause: err,
        });
        this.#dropAgent(state, reason, false);
      }
    };
    call.on('error', gone);
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('cancelled', gone);
  }

  #register(
    entry: AgentEntry,
    call: grpc.ServerDuplexStream<AgentMessage, GatewayMessage>,
    peer: string,
    hello: Extract<AgentMessage['msg'], { case: 'hello' }>['value'],
  ): AgentState {
    const previous = this.#online.get(entry.name);
    if (previous) {
      // The same agent reconnecting before the gateway noticed its old stream died.
      this.#dropAgent(
        previous,
        new WardError('ERR_AGENT_REPLACED', 'unavailable', `agent "${entry.name}" reconnected`),
        true,
      );
    }
    const accepted: string[] = [];
    const rejected: Array<{ name: string; error: { code: string; message: string; kind: number } }> = [];
    const reject = (name: string, error: WardError) => {
      rejected.push({ name, error: { code: error.code, message: error.message, kind: errorKindToProto(error.kind) } });
      this.#emitEvent({ kind: 'agent.connection_rejected', agent: entry.name, peer, connection: name, error });
    };
    for (const announced of hello.connections) {
      const known = this.#connections.get(announced.name);
      const type = TYPE_FROM_PROTO[announced.type];
      const holder = this.#servedBy.get(announced.name);
      if (!known) {
        reject(
          announced.name,
          new WardError('ERR_CONN_UNKNOWN', 'not_found', `the gateway has no connection named "${announced.name}"`),
        );
      } else if (known.type !== type) {
        reject(
          announced.name,
          new WardError(
            'ERR_CONN_TYPE_MISMATCH',
            'invalid_argument',
            `"${announced.name}" is a ${known.type} connection on the gateway, the agent says ${type ?? 'unknown'}`,
          ),
        );
      } else if (known.agent && known.agent !== entry.name) {
        reject(
          announced.name,
          new WardError(
            'ERR_CONN_WRONG_AGENT',
            'permission_denied',
            `"${announced.name}" is assigned to agent "${known.agent}"`,
          ),
        );
      } else if (holder && holder !== entry.name) {
        reject(
          announced.name,
          new WardError(
            'ERR_CONN_CLAIMED',
            'permission_denied',
            `"${announced.name}" is already served by agent "${holder}"`,
          ),
        );
      } else {
        accepted.push(announced.name);
      }
    }
    const interval = this.#options.keepaliveIntervalMs;
    const state: AgentState = {
      name: entry.name,
      hostname: hello.hostname,
      version: hello.agentVersion,
      peer,
      since: new Date(),
      connections: accepted,
      control: call,
      idle: [],
      waiting: [],
      lastSeen: Date.now(),
      // An agent pings every keepalive interval; three silent intervals mean it is gone even
      // if TCP has not noticed yet.
      watchdog: setInterval(() => {
        if (Date.now() - state.lastSeen > 3 * interval) {
          this.#dropAgent(
            state,
            new WardError(
              'ERR_AGENT_TIMEOUT',
              'deadline_exceeded',
              `agent "${entry.name}" stopped answering keepalives`,
            ),
            true,
          );
        }
      }, interval).unref(),
    };
    this.#online.set(entry.name, state);
    for (const name of accepted) this.#servedBy.set(name, entry.name);
    call.write(
      create(GatewayMessageSchema, {
        msg: {
          case: 'welcome',
          value: {
            gatewayVersion: this.#options.gatewayVersion ?? '',
            agentName: entry.name,
            accepted,
            rejected,
            sessionWindowBytes: this.#options.sessionWindowBytes,
            keepaliveIntervalMs: interval,
            maxFrameBytes: this.#options.maxFrameBytes,
          },
        },
      }),
    );
    this.#emitEvent({ kind: 'agent.online', agent: entry.name, peer, connections: accepted });
    return state;
  }

  #dropAgent(state: AgentState, reason: WardError, endControl: boolean): void {
    if (this.#online.get(state.name) !== state) return;
    this.#online.delete(state.name);
    clearInterval(state.watchdog);
    for (const name of state.connections) if (this.#servedBy.get(name) === state.name) this.#servedBy.delete(name);
    for (const wake of state.waiting) wake(undefined);
    state.waiting = [];
    for (const stream of state.idle) stream.end();
    state.idle = [];
    if (endControl) {
      state.control.emit('error', { code: reason.grpcStatus, details: `${reason.code}: ${reason.message}` });
    } else {
      state.control.end();
    }
    this.#emitEvent({ kind: 'agent.offline', agent: state.name, peer: state.peer, error: reason });
  }

  #onSession(call: grpc.ServerDuplexStream<SessionFrame, SessionFrame>): void {
    const auth = this.#authenticate(call.metadata);
    const agent = auth.agent && !auth.error ? this.#online.get(auth.agent.name) : undefined;
    if (!agent) {
      const error =
        auth.error ??
        new WardError('ERR_AGENT_OFFLINE', 'unavailable', 'open the Control stream before Session streams');
      call.emit('error', { code: error.grpcStatus, details: `${error.code}: ${error.message}` });
      return;
    }
    // An idle stream that the agent drops (or that errors) must leave the pool.
    const remove = () => {
      const i = agent.idle.indexOf(call);
      if (i >= 0) agent.idle.splice(i, 1);
    };
    call.once('error', remove);
    call.once('end', remove);
    const waiter = agent.waiting.shift();
    if (waiter) waiter(call);
    else agent.idle.push(call);
  }

  #takeIdle(agent: AgentState, signal?: AbortSignal): Promise<grpc.ServerDuplexStream<SessionFrame, SessionFrame>> {
    const idle = agent.idle.shift();
    if (idle) return Promise.resolve(idle);
    agent.control.write(
      // One more stream for this waiter: earlier waiters already asked for theirs, and the agent
      // refills its idle pool by itself after each session starts.
      create(GatewayMessageSchema, { msg: { case: 'wantStreams', value: { count: 1 } } }),
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = agent.waiting.indexOf(take);
        if (i >= 0) agent.waiting.splice(i, 1);
        reject(new WardError('ERR_AGENT_TIMEOUT', 'deadline_exceeded', `agent "${agent.name}" has no free stream`));
      }, this.#options.sessionStartTimeoutMs);
      const onAbort = () => {
        clearTimeout(timer);
        const i = agent.waiting.indexOf(take);
        if (i >= 0) agent.waiting.splice(i, 1);
        reject(new WardError('ERR_SESSION_ABORTED', 'unavailable', 'the client went away before the session started'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const take = (stream: grpc.ServerDuplexStream<SessionFrame, SessionFrame> | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (stream) resolve(stream);
        else reject(new WardError('ERR_AGENT_DISCONNECTED', 'unavailable', `agent "${agent.name}" disconnected`));
      };
      agent.waiting.push(take);
    });
  }

  #emitEvent(event: TunnelEvent): void {
    this.#options.onEvent?.(event);
    this.emit('event', event);
  }
}
