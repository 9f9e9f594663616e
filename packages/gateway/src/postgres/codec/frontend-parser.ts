import { toWardError, type WardError } from '@ward/protocol';
import { BufferReader } from './buffer-reader.js';
import { protocolError, tooLargeError, unsupportedProtocolError } from './codec-errors.js';
import {
  DEFAULT_MAX_MESSAGE_SIZE,
  FrontendCode,
  MAX_STARTUP_PACKET_LENGTH,
  POSTGRES_MAX_MESSAGE_SIZE,
  SMALL_MESSAGE_LIMIT,
  StartupCode,
} from './codes.js';
import { Framer } from './framer.js';
import type { FrontendMessage, StartupPhaseMessage, TaggedFrontendMessage } from './frontend-messages.js';

export interface FrontendParserOptions {
  /**
   * Cap on a tagged message's Int32 length (which counts itself but not the tag), checked
   * before anything is buffered. Default 64 MiB; at most Postgres' own 1 GiB.
   */
  maxMessageSize?: number;
}

/**
 * - `startup`: untagged packets (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage).
 * - `awaiting`: a startup packet was emitted; later bytes are held, unparsed, until the
 *   caller says what they are (`resume`, `discardBuffered` or `startupDone`).
 * - `normal`: tagged messages.
 * - `failed`: an error was thrown; every later call throws it again.
 */
export type FrontendParserPhase = 'startup' | 'awaiting' | 'normal' | 'failed';

// How Postgres' SocketBackend (postgres.c) caps each message type: 'fixed' bodies are empty
// (length must be exactly 4), 'small' ones are capped at PQ_SMALL_MESSAGE_LIMIT, 'large' ones
// at the configured maximum. A tag missing here is not a frontend message at all.
type SizeClass = 'fixed' | 'small' | 'large';
const SIZE_CLASS = new Map<number, SizeClass>([
  [FrontendCode.Query, 'large'],
  [FrontendCode.Parse, 'large'],
  [FrontendCode.Bind, 'large'],
  [FrontendCode.FunctionCall, 'large'],
  [FrontendCode.CopyData, 'large'],
  // Passwords are large on purpose: a ward token may be far longer than Postgres' 64 KiB
  // auth limit. Sessions lower the cap with setMaxMessageSize until the caller is known.
  [FrontendCode.AuthenticationResponse, 'large'],
  [FrontendCode.Describe, 'small'],
  [FrontendCode.Execute, 'small'],
  [FrontendCode.Close, 'small'],
  [FrontendCode.CopyFail, 'small'],
  [FrontendCode.Sync, 'fixed'],
  [FrontendCode.Flush, 'fixed'],
  [FrontendCode.Terminate, 'fixed'],
  [FrontendCode.CopyDone, 'fixed'],
]);

/**
 * Incremental parser for the bytes a Postgres client sends to ward (ward plays the server).
 * Bytes in, typed messages out; no I/O. Unfinished messages are kept across `push` calls, so
 * chunks may be cut anywhere. Every length is checked before its body is buffered, and any
 * error (always a WardError: ERR_PG_PROTOCOL, ERR_PG_MESSAGE_TOO_LARGE or
 * ERR_PG_UNSUPPORTED_PROTOCOL) is final: the connection must be closed.
 *
 * The startup phase is driven by the caller, because what follows a startup packet depends
 * on the answer the server gives. After each startup packet the parser holds later bytes
 * until told what they are; this is what keeps plaintext sent before a TLS handshake from
 * being read as if it came through TLS (CVE-2021-23214, CVE-2021-3935).
 *
 * @example
 * const parser = new FrontendParser();
 * socket.on('data', (chunk) => {
 *   for (const msg of parser.push(chunk)) {
 *     if (msg.type === 'SSLRequest') {
 *       socket.write(BackendSerializer.sslResponse(false)); // 'N'
 *       for (const next of parser.resume()) handle(next);
 *     } else if (msg.type === 'StartupMessage') {
 *       socket.write(BackendSerializer.authenticationCleartextPassword());
 *       for (const next of parser.startupDone()) handle(next);
 *     } else handle(msg);
 *   }
 * });
 */
export class FrontendParser {
  private readonly framer = new Framer();
  private state: FrontendParserPhase = 'startup';
  private error: WardError | undefined;
  private maxMessageSize: number;

  constructor(options: FrontendParserOptions = {}) {
    this.maxMessageSize = checkLimit(options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE);
  }

  get phase(): FrontendParserPhase {
    return this.state;
  }

