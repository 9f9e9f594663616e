import { encodeError } from './codec-errors.js';
import { POSTGRES_MAX_MESSAGE_SIZE } from './codes.js';

/**
 * Builds one message: parts are collected, then `finish` sizes the buffer once and writes
 * the tag and the Int32 length. Values that cannot be represented (a NUL inside a C string,
 * an integer out of range) throw ERR_PG_ENCODE instead of silently corrupting the framing.
 */
export class BufferWriter {
  private parts: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.byteLength;
    return this;
  }

  int8(v: number): this {
    checkInt(v, 0, 0xff, 'byte');
    const b = Buffer.allocUnsafe(1);
    b[0] = v;
    return this.push(b);
  }

  int16(v: number): this {
    checkInt(v, -0x8000, 0x7fff, 'Int16');
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v, 0);
    return this.push(b);
  }

  int32(v: number): this {
    checkInt(v, -0x8000_0000, 0x7fff_ffff, 'Int32');
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v, 0);
    return this.push(b);
  }

  uint32(v: number): this {
    checkInt(v, 0, 0xffff_ffff, 'OID');
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v, 0);
    return this.push(b);
  }

  cstring(s: string): this {
    if (s.includes('\0')) throw encodeError('a C string on the wire cannot contain a NUL character');
    return this.push(Buffer.from(s + '\0', 'utf8'));
  }

  bytes(b: Uint8Array): this {
    return this.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  /** Int32 length then bytes; null is written as length -1. */
  nullableBytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    this.int32(b.byteLength);
    return this.bytes(b);
  }

  int16Array(values: readonly number[], what: string): this {
    this.count16(values.length, what);
    for (const v of values) this.int16(v);
    return this;
  }

  count16(n: number, what: string): this {
    if (n > 0x7fff) throw encodeError(`too many ${what}: ${n} (at most 32767)`);
    return this.int16(n);
  }

  /** A tagged message: Byte1 tag, Int32 length (self-inclusive), body. */
  finish(tag: number): Buffer {
    const length = this.size + 4;
    if (length > POSTGRES_MAX_MESSAGE_SIZE) throw encodeError(`message of ${length} bytes is too large for Postgres`);
    const out = Buffer.allocUnsafe(1 + length);
    out[0] = tag;
    out.writeInt32BE(length, 1);
    let off = 5;
    for (const p of this.parts) off += p.copy(out, off);
    return out;
  }

  /** An untagged startup-phase packet: Int32 length (self-inclusive), body. */
  finishUntagged(): Buffer {
    const length = this.size + 4;
    const out = Buffer.allocUnsafe(length);
    out.writeInt32BE(length, 0);
    let off = 4;
    for (const p of this.parts) off += p.copy(out, off);
    return out;
  }
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < min || v > max) throw encodeError(`${what} value ${v} is out of range`);
}
