import { randomInt, randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  create,
  type SessionChannel,
  SessionFrameSchema,
  toWardError,
  unexpectedFrame,
  WardError,
} from '@ward/protocol';
import type { Logger } from 'pino';
import type { Authorizer } from '../access/index.js';
import { authDenialData, type Identity } from '../identity/index.js';
import type { Recorder } from '../recording/index.js';
import type { LiveSession, SessionRegistry } from '../sessions/index.js';
import type { ConnectionKind, TunnelServer } from '../tunnel/index.js';
import type { CancelRegistry } from './cancel-registry.js';
import {
  BackendCode,
  BackendMessageSplitter,
  type BackendPacket,
  BackendSerializer,
  decodePasswordMessage,
  type FrontendMessage,
  type FrontendMessages,
  FrontendParser,
  parseBackendMessage,
  SMALL_MESSAGE_LIMIT,
} from './codec/index.js';
import { DEFAULT_POSTGRES_POLICY, type PostgresPolicy } from './postgres-policy.js';
import { type StatementRecord, StatementTracker } from './statement-tracker.js';

export interface PostgresContext {
  tunnel: TunnelServer;
  recorder: Recorder;
  sessions: SessionRegistry;
  cancels: CancelRegistry;
  authenticate(token: string): Promise<Identity>;
  connectionType(name: string): ConnectionKind | undefined;
  /** Who may open which connection; a refusal is a FATAL with SQLSTATE 42501. */
  access: Authorizer;
  policy?: PostgresPolicy;
  /** Largest client or backend message once the session is up (default 64 MiB). */
  maxMessageBytes?: number;
  logger: Logger;
}

export interface PostgresSessionOptions {
  source: string;
  /** Set when the client came through `ward connect`: already authenticated, connection fixed. */
  preauthenticated?: { identity: Identity; connection: string };
}

type Phase = 'startup' | 'password' | 'connecting' | 'ready' | 'closed';

/** Startup parameters the backend must not take from the client. */
const RESERVED_PARAMETERS = new Set(['user', 'database', 'replication']);

const pgFrontendFrame = (messages: Uint8Array) =>
  create(SessionFrameSchema, { frame: { case: 'pgFrontend', value: { messages } } });

/**
 * One client connection speaking the Postgres wire protocol, from its first byte to its last.
 * The gateway plays the server: it answers SSL/GSS requests, authenticates the user itself
 * (the password is the user's ward token on the direct listener), opens a tunnel session to
 * the agent that holds the real credentials, then relays whole messages: client messages
 * after policy, backend messages after inspection (and masking, when configured). Every
 * statement is recorded with its parameters and outcome.
 */
export class PostgresSession implements LiveSession {
  readonly id = `ses_${randomUUID()}`;
  readonly protocol = 'postgres' as const;
  readonly source: string;
  readonly startedAt = new Date();
  connection = '';
  identity!: Identity;

  readonly #socket: Duplex;
  readonly #ctx: PostgresContext;
  readonly #parser = new FrontendParser({ maxMessageSize: SMALL_MESSAGE_LIMIT });
  readonly #splitter: BackendMessageSplitter;
  readonly #tracker: StatementTracker;
  readonly #policy: PostgresPolicy;
  readonly #preauth: PostgresSessionOptions['preauthenticated'];
  #phase: Phase = 'startup';
  #startup: FrontendMessages.StartupMessage | undefined;
  #channel: SessionChannel | undefined;
  #unregister: (() => void) | undefined;
  #key: { processId: number; secretKey: number } | undefined;
  #transactionStatus: 'I' | 'T' | 'E' = 'I';
  /** After a refused extended-protocol message, the client's messages up to Sync are dropped. */
  #discardUntilSync = false;
  /** Answers ward produces itself, written once the backend has answered everything before them. */
  #localReplies: Buffer[] = [];
  #statements = 0;
  #recorded = false;

