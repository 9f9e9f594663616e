import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { type SessionChannel, toWardError, unexpectedFrame, type WardError } from '@ward/protocol';
import type { Identity } from '../identity/index.js';
import { identityLabel, type Recorder } from '../recording/index.js';
import type { SessionRegistry } from '../sessions/index.js';
import type { TunnelServer } from '../tunnel/index.js';

/**
 * One tunnel session carrying the HTTP exchanges of one client connection, one after another,
 * for one identity and one ward connection (a Postgres session carries its queries the same
 * way). The session start is recorded (durably) once, before its first request leaves; each
 * exchange adds one `http.exchange` record; the session ends when the client connection
 * closes, stays idle past `idleMs`, sends a request for another identity or connection, or an
 * exchange fails. An agent that does not announce keep-alive gets one exchange per session,
 * as before.
 *
 * Memory stays bounded: at most one idle session per open client socket (a second request on
 * a socket whose session is busy, i.e. HTTP/1.1 pipelining, gets a session of its own that ends
 * with its exchange), and an idle session holds no buffered bytes.
 */
export class HttpSession {
  readonly id: string;
  readonly channel: SessionChannel;
  readonly connection: string;
  readonly identityKey: string;
  /** Set when the agent's ready arrives: it serves several exchanges (see HttpReady.keep_alive). */
  keepAlive = false;
  /**
   * Settles with the agent's ready. A new session's first request goes right behind the start
   * (not waiting a round trip); its response frames are read once this resolved. Rejects when
   * the agent refuses the session or does not answer in time (the channel is then closed).
   */
  readonly ready: Promise<void>;
  busy = true;
  exchanges = 0;
  readonly #recorder: Recorder;
  readonly #idleMs: number;
  #socket: Socket | undefined;
  /** The running exchange's close callback (one listener per session, not one per exchange). */
  #onExchangeClose: ((reason: WardError | undefined) => void) | undefined;
  /** The running exchange's last word to its client when policy ends the session. */
  #onExchangeTerminate: ((reason: WardError) => void) | undefined;
  #unregister: (() => void) | undefined;
  readonly #onSocketClose = () => this.end();
  #idleTimer: NodeJS.Timeout | undefined;
  #ended = false;
  /** The last exchange's error, if it failed: the session ends with it. */
  #error: WardError | undefined;