  /** Bytes received but not yet returned as messages. */
  get buffered(): number {
    return this.framer.buffered;
  }

  /** Changes the cap for messages whose header has not been read yet. */
  setMaxMessageSize(bytes: number): void {
    this.maxMessageSize = checkLimit(bytes);
  }

  /** Feeds received bytes; returns the messages they complete, in order. */
  push(chunk: Uint8Array): FrontendMessage[] {
    this.throwIfFailed();
    this.framer.append(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (this.state === 'awaiting') {
      if (this.framer.buffered > MAX_STARTUP_PACKET_LENGTH) {
        throw this.fail(protocolError('client sent data before the server answered its startup packet'));
      }
      return [];
    }
    return this.drain();
  }

  /** After answering 'N' to SSLRequest/GSSENCRequest: the client goes on in plaintext. */
  resume(): FrontendMessage[] {
    this.throwIfFailed();
    if (this.state === 'awaiting') this.state = 'startup';
    return this.drain();
  }

  /**
   * After answering 'S' (or 'G'), before the TLS handshake: drops every byte received so far,
   * since the client sent them unencrypted, and returns their count (any is a protocol
   * violation the session should report). Later bytes start a new startup packet.
   */
  discardBuffered(): number {
    this.throwIfFailed();
    if (this.state === 'awaiting') this.state = 'startup';
    return this.framer.clear();
  }

  /** After the StartupMessage: everything that follows is tagged. Returns buffered messages. */
  startupDone(): FrontendMessage[] {
    this.throwIfFailed();
    this.state = 'normal';
    return this.drain();
  }

  private drain(): FrontendMessage[] {
    const out: FrontendMessage[] = [];
    try {
      while (this.state === 'startup' || this.state === 'normal') {
        if (this.state === 'startup') {
          const frame = this.framer.next(inspectStartup);
          if (frame === undefined) break;
          out.push(parseStartupPacket(frame));
          this.state = 'awaiting';
        } else {
          const frame = this.framer.next(this.inspectTagged);
          if (frame === undefined) break;
          out.push(parseTagged(frame));
        }
      }
    } catch (err) {
      // Anything but a WardError here is a bug in this file; it still ends the parser.
      throw this.fail(toWardError(err));
    }
    return out;
  }

  private readonly inspectTagged = (head: Buffer): number | undefined => {
    const tag = head[0]!;
    const sizeClass = SIZE_CLASS.get(tag);
    if (sizeClass === undefined) throw protocolError(`invalid frontend message type ${describeTag(tag)}`);
    if (head.byteLength < 5) return undefined;
    const length = head.readInt32BE(1);
    if (length < 4) throw protocolError(`invalid message length ${length}`);
    if (sizeClass === 'fixed' && length !== 4)
      throw protocolError(`invalid message length ${length} for ${describeTag(tag)}`);
    const limit = sizeClass === 'small' ? Math.min(SMALL_MESSAGE_LIMIT, this.maxMessageSize) : this.maxMessageSize;
    if (length > limit) throw tooLargeError(`message ${describeTag(tag)}`, length, limit);
    return 1 + length;
  };

  private fail(err: WardError): WardError {
    this.state = 'failed';
    this.error = err;
    this.framer.clear();
    return err;
  }

  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error;
  }
}

function checkLimit(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 4 || bytes > POSTGRES_MAX_MESSAGE_SIZE) {
    throw new RangeError(`maxMessageSize must be an integer from 4 to ${POSTGRES_MAX_MESSAGE_SIZE}, got ${bytes}`);
  }
  return bytes;
}

function describeTag(tag: number): string {
  const ch = tag >= 0x20 && tag < 0x7f ? `'${String.fromCharCode(tag)}' ` : '';
  return `${ch}(0x${tag.toString(16).padStart(2, '0')})`;
}

function inspectStartup(head: Buffer): number | undefined {
  if (head.byteLength < 4) return undefined;
  const length = head.readInt32BE(0);
  if (length < 8) throw protocolError(`invalid length of startup packet: ${length}`);
  if (length > MAX_STARTUP_PACKET_LENGTH) throw tooLargeError('startup packet', length, MAX_STARTUP_PACKET_LENGTH);
  return length;
}

