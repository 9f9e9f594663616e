import { protocolError } from './codec-errors.js';

/**
 * Bounds-checked reader over one message body. Every read past the end, every C string
 * without its terminator, and every negative length becomes ERR_PG_PROTOCOL naming the
 * message, so a malformed body can never surface as a RangeError.
 */
export class BufferReader {
  private offset: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
    private readonly what: string,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number): void {
    if (n > this.end - this.offset) throw protocolError(`${this.what}: insufficient data left in message`);
  }

  byte(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** OIDs are unsigned 32-bit on the wire. */
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** A count that must not be negative (Int16 array sizes). */
  count16(field: string): number {
    const n = this.int16();
    if (n < 0) throw protocolError(`${this.what}: negative ${field} count ${n}`);
    return n;
  }

  cstring(): string {
    const nul = this.buf.indexOf(0, this.offset);
    if (nul === -1 || nul >= this.end) throw protocolError(`${this.what}: unterminated string`);
    const s = this.buf.toString('utf8', this.offset, nul);
    this.offset = nul + 1;
    return s;
  }

  /** A zero-copy view of the next n bytes. */
  bytes(n: number): Buffer {
    if (n < 0) throw protocolError(`${this.what}: negative length ${n}`);
    this.need(n);
    const v = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** Int32 length then that many bytes; -1 means SQL NULL. */
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < -1) throw protocolError(`${this.what}: invalid value length ${len}`);
    return this.bytes(len);
  }

  rest(): Buffer {
    return this.bytes(this.end - this.offset);
  }

  /** Postgres' pq_getmsgend: a body with bytes left over is malformed. */
  done(): void {
    if (this.offset !== this.end) throw protocolError(`${this.what}: invalid message format (trailing bytes)`);
  }
}