  private constructor(
    id: string,
    channel: SessionChannel,
    ready: Promise<boolean>,
    target: { connection: string; identity: Identity; source: string },
    recorder: Recorder,
    idleMs: number,
    registry: SessionRegistry | undefined,
  ) {
    this.id = id;
    this.channel = channel;
    this.connection = target.connection;
    this.identityKey = identityLabel(target.identity) ?? '';
    this.ready = ready.then((keepAlive) => {
      this.keepAlive = keepAlive;
    });
    this.#recorder = recorder;
    this.#idleMs = idleMs;
    // Closed while idle (agent gone, audit store failed, gateway stopping): nothing else notices.
    channel.onClose((reason) => {
      if (!this.busy) this.end(reason);
      else this.#onExchangeClose?.(reason);
    });
    // Listed with the gateway's open sessions, so an expired or revoked grant, a disabled
    // account or a shutdown ends it (idle or mid-exchange) like any other session.
    this.#unregister = registry?.add({
      id,
      connection: target.connection,
      protocol: 'http',
      identity: target.identity,
      source: target.source,
      startedAt: new Date(),
      terminate: (reason) => this.terminate(reason),
    });
  }

  /**
   * Opens a session for `target` on behalf of a client socket. The start frame goes to the
   * agent while the session start is made durable; resolves once both are done, so no client
   * byte leaves before the session is recorded (invariant 3), without waiting for the agent's
   * ready (see `ready`). Rejects with an OpenFailure: the tunnel's or the store's error, and the
   * session id when its start was recorded (the caller records the failed exchange and the
   * session's end).
   */
  static async open(
    ctx: { tunnel: TunnelServer; recorder: Recorder; idleMs: number; registry?: SessionRegistry | undefined },
    target: { connection: string; identity: Identity; source: string },
    signal: AbortSignal,
  ): Promise<HttpSession> {
    const id = `ses_${randomUUID()}`;
    const starting = ctx.tunnel.startSession(
      {
        sessionId: id,
        connection: target.connection,
        identity: target.identity.subject,
        target: { case: 'http', value: { keepAlive: true } },
      },
      signal,
    );
    // Handled below, after the session start is durable; until then a rejection must not count as unhandled.
    starting.then(
      ({ ready }) => ready.catch(() => {}),
      () => {},
    );
    try {
      await ctx.recorder.sessionStarted({
        id,
        connection: target.connection,
        protocol: 'http',
        identity: target.identity,
        source: target.source,
      });
    } catch (err) {
      const error = toWardError(err);
      starting.then(
        ({ channel }) => channel.close(error),
        () => {},
      );
      throw new OpenFailure(error, undefined);
    }
    let started: Awaited<typeof starting>;
    try {
      started = await starting;
    } catch (err) {
      throw new OpenFailure(toWardError(err), id);
    }
    const keepAlive = started.ready.then((r) => r.detail.case === 'http' && r.detail.value.keepAlive);
    const session = new HttpSession(id, started.channel, keepAlive, target, ctx.recorder, ctx.idleMs, ctx.registry);
    session.ready.catch(() => {}); // the exchange awaits it; a refusal must not count as unhandled here
    return session;
  }

  /** Whether the next request on the socket may use this session. */
  fits(connection: string, identity: Identity): boolean {
    return (
      !this.busy &&
      !this.#ended &&
      !this.channel.closed &&
      this.connection === connection &&
      this.identityKey === (identityLabel(identity) ?? '')
    );
  }

  /**
   * Calls `listener` if the channel closes during the current exchange (at once when it is
   * already closed). Cleared by `release`.
   */
  watchClose(listener: (reason: WardError | undefined) => void): void {
    if (this.channel.closed) listener(this.channel.closeReason);
    else this.#onExchangeClose = listener;
  }

  /** What the running exchange tells its client when policy ends the session. Cleared by `release`. */
  onTerminate(listener: (reason: WardError) => void): void {
    this.#onExchangeTerminate = listener;
  }

  /** Ends the session by policy: the running exchange, if any, answers its client with `reason`. */
  terminate(reason: WardError): void {
    if (this.busy) {
      this.#onExchangeTerminate?.(reason);
      this.#error = reason;
      this.channel.close(reason);
    } else this.end(reason);
  }

  /** Takes the session for one exchange. */
  take(): void {
    this.busy = true;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /**
   * The exchange is over. The session stays for the next request on `socket` when it can (the
   * agent keeps sessions alive, the exchange ended cleanly with its request body sent whole, no
   * other session holds the socket); otherwise it ends.
   */
  release(socket: Socket, outcome: { error: WardError | undefined; reusable: boolean }): void {
    this.exchanges++;
    this.busy = false;
    this.#onExchangeClose = undefined;
    this.#onExchangeTerminate = undefined;
    if (outcome.error) this.#error = outcome.error;
    const holder = sockets.get(socket);
    if (
      outcome.error ||
      !outcome.reusable ||
      !this.keepAlive ||
      this.channel.closed ||
      socket.destroyed ||
      (holder !== undefined && holder !== this)
    ) {
      this.end(outcome.error ?? this.channel.closeReason);
      return;
    }
    if (holder === undefined) {
      sockets.set(socket, this);
      this.#socket = socket;
      socket.once('close', this.#onSocketClose);
    }
    // Between exchanges the agent sends nothing; anything it does send ends the session.
    this.channel.onFrame((frame) => this.channel.close(unexpectedFrame(frame, 'an idle HTTP session')));
    this.#idleTimer = setTimeout(() => this.end(), this.#idleMs);
    this.#idleTimer.unref();
  }

  /** Ends the session (idempotent): closes the tunnel session and records the end. */
  end(error?: WardError): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#idleTimer);
    this.#unregister?.();
    if (this.#socket) {
      if (sockets.get(this.#socket) === this) sockets.delete(this.#socket);
      this.#socket.off('close', this.#onSocketClose);
    }
    const reason = error ?? this.#error;
    this.channel.close(reason);
    this.#recorder
      .sessionEnded(this.id, {
        status: reason ? 'error' : 'ok',
        error: reason,
        summary: { exchanges: this.exchanges },
      })
      .catch(() => {
        // The store failed: it has turned unhealthy and the gateway refuses new work.
      });
  }
}

/** Why a session could not open; `sessionId` is set when its start was recorded. */
export class OpenFailure {
  constructor(
    readonly error: WardError,
    readonly sessionId: string | undefined,
  ) {}
}

/** The idle (or busy) session of each client socket. */
const sockets = new WeakMap<Socket, HttpSession>();

/** The session a socket's next request may reuse, if any; ends one that does not fit. */
export function reusableSession(socket: Socket, connection: string, identity: Identity): HttpSession | undefined {
  const held = sockets.get(socket);
  if (!held || held.busy) return undefined;
  if (held.fits(connection, identity)) return held;
  held.end();
  return undefined;
}