function parseStartupPacket(raw: Buffer): StartupPhaseMessage {
  const byteLength = raw.byteLength;
  const code = raw.readInt32BE(4);
  switch (code) {
    case StartupCode.SSLRequest:
    case StartupCode.GSSENCRequest: {
      const type = code === StartupCode.SSLRequest ? 'SSLRequest' : 'GSSENCRequest';
      if (byteLength !== 8) throw protocolError(`${type} must be 8 bytes, got ${byteLength}`);
      return { type, raw, byteLength };
    }
    case StartupCode.CancelRequest: {
      if (byteLength !== 16) throw protocolError(`CancelRequest must be 16 bytes, got ${byteLength}`);
      return { type: 'CancelRequest', processId: raw.readInt32BE(8), secretKey: raw.readInt32BE(12), raw, byteLength };
    }
  }
  const majorVersion = code >>> 16;
  const minorVersion = code & 0xffff;
  if (majorVersion !== 3) throw unsupportedProtocolError(majorVersion, minorVersion);
  const reader = new BufferReader(raw, 8, byteLength, 'StartupMessage');
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.cstring();
    if (name === '') break;
    parameters.set(name, reader.cstring());
  }
  reader.done();
  return { type: 'StartupMessage', majorVersion, minorVersion, parameters, raw, byteLength };
}

function parseTagged(raw: Buffer): TaggedFrontendMessage {
  const byteLength = raw.byteLength;
  const tag = raw[0]!;
  switch (tag) {
    case FrontendCode.Sync:
      return { type: 'Sync', raw, byteLength };
    case FrontendCode.Flush:
      return { type: 'Flush', raw, byteLength };
    case FrontendCode.Terminate:
      return { type: 'Terminate', raw, byteLength };
    case FrontendCode.CopyDone:
      return { type: 'CopyDone', raw, byteLength };
    case FrontendCode.CopyData:
      return { type: 'CopyData', data: raw.subarray(5), raw, byteLength };
    case FrontendCode.AuthenticationResponse:
      return { type: 'AuthenticationResponse', body: raw.subarray(5), raw, byteLength };
  }
  const r = new BufferReader(raw, 5, byteLength, describeTag(tag));
  let msg: TaggedFrontendMessage;
  switch (tag) {
    case FrontendCode.Query:
      msg = { type: 'Query', query: r.cstring(), raw, byteLength };
      break;
    case FrontendCode.Parse: {
      const name = r.cstring();
      const query = r.cstring();
      const paramTypes: number[] = new Array(r.count16('parameter type'));
      for (let i = 0; i < paramTypes.length; i++) paramTypes[i] = r.uint32();
      msg = { type: 'Parse', name, query, paramTypes, raw, byteLength };
      break;
    }
    case FrontendCode.Bind: {
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats = readInt16Array(r, 'parameter format');
      const params: (Buffer | null)[] = new Array(r.count16('parameter'));
      for (let i = 0; i < params.length; i++) params[i] = r.nullableBytes();
      const resultFormats = readInt16Array(r, 'result format');
      msg = { type: 'Bind', portal, statement, paramFormats, params, resultFormats, raw, byteLength };
      break;
    }
    case FrontendCode.Describe:
    case FrontendCode.Close: {
      const target = r.byte();
      if (target !== 0x53 && target !== 0x50) {
        throw protocolError(`invalid ${tag === FrontendCode.Close ? 'CLOSE' : 'DESCRIBE'} message subtype ${target}`);
      }
      const t = target === 0x53 ? 'S' : 'P';
      msg = { type: tag === FrontendCode.Close ? 'Close' : 'Describe', target: t, name: r.cstring(), raw, byteLength };
      break;
    }
    case FrontendCode.Execute:
      msg = { type: 'Execute', portal: r.cstring(), maxRows: r.int32(), raw, byteLength };
      break;
    case FrontendCode.CopyFail:
      msg = { type: 'CopyFail', message: r.cstring(), raw, byteLength };
      break;
    case FrontendCode.FunctionCall: {
      const functionOid = r.uint32();
      const argFormats = readInt16Array(r, 'argument format');
      const args: (Buffer | null)[] = new Array(r.count16('argument'));
      for (let i = 0; i < args.length; i++) args[i] = r.nullableBytes();
      msg = { type: 'FunctionCall', functionOid, argFormats, args, resultFormat: r.int16(), raw, byteLength };
      break;
    }
    default:
      // inspectTagged already refused every other tag.
      throw protocolError(`invalid frontend message type ${describeTag(tag)}`);
  }
  r.done();
  return msg;
}

function readInt16Array(r: BufferReader, what: string): number[] {
  const out: number[] = new Array(r.count16(what));
  for (let i = 0; i < out.length; i++) out[i] = r.int16();
  return out;
}
