import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  create,
  type PostgresStart,
  type SessionChannel,
  type SessionFrame,
  SessionFrameSchema,
  toWardError,
  unexpectedFrame,
  WardError,
} from '@ward/protocol';
import { serialize } from 'pg-protocol';
import { connectBackend, DEFAULT_CONNECT_TIMEOUT_MS } from './backend-connect.js';
import { FrontendScanner } from './frontend-scanner.js';
import type { PostgresBackend } from './postgres-backend.js';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramClient } from './scram.js';
import {
  BackendCode,
  type BackendKey,
  type BackendMessage,
  BackendReader,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorFields,
  decodeParameterStatus,
  encodeCancelRequest,
  encodeStartupMessage,
} from './startup-codec.js';

/** Largest message accepted before ReadyForQuery; real servers send a few hundred bytes. */
export const MAX_STARTUP_MESSAGE_BYTES = 1024 * 1024;
/** ParameterStatus messages accepted during startup (Postgres 15 sends about 14). */
const MAX_STARTUP_PARAMETERS = 1000;

const TRACE = (process.env.WARD_TRACE ?? '').split(',').includes('pg');
function trace(message: string): void {
  if (TRACE) process.stderr.write(`[ward pg] ${message}\n`);
}

interface Established {
  socket: Socket;
  parameters: Array<{ name: string; value: string }>;
  key: BackendKey | undefined;
  /** Bytes that followed ReadyForQuery in the same read; relayed first. */
  leftover: Buffer;
}

/**
 * Serves one Postgres session for the gateway: opens the backend connection (TLS as
 * configured), logs in with the agent's credentials (trust, cleartext, md5 or SCRAM-SHA-256),
 * answers `SessionReady{postgres}` with the server's ParameterStatus values, then relays
 * wire bytes both ways under the channel's credit. `PgCancel` sends a CancelRequest on a new
 * connection with the backend key, which never leaves the agent. Every failure ends this
 * session only, with an `ERR_PG_BACKEND_*` code on the channel.
 *
 * @example
 * servePostgresSession(channel, start.target.value, {
 *   name: 'orders', host: 'db.internal', port: 5432, database: 'orders', user: 'ward',
 *   password: await resolveSecret(ref), tls: { mode: 'verify-full', ca },
 *   maxScramIterations: 100_000,
 * });
 */
export function servePostgresSession(channel: SessionChannel, start: PostgresStart, backend: PostgresBackend): void {
  const attempt = new AbortController();
  const timeoutMs = backend.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const timer = setTimeout(
    () =>
      attempt.abort(
        new WardError(
          'ERR_PG_BACKEND_UNREACHABLE',
          'unavailable',
          `database "${backend.name}" at ${backend.host}:${backend.port} did not accept the connection within ${timeoutMs} ms`,
        ),
      ),
    timeoutMs,
  );
  const onChannelClose = () =>
    attempt.abort(new WardError('ERR_TUNNEL_CLOSED', 'unavailable', 'the session ended during backend start-up'));
  channel.onClose(onChannelClose);

  establish(backend, start, attempt.signal).then(
    (established) => {
      clearTimeout(timer);
      if (channel.closed) {
        established.socket.destroy();
        return;
      }
      relay(channel, backend, established);
    },
    (err: unknown) => {
      clearTimeout(timer);
      const error = redact(toWardError(err, 'ERR_PG_BACKEND_PROTOCOL', 'unavailable'), backend.password);
      trace(`session start failed: ${error.code} ${error.message}`);
      channel.close(error);
    },
  );
}

/** Never lets the password out in a message, even if a server echoes it back. */
function redact(error: WardError, password: string | undefined): WardError {
  if (!password || !error.message.includes(password)) return error;
  return new WardError(error.code, error.kind, error.message.replaceAll(password, '[redacted]'));
}