  constructor(socket: Duplex, ctx: PostgresContext, options: PostgresSessionOptions) {
    this.#socket = socket;
    this.#ctx = ctx;
    this.source = options.source;
    this.#preauth = options.preauthenticated;
    this.#policy = ctx.policy ?? DEFAULT_POSTGRES_POLICY;
    this.#splitter = new BackendMessageSplitter({ maxMessageSize: ctx.maxMessageBytes ?? 64 * 1024 * 1024 });
    this.#tracker = new StatementTracker((record) => this.#recordStatement(record));
    socket.on('data', (chunk: Buffer) => {
      // One chunk at a time: policy may wait (approvals), and the client must wait with it.
      socket.pause();
      this.#onChunk(chunk).then(
        () => {
          if (this.#phase !== 'closed') socket.resume();
        },
        (err) => this.#fatal(toWardError(err)),
      );
    });
    socket.on('error', () =>
      this.#finish(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client connection failed')),
    );
    socket.on('close', () =>
      this.#finish(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection')),
    );
    // The listener may have paused the socket while it negotiated TLS; a 'data' listener alone
    // does not restart an explicitly paused stream.
    socket.resume();
  }

  /** Ends the session, telling psql why (FATAL ErrorResponse with the error's SQLSTATE). */
  terminate(reason: WardError): void {
    this.#fatal(reason);
  }

