import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { create } from '@bufbuild/protobuf';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { errorFromInfo, errorKindToProto, toWardError, WardError } from '../errors.js';
import { type SessionFrame, SessionFrameSchema } from '../gen/ward/tunnel/v1/tunnel_pb.js';
import { ReceiveWindow, SendWindow } from './credit.js';

export interface SessionChannelOptions {
  windowBytes: number;
  maxFrameBytes: number;
}

type FrameHandler = (frame: SessionFrame) => void;

/** What the channel needs of a grpc-js duplex call (client or server side). */
export interface FrameStream extends EventEmitter {
  write(frame: SessionFrame): boolean;
  end(): unknown;
  destroy(): unknown;
}

/** Payload bytes a frame carries for flow control; 0 for lifecycle frames. */
export function payloadBytes(frame: SessionFrame): number {
  switch (frame.frame.case) {
    case 'body':
      return frame.frame.value.data.byteLength;
    case 'pgFrontend':
    case 'pgBackend':
      return frame.frame.value.messages.byteLength;
    case 'sshData':
      return frame.frame.value.data.byteLength;
    default:
      return 0;
  }
}

/** Maps a grpc-js stream error to a WardError with a stable code. */
export function fromGrpcError(err: unknown): WardError {
  const e = err as { code?: number; details?: string };
  const details = e.details || (err instanceof Error ? err.message : 'stream error');
  switch (e.code) {
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return new WardError('ERR_TUNNEL_FRAME_TOO_LARGE', 'resource_exhausted', `tunnel frame too large: ${details}`, {
        cause: err,
      });
    case GrpcStatus.UNAUTHENTICATED:
      return new WardError('ERR_TUNNEL_AGENT_KEY_INVALID', 'unauthenticated', details, { cause: err });
    case GrpcStatus.CANCELLED:
    case GrpcStatus.UNAVAILABLE:
      return new WardError('ERR_TUNNEL_UNAVAILABLE', 'unavailable', `tunnel connection lost: ${details}`, {
        cause: err,
      });
    case GrpcStatus.INTERNAL:
      return new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', `tunnel protocol error: ${details}`, {
        cause: err,
      });
    default:
      return toWardError(err, 'ERR_TUNNEL_UNAVAILABLE', 'unavailable');
  }
}

/**
 * One session over one gRPC stream, on either side of the tunnel. Data frames are counted
 * against a credit window each way; the receiver returns credit with `delivered()` once its
 * downstream has taken the bytes, so a session buffers at most its window whatever its client
 * does, and never holds back another session (each has its own stream and window).
 *
 * `signal` aborts when the session ends, for either reason; its `reason` is the WardError
 * (or undefined for a normal close).
 */
export class SessionChannel {
  readonly maxFrameBytes: number;
  readonly #stream: FrameStream;
  readonly #send: SendWindow;
  readonly #recv: ReceiveWindow;
  readonly #abort = new AbortController();
  #handler: FrameHandler | undefined;
  #queued: SessionFrame[] = [];
  #closeReason: WardError | undefined;
  #closeListeners: Array<(reason: WardError | undefined) => void> = [];
  /** Settles when the last queued `sendData` is done; undefined while no data is in flight. */
  #tail: Promise<void> | undefined;
  /** Frames (and a normal close) issued while data was in flight, sent once it is out. */
  #afterData: Array<() => void> = [];
  #closing = false;

