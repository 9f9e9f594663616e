import { toWardError, type WardError } from '@ward/protocol';
import { protocolError, tooLargeError } from './codec-errors.js';
import { BackendCode, DEFAULT_MAX_MESSAGE_SIZE, POSTGRES_MAX_MESSAGE_SIZE } from './codes.js';
import { Framer } from './framer.js';

/** One whole backend message, cut out of the stream but not parsed. */
export interface BackendPacket {
  /** The message type byte (see BackendCode). */
  readonly tag: number;
  /** The message exactly as received, tag and length included; a subarray when possible. */
  readonly raw: Buffer;
  /** Bytes on the wire, tag included (= raw.byteLength). */
  readonly byteLength: number;
}

export interface BackendMessageSplitterOptions {
  /** Cap on a message's Int32 length, checked before its body is buffered. Default 64 MiB. */
  maxMessageSize?: number;
}

const BACKEND_TAGS: ReadonlySet<number> = new Set<number>([
  BackendCode.Authentication,
  BackendCode.BackendKeyData,
  BackendCode.BindComplete,
  BackendCode.CloseComplete,
  BackendCode.CommandComplete,
  BackendCode.CopyData,
  BackendCode.CopyDone,
  BackendCode.CopyInResponse,
  BackendCode.CopyOutResponse,
  BackendCode.CopyBothResponse,
  BackendCode.DataRow,
  BackendCode.EmptyQueryResponse,
  BackendCode.ErrorResponse,
  BackendCode.FunctionCallResponse,
  BackendCode.NegotiateProtocolVersion,
  BackendCode.NoData,
  BackendCode.NoticeResponse,
  BackendCode.NotificationResponse,
  BackendCode.ParameterDescription,
  BackendCode.ParameterStatus,
  BackendCode.ParseComplete,
  BackendCode.PortalSuspended,
  BackendCode.ReadyForQuery,
  BackendCode.RowDescription,
]);

/**
 * Cuts the byte stream a Postgres server sends into whole tagged messages without parsing
 * them, so the gateway can batch and count everything and parse (with parseBackendMessage)
 * only what it inspects: RowDescription, DataRow, CommandComplete, ErrorResponse,
 * ReadyForQuery. Remainders are kept across pushes; lengths are checked before buffering;
 * an unknown tag or a bad length is an error (ERR_PG_PROTOCOL, ERR_PG_MESSAGE_TOO_LARGE)
 * after which every call throws it again.
 *
 * The single-byte answer to SSLRequest is not a tagged message: read it before pushing.
 *
 * @example
 * const splitter = new BackendMessageSplitter();
 * for (const packet of splitter.push(chunk)) {
 *   if (packet.tag === BackendCode.DataRow) mask(parseBackendMessage(packet.raw));
 * }
 */
export class BackendMessageSplitter {
  private readonly framer = new Framer();
  private readonly maxMessageSize: number;
  private error: WardError | undefined;

  constructor(options: BackendMessageSplitterOptions = {}) {
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isInteger(max) || max < 4 || max > POSTGRES_MAX_MESSAGE_SIZE) {
      throw new RangeError(`maxMessageSize must be an integer from 4 to ${POSTGRES_MAX_MESSAGE_SIZE}, got ${max}`);
    }
    this.maxMessageSize = max;
  }

  /** Bytes received but not yet returned as packets. */
  get buffered(): number {
    return this.framer.buffered;
  }

  push(chunk: Uint8Array): BackendPacket[] {
    if (this.error !== undefined) throw this.error;
    this.framer.append(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const out: BackendPacket[] = [];
    try {
      for (let raw = this.framer.next(this.inspect); raw !== undefined; raw = this.framer.next(this.inspect)) {
        out.push({ tag: raw[0]!, raw, byteLength: raw.byteLength });
      }
    } catch (err) {
      this.error = toWardError(err);
      this.framer.clear();
      throw this.error;
    }
    return out;
  }

  private readonly inspect = (head: Buffer): number | undefined => {
    const tag = head[0]!;
    if (!BACKEND_TAGS.has(tag)) throw protocolError(`invalid backend message type 0x${tag.toString(16)}`);
    if (head.byteLength < 5) return undefined;
    const length = head.readInt32BE(1);
    if (length < 4) throw protocolError(`invalid backend message length ${length}`);
    if (length > this.maxMessageSize) throw tooLargeError('backend message', length, this.maxMessageSize);
    return 1 + length;
  };
}
