/**
 * The I/O-free half of the agent → Postgres leg during startup: building the few messages a
 * client sends before authentication, and reading what the server answers with every length
 * checked before anything is buffered. pg-protocol's Parser trusts the length prefix (a server
 * saying 2 GiB gets a 2 GiB buffer), so startup uses this reader; after ReadyForQuery the bytes
 * are relayed raw and the gateway splits them with its own bounded codec.
 *
 * Message layouts: PostgreSQL docs, "Frontend/Backend Protocol", §55.7 Message Formats.
 */
import { WardError } from '@ward/protocol';

export enum BackendCode {
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  BackendKeyData = 0x4b, // K
  ReadyForQuery = 0x5a, // Z
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  NegotiateProtocolVersion = 0x76, // v
}

/** Int32 codes that stand where a StartupMessage's protocol version would be. */
const PROTOCOL_3_0 = 196608; // 3 << 16
const SSL_REQUEST_CODE = 80877103;
const CANCEL_REQUEST_CODE = 80877102;

/** Startup parameters a client may not choose: the agent decides who logs in, and where. */
const RESERVED_PARAMETERS = new Set(['user', 'database', 'replication']);

export interface BackendMessage {
  code: number;
  /** The message body, without the type byte and length. */
  body: Buffer;
}

export interface BackendKey {
  processId: number;
  /** Kept as the raw 4 bytes: it is echoed back, never interpreted. */
  secret: Buffer;
}

export type Authentication =
  | { type: 'ok' }
  | { type: 'cleartext' }
  | { type: 'md5'; salt: Buffer }
  | { type: 'sasl'; mechanisms: string[] }
  | { type: 'sasl-continue'; data: string }
  | { type: 'sasl-final'; data: string }
  | { type: 'unsupported'; method: string };

const protocolError = (message: string) =>
  new WardError('ERR_PG_BACKEND_PROTOCOL', 'unavailable', `malformed reply from the database: ${message}`);

/**
 * Splits server bytes into messages. `push` adds a chunk; `next` returns the next whole message
 * or undefined. A length prefix below 4 or above `maxMessageBytes` throws before the body is
 * waited for, so a hostile server cannot make the agent buffer more than one bounded message.
 */
export class BackendReader {
  readonly maxMessageBytes: number;
  #chunks: Buffer[] = [];
  #length = 0;

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /** Bytes received and not yet returned as messages. */
  get bufferedBytes(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.byteLength;
  }