async function establish(backend: PostgresBackend, start: PostgresStart, signal: AbortSignal): Promise<Established> {
  const socket = await connectBackend(backend, signal);
  const messages = new StartupMessages(socket, backend, signal);
  try {
    socket.write(encodeStartupMessage(backend.user, start.database || backend.database, start.parameters));
    await authenticate(socket, messages, backend);
    const parameters: Array<{ name: string; value: string }> = [];
    let key: BackendKey | undefined;
    for (;;) {
      const message = await messages.next();
      switch (message.code) {
        case BackendCode.ParameterStatus:
          if (parameters.length >= MAX_STARTUP_PARAMETERS) {
            throw protocolError(`more than ${MAX_STARTUP_PARAMETERS} ParameterStatus messages`);
          }
          parameters.push(decodeParameterStatus(message.body));
          break;
        case BackendCode.BackendKeyData:
          key = decodeBackendKeyData(message.body);
          break;
        case BackendCode.ReadyForQuery:
          return { socket, parameters, key, leftover: messages.detach() };
        case BackendCode.ErrorResponse:
          throw loginRefused(backend, message);
        case BackendCode.NoticeResponse:
        case BackendCode.NegotiateProtocolVersion:
          break;
        default:
          throw unexpected(message, 'after authentication');
      }
    }
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

async function authenticate(socket: Socket, messages: StartupMessages, backend: PostgresBackend): Promise<void> {
  let scram: ScramClient | undefined;
  let scramVerified = false;
  const password = (method: string): string => {
    if (backend.password === undefined || backend.password === '') {
      throw new WardError(
        'ERR_PG_BACKEND_PASSWORD_MISSING',
        'unavailable',
        `database "${backend.name}" asks for ${method} authentication but connection "${backend.name}" has no password configured`,
      );
    }
    return backend.password;
  };
  for (;;) {
    const message = await messages.next();
    if (message.code === BackendCode.ErrorResponse) throw loginRefused(backend, message);
    if (message.code === BackendCode.NoticeResponse || message.code === BackendCode.NegotiateProtocolVersion) continue;
    if (message.code !== BackendCode.Authentication) throw unexpected(message, 'before authentication');
    const auth = decodeAuthentication(message.body);
    switch (auth.type) {
      case 'ok':
        // A server that started SCRAM must finish it: skipping SASLFinal would let an impostor
        // that never knew the key pass as the database.
        if (scram && !scramVerified) {
          throw new WardError(
            'ERR_PG_BACKEND_AUTH',
            'unavailable',
            `database "${backend.name}" ended SCRAM authentication without proving it knows the key`,
          );
        }
        return;
      case 'cleartext':
        socket.write(serialize.password(password('password')));
        break;
      case 'md5': {
        const inner = createHash('md5')
          .update(password('md5') + backend.user)
          .digest('hex');
        const outer = createHash('md5').update(inner).update(auth.salt).digest('hex');
        socket.write(serialize.password(`md5${outer}`));
        break;
      }
      case 'sasl': {
        if (!auth.mechanisms.includes(SCRAM_SHA_256)) {
          const offered = auth.mechanisms.join(', ') || 'none';
          throw new WardError(
            'ERR_PG_BACKEND_AUTH_UNSUPPORTED',
            'unavailable',
            auth.mechanisms.includes(SCRAM_SHA_256_PLUS)
              ? `database "${backend.name}" only offers ${SCRAM_SHA_256_PLUS}; channel binding is not supported yet (allow scram-sha-256 in pg_hba.conf)`
              : `database "${backend.name}" offers SASL mechanisms ward does not support (${offered})`,
          );
        }
        password('SCRAM-SHA-256');
        scram = new ScramClient();
        socket.write(serialize.sendSASLInitialResponseMessage(SCRAM_SHA_256, scram.clientFirst()));
        break;
      }
      case 'sasl-continue':
        if (!scram) throw protocolError('SASLContinue without a SASL exchange');
        socket.write(
          serialize.sendSCRAMClientFinalMessage(
            await scram.clientFinal(auth.data, password('SCRAM-SHA-256'), backend.maxScramIterations),
          ),
        );
        break;
      case 'sasl-final':
        if (!scram) throw protocolError('SASLFinal without a SASL exchange');
        scram.verifyServerFinal(auth.data);
        scramVerified = true;
        break;
      case 'unsupported':
        throw new WardError(
          'ERR_PG_BACKEND_AUTH_UNSUPPORTED',
          'unavailable',
          `database "${backend.name}" asks for ${auth.method} authentication, which ward does not support; use scram-sha-256 (or md5/password) for this user in pg_hba.conf`,
        );
    }
  }
}

function protocolError(message: string): WardError {
  return new WardError('ERR_PG_BACKEND_PROTOCOL', 'unavailable', `malformed reply from the database: ${message}`);
}

function unexpected(message: BackendMessage, when: string): WardError {
  return protocolError(`unexpected message type 0x${message.code.toString(16)} ${when}`);
}

function loginRefused(backend: PostgresBackend, message: BackendMessage): WardError {
  const fields = decodeErrorFields(message.body);
  const text = fields.get('M') ?? 'no message';
  const sqlState = fields.get('C') ?? 'unknown';
  return new WardError(
    'ERR_PG_BACKEND_AUTH',
    'unavailable',
    `database "${backend.name}" refused the login of "${backend.user}": ${text} (SQLSTATE ${sqlState})`,
  );
}

/**
 * Reads startup messages from the socket one at a time. The socket is paused while a whole
 * startup message's worth is buffered and nobody asks, so the agent holds at most about
 * `MAX_STARTUP_MESSAGE_BYTES` plus one read per session whatever the server sends.
 */
class StartupMessages {
  readonly #socket: Socket;
  readonly #reader = new BackendReader(MAX_STARTUP_MESSAGE_BYTES);
  readonly #signal: AbortSignal;
  #waiter: { resolve: (m: BackendMessage) => void; reject: (e: unknown) => void } | undefined;
  #failure: WardError | undefined;
  #socketError: Error | undefined;

  constructor(socket: Socket, backend: PostgresBackend, signal: AbortSignal) {
    this.#socket = socket;
    this.#signal = signal;
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#name = backend.name;
    socket.resume();
  }

  readonly #name: string;

  next(): Promise<BackendMessage> {
    if (this.#failure) return Promise.reject(this.#failure);
    try {
      const message = this.#reader.next();
      if (message) return Promise.resolve(message);
    } catch (err) {
      this.#fail(toWardError(err));
      return Promise.reject(this.#failure);
    }
    this.#socket.resume();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Stops reading and returns what was buffered past the last message taken. */
  detach(): Buffer {
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#socket.off('error', this.#onError);
    this.#socket.off('close', this.#onClose);
    this.#signal.removeEventListener('abort', this.#onAbort);
    return this.#reader.drain();
  }

  #onData = (chunk: Buffer) => {
    this.#reader.push(chunk);
    const waiter = this.#waiter;
    if (!waiter) {
      if (this.#reader.bufferedBytes >= MAX_STARTUP_MESSAGE_BYTES) this.#socket.pause();
      return;
    }
    try {
      const message = this.#reader.next();
      if (!message) return;
      this.#waiter = undefined;
      waiter.resolve(message);
    } catch (err) {
      this.#fail(toWardError(err));
    }
  };

  #onError = (err: Error) => {
    this.#socketError = err;
  };

  #onClose = () => {
    const cause = this.#socketError;
    this.#fail(
      new WardError(
        'ERR_PG_BACKEND_CLOSED',
        'unavailable',
        `database "${this.#name}" closed the connection during start-up${cause ? ` (${cause.message})` : ''}`,
        cause ? { cause } : {},
      ),
    );
  };

  #onAbort = () => {
    this.#fail(toWardError(this.#signal.reason, 'ERR_PG_BACKEND_UNREACHABLE', 'unavailable'));
  };

  #fail(error: WardError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }
}

const backendFrame = (messages: Uint8Array): SessionFrame =>
  create(SessionFrameSchema, { frame: { case: 'pgBackend', value: { messages } } });

function relay(channel: SessionChannel, backend: PostgresBackend, established: Established): void {
  const { socket, key } = established;
  const frontend = new FrontendScanner();
  let socketError: Error | undefined;
  // Settles when the last backend chunk handed to the channel has gone out (or failed).
  let lastSend: Promise<void> = Promise.resolve();

  channel.onClose(() => socket.destroy());
  channel.send(
    create(SessionFrameSchema, {
      frame: { case: 'ready', value: { detail: { case: 'postgres', value: { parameters: established.parameters } } } },
    }),
  );

  // The socket stays paused while a chunk waits for credit: that is what stops the backend
  // when the client reads slowly (the server blocks in ClientWrite), so nothing piles up here.
  // Not channel.pipeFrom: the session needs to know when the last chunk is out, so the FATAL
  // ErrorResponse a server sends before hanging up reaches the client ahead of the close.
  const forward = (chunk: Buffer) => {
    socket.pause();
    const sent = channel.sendData(chunk, backendFrame);
    lastSend = sent.then(
      () => {
        if (!socket.destroyed) socket.resume();
      },
      () => {
        socket.destroy();
      },
    );
  };
  socket.on('data', forward);
  socket.on('error', (err) => {
    socketError = err;
  });
  socket.on('close', () => {
    const finish = () => {
      if (frontend.terminated && !socketError) {
        channel.close();
        return;
      }
      channel.close(
        new WardError(
          'ERR_PG_BACKEND_CLOSED',
          'unavailable',
          `the database closed the connection${socketError ? ` (${socketError.message})` : ''}`,
          socketError ? { cause: socketError } : {},
        ),
      );
    };
    void lastSend.then(finish);
  });

  if (socket.destroyed) {
    // Reset between ReadyForQuery and here: its 'close' went to the start-up reader.
    channel.close(new WardError('ERR_PG_BACKEND_CLOSED', 'unavailable', 'the database closed the connection'));
    return;
  }
  if (established.leftover.byteLength > 0) forward(established.leftover);
  else socket.resume();

  channel.onFrame((frame) => {
    switch (frame.frame.case) {
      case 'pgFrontend': {
        const bytes = frame.frame.value.messages;
        frontend.feed(bytes);
        channel.deliverTo(socket, bytes);
        return;
      }
      case 'pgCancel':
        if (!key) {
          trace(`cancel ignored: database "${backend.name}" sent no BackendKeyData`);
          return;
        }
        cancelQuery(backend, key).catch((err: unknown) =>
          trace(`cancel on "${backend.name}" failed: ${toWardError(err).message}`),
        );
        return;
      default:
        channel.close(unexpectedFrame(frame, 'a Postgres session'));
    }
  });
}

/**
 * Sends a CancelRequest on a fresh connection (same TLS rules), as libpq's PQcancel does. The
 * server answers nothing and closes; whether the query was running is for it to decide.
 */
export async function cancelQuery(backend: PostgresBackend, key: BackendKey): Promise<void> {
  const timeoutMs = backend.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const attempt = new AbortController();
  const timer = setTimeout(
    () =>
      attempt.abort(
        new WardError('ERR_PG_BACKEND_UNREACHABLE', 'unavailable', `cancel did not complete within ${timeoutMs} ms`),
      ),
    timeoutMs,
  );
  try {
    const socket = await connectBackend(backend, attempt.signal);
    await new Promise<void>((resolve) => {
      const done = () => {
        attempt.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => socket.destroy();
      attempt.signal.addEventListener('abort', onAbort, { once: true });
      socket.on('close', done);
      socket.on('error', () => {});
      socket.resume();
      socket.end(encodeCancelRequest(key));
    });
  } finally {
    clearTimeout(timer);
  }
}