  async #onChunk(chunk: Buffer): Promise<void> {
    let messages: FrontendMessage[];
    try {
      messages = this.#parser.push(chunk);
    } catch (err) {
      const error = toWardError(err);
      // A password message over the pre-auth cap is a credential refused unread (a 1 MB token):
      // recorded like any other refused token, never with its bytes.
      if (this.#phase === 'password' && error.code === 'ERR_PG_MESSAGE_TOO_LARGE') {
        await this.#refuseToken(error, { reason: 'message_too_large' });
        return;
      }
      this.#fatal(error);
      return;
    }
    await this.#handleAll(messages);
  }

  async #handleAll(messages: FrontendMessage[]): Promise<void> {
    const batch: Buffer[] = [];
    for (const msg of messages) {
      if (this.#phase === 'closed') return;
      if (this.#phase === 'ready') {
        if (
          msg.type === 'SSLRequest' ||
          msg.type === 'GSSENCRequest' ||
          msg.type === 'CancelRequest' ||
          msg.type === 'StartupMessage'
        ) {
          this.#fatal(new WardError('ERR_PG_PROTOCOL', 'invalid_argument', `unexpected ${msg.type} after startup`));
          return;
        }
        const forward = await this.#onClientMessage(msg);
        if (forward) batch.push(forward);
        continue;
      }
      await this.#flush(batch);
      if (this.#phase === 'startup') await this.#onStartupMessage(msg);
      else if (this.#phase === 'password') await this.#onPassword(msg);
      else {
        this.#fatal(
          new WardError('ERR_PG_PROTOCOL', 'invalid_argument', `unexpected ${msg.type} while the session starts`),
        );
        return;
      }
    }
    await this.#flush(batch);
  }

  async #flush(batch: Buffer[]): Promise<void> {
    if (batch.length === 0 || !this.#channel) return;
    const bytes = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch);
    batch.length = 0;
    await this.#channel.sendData(bytes, pgFrontendFrame);
  }

  // ------------------------------------------------------------------ startup and authentication

  async #onStartupMessage(msg: FrontendMessage): Promise<void> {
    switch (msg.type) {
      case 'SSLRequest':
        // TLS on the Postgres listener is not configured: the client goes on in plaintext.
        this.#socket.write(BackendSerializer.sslResponse(false));
        await this.#handleAll(this.#parser.resume());
        return;
      case 'GSSENCRequest':
        this.#socket.write(BackendSerializer.gssEncResponse(false));
        await this.#handleAll(this.#parser.resume());
        return;
      case 'CancelRequest':
        // A cancel comes on its own connection and gets no answer (protocol §55.2.8).
        this.#ctx.cancels.cancel(msg.processId, msg.secretKey, this.source);
        this.#phase = 'closed';
        this.#socket.end();
        return;
      case 'StartupMessage': {
        this.#startup = msg;
        if (msg.minorVersion > 0) {
          const unrecognized = [...msg.parameters.keys()].filter((k) => k.startsWith('_pq_.'));
          this.#socket.write(BackendSerializer.negotiateProtocolVersion(0, unrecognized));
        }
        if (this.#preauth) {
          this.identity = this.#preauth.identity;
          this.connection = this.#preauth.connection;
          const buffered = this.#parser.startupDone();
          await this.#connect();
          await this.#handleAll(buffered);
          return;
        }
        this.#phase = 'password';
        this.#socket.write(BackendSerializer.authenticationCleartextPassword());
        await this.#handleAll(this.#parser.startupDone());
        return;
      }
      default:
        this.#fatal(new WardError('ERR_PG_PROTOCOL', 'invalid_argument', `expected a startup packet, got ${msg.type}`));
    }
  }

  async #onPassword(msg: FrontendMessage): Promise<void> {
    if (msg.type !== 'AuthenticationResponse') {
      this.#fatal(new WardError('ERR_PG_PROTOCOL', 'invalid_argument', `expected a password message, got ${msg.type}`));
      return;
    }
    const requested = this.#requestedConnection();
    try {
      const token = decodePasswordMessage(msg);
      if (token.length === 0)
        throw new WardError(
          'ERR_AUTH_TOKEN_MISSING',
          'unauthenticated',
          'send your ward token as the password (PGPASSWORD=$(ward token print))',
        );
      this.identity = await this.#ctx.authenticate(token);
    } catch (err) {
      const error = toWardError(err, 'ERR_AUTH_TOKEN_INVALID', 'unauthenticated');
      await this.#refuseToken(error, authDenialData(error));
      return;
    }
    this.connection = requested;
    await this.#connect();
  }

  /** The connection the client asked for: the database name, else the user name. */
  #requestedConnection(): string {
    return this.#startup?.parameters.get('database') ?? this.#startup?.parameters.get('user') ?? '';
  }

  /** A refused credential: recorded as `auth.denied` (never the token), then FATAL to psql. */
  async #refuseToken(error: WardError, detail: Record<string, string | undefined>): Promise<void> {
    await this.#ctx.recorder
      .record(undefined, 'auth.denied', {
        source: this.source,
        connection: this.#requestedConnection(),
        decision: 'deny',
        rule: 'auth.token',
        data: { code: error.code, protocol: 'postgres', ...detail },
      })
      .catch(() => {});
    this.#fatal(error);
  }

  async #connect(): Promise<void> {
    this.#phase = 'connecting';
    const type = this.#ctx.connectionType(this.connection);
    if (type !== 'postgres') {
      this.#fatal(
        type
          ? new WardError(
              'ERR_CONN_TYPE_MISMATCH',
              'not_found',
              `"${this.connection}" is a ${type} connection, not postgres`,
              { sqlState: '3D000' },
            )
          : new WardError(
              'ERR_CONN_UNKNOWN',
              'not_found',
              `no connection named "${this.connection}" (the database name selects the connection)`,
            ),
      );
      return;
    }
    if (!this.#ctx.recorder.healthy) {
      this.#fatal(
        new WardError(
          'ERR_AUDIT_UNAVAILABLE',
          'unavailable',
          'the audit store cannot write; the gateway refuses new work until it can',
        ),
      );
      return;
    }
    try {
      await this.#ctx.access.authorize({
        identity: this.identity,
        connection: this.connection,
        action: 'connect',
        source: this.source,
        protocol: this.#preauth ? 'connect' : 'postgres',
        sessionId: this.id,
      });
    } catch (err) {
      this.#fatal(toWardError(err));
      return;
    }
    const parameters = [...(this.#startup?.parameters ?? new Map<string, string>())]
      .filter(([name]) => !RESERVED_PARAMETERS.has(name) && !name.startsWith('_pq_.'))
      .map(([name, value]) => ({ name, value }));
    try {
      await this.#ctx.recorder.sessionStarted({
        id: this.id,
        connection: this.connection,
        protocol: 'postgres',
        identity: this.identity,
        source: this.source,
      });
      this.#recorded = true;
      const aborted = new AbortController();
      this.#socket.once('close', () => aborted.abort());
      const { channel, ready } = await this.#ctx.tunnel.openSession(
        {
          sessionId: this.id,
          connection: this.connection,
          identity: this.identity.subject,
          target: { case: 'postgres', value: { parameters, database: '' } },
        },
        aborted.signal,
      );
      if ((this.#phase as Phase) === 'closed') {
        channel.close();
        return;
      }
      this.#channel = channel;
      const backendParameters = ready.detail.case === 'postgres' ? ready.detail.value.parameters : [];
      this.#key = { processId: randomInt(1, 2 ** 31 - 1), secretKey: randomInt(-(2 ** 31), 2 ** 31 - 1) };
      this.#ctx.cancels.register(this.#key.processId, this.#key.secretKey, this);
      this.#unregister = this.#ctx.sessions.add(this);
      channel.onFrame((frame) => {
        if (frame.frame.case === 'pgBackend') this.#onBackendBytes(frame.frame.value.messages);
        else channel.close(unexpectedFrame(frame, 'a Postgres session'));
      });
      channel.onClose((reason) => {
        if (reason) this.#fatal(reason);
        else this.#finish(undefined);
      });
      const greeting = [BackendSerializer.authenticationOk()];
      for (const p of backendParameters) greeting.push(BackendSerializer.parameterStatus(p.name, p.value));
      greeting.push(
        BackendSerializer.backendKeyData(this.#key.processId, this.#key.secretKey),
        BackendSerializer.readyForQuery('I'),
      );
      this.#socket.write(Buffer.concat(greeting));
      this.#parser.setMaxMessageSize(this.#ctx.maxMessageBytes ?? 64 * 1024 * 1024);
      this.#phase = 'ready';
    } catch (err) {
      this.#fatal(toWardError(err));
    }
  }

  // ------------------------------------------------------------------ relay

  /** Runs policy on one client message; returns the bytes to forward, or nothing. */
  async #onClientMessage(msg: FrontendMessages.TaggedFrontendMessage): Promise<Buffer | undefined> {
    if (this.#discardUntilSync) {
      if (msg.type !== 'Sync') return undefined;
      this.#discardUntilSync = false;
      this.#reply(BackendSerializer.readyForQuery(this.#transactionStatus));
      return undefined;
    }
    const decision = await this.#policy.check(msg, this);
    if (!decision.allow) {
      await this.#ctx.recorder.record(this.id, 'pg.denied', {
        identity: this.identity,
        source: this.source,
        connection: this.connection,
        decision: 'deny',
        rule: decision.rule,
        data: { message: msg.type, code: decision.error.code, ...('query' in msg ? { sql: msg.query } : {}) },
      });
      this.#reply(BackendSerializer.wardError(decision.error));
      if (msg.type === 'Query' || msg.type === 'FunctionCall')
        this.#reply(BackendSerializer.readyForQuery(this.#transactionStatus));
      else this.#discardUntilSync = msg.type !== 'Sync';
      return undefined;
    }
    this.#tracker.frontend(msg);
    if (msg.type === 'Terminate') {
      // Tell the backend, then end: psql is done.
      this.#phase = 'closed';
      await this.#channel?.sendData(msg.raw, pgFrontendFrame).catch(() => {});
      this.#channel?.close();
      this.#socket.end();
      this.#finish(undefined);
      return undefined;
    }
    return msg.raw;
  }

  /** Sends ward's own answer in order: after everything the backend still owes the client. */
  #reply(bytes: Buffer): void {
    if (this.#tracker.pending === 0 && this.#localReplies.length === 0) this.#socket.write(bytes);
    else this.#localReplies.push(bytes);
  }

  #onBackendBytes(bytes: Uint8Array): void {
    const channel = this.#channel;
    if (!channel) return;
    let packets: BackendPacket[];
    const carried = this.#splitter.buffered;
    try {
      packets = this.#splitter.push(bytes);
    } catch (err) {
      this.#fatal(
        new WardError(
          'ERR_PG_BACKEND_PROTOCOL',
          'unavailable',
          `the database sent a malformed message: ${toWardError(err).message}`,
        ),
      );
      return;
    }
    const n = bytes.byteLength;
    if (packets.length === 0) {
      // The bytes wait in the splitter for the rest of their message; the window must not
      // stall a message larger than itself, so its credit goes back now.
      channel.delivered(n);
      return;
    }
    let readyForQuery = false;
    let total = 0;
    for (const packet of packets) {
      this.#inspect(packet);
      total += packet.byteLength;
      if (packet.tag === BackendCode.ReadyForQuery) readyForQuery = true;
    }
    this.#writeWhole(packets, bytes, carried, total, () => channel.delivered(n));
    if (readyForQuery && this.#tracker.pending === 0 && this.#localReplies.length > 0) {
      this.#socket.write(Buffer.concat(this.#localReplies));
      this.#localReplies = [];
    }
  }

  /**
   * Writes the whole messages just cut from `bytes` to the client. They are the bytes received,
   * in order, minus the unfinished tail the splitter keeps; only the first can start in an
   * earlier frame (the `carried` remainder), and the splitter copied that one. So the rest is
   * one slice of `bytes`, written as it came: copying a bulk result message by message into a
   * new buffer cost a copy of every byte and a pass over every DataRow.
   */
  #writeWhole(packets: BackendPacket[], bytes: Uint8Array, carried: number, total: number, done: () => void): void {
    const socket = this.#socket;
    const first = packets[0] as BackendPacket;
    const end = bytes.byteLength - this.#splitter.buffered;
    const start = carried === 0 ? 0 : first.byteLength - carried;
    if (total !== carried + end || start < 0) {
      // Not the shape described above: never guess, copy the messages themselves.
      socket.write(Buffer.concat(packets.map((p) => p.raw)), done);
      return;
    }
    const rest = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
    if (carried === 0) {
      socket.write(rest, done);
      return;
    }
    if (rest.byteLength === 0) {
      socket.write(first.raw, done);
      return;
    }
    // One writev for both pieces.
    socket.cork();
    socket.write(first.raw);
    socket.write(rest, done);
    socket.uncork();
  }

  #inspect(packet: BackendPacket): void {
    switch (packet.tag) {
      case BackendCode.DataRow:
        this.#tracker.dataRow();
        return;
      case BackendCode.CommandComplete: {
        const msg = parseBackendMessage(packet.raw);
        if (msg.type === 'CommandComplete') this.#tracker.complete(msg.tag);
        return;
      }
      case BackendCode.EmptyQueryResponse:
        this.#tracker.complete('');
        return;
      case BackendCode.PortalSuspended:
        this.#tracker.complete('SUSPENDED');
        return;
      case BackendCode.ErrorResponse: {
        const msg = parseBackendMessage(packet.raw);
        if (msg.type === 'ErrorResponse') this.#tracker.error(msg.fields.code ?? 'XX000', msg.fields.message ?? '');
        return;
      }
      case BackendCode.ReadyForQuery: {
        const status = String.fromCharCode(packet.raw[5] ?? 0x49);
        this.#transactionStatus = status === 'T' || status === 'E' ? status : 'I';
        this.#tracker.ready();
        return;
      }
      default:
        return;
    }
  }

  #recordStatement(record: StatementRecord): void {
    this.#statements++;
    this.#ctx.recorder
      .record(this.id, 'pg.query', {
        identity: this.identity,
        source: this.source,
        connection: this.connection,
        decision: 'allow',
        rule: this.#policy.name,
        data: { ...record },
      })
      .catch((err) => this.#ctx.logger.error({ err, session: this.id }, 'could not record a statement'));
  }

  /** Cancels the running query on the backend (called by the cancel registry). */
  cancel(): void {
    this.#channel?.send(create(SessionFrameSchema, { frame: { case: 'pgCancel', value: {} } }));
  }

  // ------------------------------------------------------------------ ending

  #fatal(error: WardError): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (!this.#socket.destroyed) this.#socket.end(BackendSerializer.wardError(error, 'FATAL'));
    this.#channel?.close(error);
    this.#finish(error);
  }

  #ended = false;
  #finish(error: WardError | undefined): void {
    this.#phase = 'closed';
    if (this.#ended) return;
    this.#ended = true;
    this.#channel?.close(error);
    this.#unregister?.();
    if (this.#key) this.#ctx.cancels.unregister(this.#key.processId, this.#key.secretKey);
    if (!this.#socket.destroyed) this.#socket.end();
    if (!this.#recorded) return;
    // Statements whose answer never completed are still evidence (invariant 3).
    this.#tracker.drain();
    this.#ctx.recorder
      .sessionEnded(this.id, {
        status: !error || error.code === 'ERR_CLIENT_GONE' ? 'ok' : 'error',
        error: error?.code === 'ERR_CLIENT_GONE' ? undefined : error,
        summary: { statements: this.#statements },
      })
      .catch((err) => this.#ctx.logger.error({ err, session: this.id }, 'could not record the session end'));
  }
}