  constructor(stream: FrameStream, options: SessionChannelOptions) {
    this.#stream = stream;
    this.maxFrameBytes = options.maxFrameBytes;
    this.#send = new SendWindow(options.windowBytes);
    this.#recv = new ReceiveWindow(options.windowBytes);
    stream.on('data', (frame: SessionFrame) => this.#receive(frame));
    stream.on('error', (err) => this.#finish(fromGrpcError(err)));
    stream.on('end', () =>
      this.#finish(new WardError('ERR_TUNNEL_CLOSED', 'unavailable', 'the tunnel stream ended without a close frame')),
    );
    // When grpc-js itself fails a server-side call (a frame it cannot decode, one over the size
    // limit, the peer gone), the stream emits only 'cancelled' and 'close', never 'error' or
    // 'end': without these the gateway's session stayed open forever and its client hung.
    const cut = () =>
      this.#finish(
        new WardError(
          'ERR_TUNNEL_CLOSED',
          'unavailable',
          'the tunnel stream was cut (the peer went away or sent a frame that could not be read)',
        ),
      );
    stream.on('cancelled', cut);
    stream.on('close', cut);
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Error the session ended with (undefined while open or after a normal close). */
  get closeReason(): WardError | undefined {
    return this.#closeReason;
  }

  /** Bytes received and not yet delivered downstream (for tests and metrics). */
  get bufferedBytes(): number {
    return this.#recv.outstanding;
  }

  /**
   * Sets the consumer of incoming frames; frames that arrived earlier are delivered first.
   * `undefined` holds frames in a queue until the next consumer is set (a hand-over point).
   */
  onFrame(handler: FrameHandler | undefined): void {
    this.#handler = handler;
    if (!handler) return;
    const queued = this.#queued;
    this.#queued = [];
    for (const frame of queued) {
      if (this.#handler !== handler) {
        this.#queued.push(frame);
        continue;
      }
      handler(frame);
    }
  }

  /** Called once when the session ends, with its error (undefined for a normal close). */
  onClose(listener: (reason: WardError | undefined) => void): void {
    if (this.closed) listener(this.#closeReason);
    else this.#closeListeners.push(listener);
  }

  /**
   * Sends a frame that carries no payload credit (lifecycle, heads, requests). It keeps its
   * place after data already passed to `sendData`/`pipeFrom` that still waits for credit, so an
   * end-of-body or EOF never overtakes the body. `PgCancel` is out of band and goes at once, as
   * a Postgres CancelRequest does.
   */
  send(frame: SessionFrame): void {
    if (this.closed || this.#closing) return;
    if (this.#tail && frame.frame.case !== 'pgCancel') {
      this.#afterData.push(() => this.#stream.write(frame));
      return;
    }
    this.#stream.write(frame);
  }

  /**
   * Sends payload bytes as one or more data frames, waiting for credit and for the gRPC stream
   * to drain as needed. Calls are queued: bytes go out in call order, never interleaved.
   * Rejects with the session's close reason if it ends first.
   */
  sendData(payload: Uint8Array, wrap: (chunk: Uint8Array) => SessionFrame): Promise<void> {
    return this.#enqueue(() => payload, wrap);
  }

  /** Queues data whose bytes are taken only when its turn comes (so a pipe can coalesce). */
  #enqueue(take: () => Uint8Array, wrap: (chunk: Uint8Array) => SessionFrame): Promise<void> {
    if (this.#closing && !this.closed) {
      return Promise.reject(new WardError('ERR_TUNNEL_CLOSED', 'unavailable', 'the session is closing'));
    }
    const previous = this.#tail;
    const done = previous ? previous.then(() => this.#pump(take(), wrap)) : this.#pump(take(), wrap);
    const tail: Promise<void> = done.then(
      () => this.#idle(tail),
      () => this.#idle(tail),
    );
    this.#tail = tail;
    return done;
  }

  #idle(tail: Promise<void>): void {
    if (this.#tail !== tail) return;
    this.#tail = undefined;
    const after = this.#afterData;
    this.#afterData = [];
    for (const run of after) if (!this.closed) run();
  }

  async #pump(payload: Uint8Array, wrap: (chunk: Uint8Array) => SessionFrame): Promise<void> {
    let offset = 0;
    while (offset < payload.byteLength) {
      if (this.closed) throw this.#closedError();
      const n = this.#send.take(Math.min(this.maxFrameBytes, payload.byteLength - offset));
      if (n === 0) {
        await this.#send.waitForCredit(this.signal);
        continue;
      }
      const accepted = this.#stream.write(wrap(payload.subarray(offset, offset + n)));
      offset += n;
      if (!accepted) await this.#drained();
    }
  }

  /**
   * Pumps a readable (a client or backend socket) into the session as data frames. While a
   * frame waits for credit or for the stream to drain, chunks that arrive meanwhile are
   * coalesced into the next frame (up to `maxFrameBytes`), and the source is paused once that
   * much is pending, which is what pushes back on the sender at the far end of that socket.
   * A lone chunk goes out at once: coalescing never delays data, it only saves frames under
   * load (per-frame cost dominated the benchmark at 64 KiB socket reads).
   * `inspect` sees each chunk first (counting, capture) and may throw to end the session.
   */
  pipeFrom(source: Readable, wrap: (chunk: Uint8Array) => SessionFrame, inspect?: (chunk: Buffer) => void): void {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    // True while a queued send has not yet taken `pending`: new chunks join it.
    let queued = false;
    const take = (): Uint8Array => {
      queued = false;
      const payload = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (source.isPaused() && !source.destroyed) source.resume();
      return payload;
    };
    source.on('data', (chunk: Buffer) => {
      if (inspect) {
        // An inspector may refuse the chunk (a body over its limit): the session ends with its error.
        try {
          inspect(chunk);
        } catch (err) {
          this.close(toWardError(err));
          source.destroy();
          return;
        }
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= this.maxFrameBytes) source.pause();
      if (!queued) {
        queued = true;
        this.#enqueue(take, wrap).catch(() => source.destroy());
      }
    });
  }

  /**
   * Writes received payload to a downstream writable and returns the credit once the
   * writable has taken it (for a socket: handed to the kernel).
   */
  deliverTo(target: Writable, payload: Uint8Array): void {
    const n = payload.byteLength;
    target.write(payload, () => this.delivered(n));
  }

  /** Reports `bytes` of received payload as delivered downstream; returns credit to the peer. */
  delivered(bytes: number): void {
    const grant = this.#recv.delivered(bytes);
    if (grant > 0 && !this.closed) {
      this.#stream.write(create(SessionFrameSchema, { frame: { case: 'windowUpdate', value: { bytes: grant } } }));
    }
  }

  /**
   * Ends the session, telling the peer why (nothing for a normal end). Idempotent. A normal
   * end first lets queued data and frames go out; an error ends at once (the data is moot).
   */
  close(error?: WardError): void {
    if (this.closed) return;
    if (!error && this.#tail) {
      if (!this.#closing) this.#afterData.push(() => this.close());
      this.#closing = true;
      return;
    }
    this.#closing = false;
    const frame = create(SessionFrameSchema, {
      frame: {
        case: 'close',
        value: error ? { error: { code: error.code, message: error.message, kind: errorKindToProto(error.kind) } } : {},
      },
    });
    this.#stream.write(frame);
    this.#stream.end();
    this.#finish(error);
  }

  /** Ends the session at once without telling the peer (its stream is gone or misbehaved). */
  destroy(error: WardError): void {
    this.#finish(error);
    this.#stream.destroy();
  }

  #receive(frame: SessionFrame): void {
    if (this.closed) return;
    switch (frame.frame.case) {
      case 'windowUpdate':
        this.#send.grant(frame.frame.value.bytes);
        return;
      case 'close': {
        const info = frame.frame.value.error;
        this.#finish(info ? errorFromInfo(info) : undefined);
        this.#stream.end();
        return;
      }
      default:
        break;
    }
    const bytes = payloadBytes(frame);
    if (bytes > 0 && !this.#recv.receive(bytes)) {
      this.close(
        new WardError(
          'ERR_TUNNEL_FLOW_VIOLATION',
          'invalid_argument',
          `the peer sent ${this.#recv.outstanding} bytes against a ${this.#recv.window}-byte window`,
        ),
      );
      return;
    }
    if (this.#handler) this.#handler(frame);
    else this.#queued.push(frame);
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#stream.off('drain', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.#stream.on('drain', done);
      this.signal.addEventListener('abort', done, { once: true });
    });
  }

  #closedError(): WardError {
    return this.#closeReason ?? new WardError('ERR_TUNNEL_CLOSED', 'unavailable', 'the session is closed');
  }

  #finish(reason: WardError | undefined): void {
    if (this.closed) return;
    this.#closeReason = reason;
    this.#abort.abort(reason);
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const listener of listeners) listener(reason);
  }
}