  next(): BackendMessage | undefined {
    if (this.#length < 5) return undefined;
    const head = this.#peek(5);
    const code = head[0] as number;
    const length = head.readUInt32BE(1);
    if (length < 4) throw protocolError(`message '${printable(code)}' declares length ${length}`);
    if (length > this.maxMessageBytes) {
      throw protocolError(
        `message '${printable(code)}' declares ${length} bytes, more than the ${this.maxMessageBytes}-byte startup limit`,
      );
    }
    if (this.#length < length + 1) return undefined;
    const all = this.#take(length + 1);
    return { code, body: all.subarray(5) };
  }

  /** Hands over whatever is buffered (bytes that followed ReadyForQuery) and empties the reader. */
  drain(): Buffer {
    const rest = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#length = 0;
    return rest;
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.byteLength >= n) return first.subarray(0, n);
    const merged = Buffer.concat(this.#chunks);
    this.#chunks = [merged];
    return merged.subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.byteLength < n) {
      const merged = Buffer.concat(this.#chunks);
      this.#chunks = [merged];
      return this.#take(n);
    }
    const out = first.subarray(0, n);
    if (first.byteLength === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#length -= n;
    return out;
  }
}

function printable(code: number): string {
  return code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : `0x${code.toString(16)}`;
}

/** A cursor over one message body; every read is bounds-checked. */
class BodyReader {
  #body: Buffer;
  #offset = 0;
  readonly #what: string;

  constructor(body: Buffer, what: string) {
    this.#body = body;
    this.#what = what;
  }

  get remaining(): number {
    return this.#body.byteLength - this.#offset;
  }

  int32(): number {
    if (this.remaining < 4) throw protocolError(`${this.#what} is truncated`);
    const v = this.#body.readInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.remaining < n) throw protocolError(`${this.#what} is truncated`);
    const v = this.#body.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return v;
  }

  cstring(): string {
    const end = this.#body.indexOf(0, this.#offset);
    if (end < 0) throw protocolError(`${this.#what} has an unterminated string`);
    const v = this.#body.toString('utf8', this.#offset, end);
    this.#offset = end + 1;
    return v;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }
}

/** Authentication request codes, §55.7 "AuthenticationXXX". */
const AUTH_UNSUPPORTED: Record<number, string> = {
  2: 'Kerberos V5',
  6: 'SCM credentials',
  7: 'GSSAPI',
  8: 'GSSAPI continuation',
  9: 'SSPI',
};

export function decodeAuthentication(body: Buffer): Authentication {
  const r = new BodyReader(body, 'Authentication');
  const type = r.int32();
  switch (type) {
    case 0:
      return { type: 'ok' };
    case 3:
      return { type: 'cleartext' };
    case 5:
      return { type: 'md5', salt: Buffer.from(r.bytes(4)) };
    case 10: {
      const mechanisms: string[] = [];
      for (;;) {
        const name = r.cstring();
        if (name === '') break;
        mechanisms.push(name);
      }
      return { type: 'sasl', mechanisms };
    }
    case 11:
      return { type: 'sasl-continue', data: r.rest().toString('utf8') };
    case 12:
      return { type: 'sasl-final', data: r.rest().toString('utf8') };
    default:
      return { type: 'unsupported', method: AUTH_UNSUPPORTED[type] ?? `unknown method ${type}` };
  }
}

export function decodeParameterStatus(body: Buffer): { name: string; value: string } {
  const r = new BodyReader(body, 'ParameterStatus');
  return { name: r.cstring(), value: r.cstring() };
}

export function decodeBackendKeyData(body: Buffer): BackendKey {
  const r = new BodyReader(body, 'BackendKeyData');
  const processId = r.int32();
  const secret = Buffer.from(r.bytes(4));
  return { processId, secret };
}

/** ErrorResponse/NoticeResponse fields by their one-letter type (§55.8): C = SQLSTATE, M = message… */
export function decodeErrorFields(body: Buffer): Map<string, string> {
  const r = new BodyReader(body, 'ErrorResponse');
  const fields = new Map<string, string>();
  while (r.remaining > 0) {
    const type = r.bytes(1)[0] as number;
    if (type === 0) break;
    fields.set(String.fromCharCode(type), r.cstring());
  }
  return fields;
}

function cstring(value: string, what: string): Buffer {
  const b = Buffer.from(value, 'utf8');
  if (b.includes(0)) {
    throw new WardError('ERR_PG_ENCODE', 'invalid_argument', `${what} contains a NUL byte and cannot be sent`);
  }
  return Buffer.concat([b, Buffer.from([0])]);
}

/**
 * StartupMessage for protocol 3.0. `parameters` are the client's own (application_name,
 * DateStyle…); `user`/`database`/`replication` among them are dropped, the agent's win.
 */
export function encodeStartupMessage(
  user: string,
  database: string,
  parameters: ReadonlyArray<{ name: string; value: string }>,
): Buffer {
  const parts: Buffer[] = [cstring('user', 'user'), cstring(user, 'user'), cstring('database', 'database')];
  parts.push(cstring(database, 'database'));
  const seen = new Set<string>();
  for (const { name, value } of parameters) {
    // Names are case-sensitive on the wire but "User" is not a parameter Postgres knows, so
    // lower-case comparison only ever drops more, never less.
    if (RESERVED_PARAMETERS.has(name.toLowerCase()) || name === '' || seen.has(name)) continue;
    seen.add(name);
    parts.push(cstring(name, `startup parameter ${name}`), cstring(value, `startup parameter ${name}`));
  }
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const head = Buffer.allocUnsafe(8);
  head.writeInt32BE(body.byteLength + 8, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

export function encodeSSLRequest(): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(SSL_REQUEST_CODE, 4);
  return b;
}

/** CancelRequest: Int32 16, Int32 80877102, process id, secret key (§55.7). */
export function encodeCancelRequest(key: BackendKey): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  b.writeInt32BE(key.processId, 8);
  key.secret.copy(b, 12, 0, 4);
  return b;
}
