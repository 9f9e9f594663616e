/**
 * UTF-8 bytes in, the UTF-8 bytes of the same text as the body of a JSON string out, in one pass
 * over the bytes: what `JSON.stringify(decoder.write(chunk)).slice(1, -1)` written as UTF-8
 * gives with Node's `StringDecoder('utf8')`, byte for byte, without the string in between.
 * (Decoding invalid UTF-8 and re-encoding a two-byte string cost ~30 ns per byte; a bulk
 * transfer recorded as asciicast spent most of the gateway's CPU there.)
 *
 * It keeps the decoder's chunking exactly: an incomplete character at the end of a chunk is
 * held back by the rule of Node's src/string_decoder.cc (`DecodeData`/`FlushData`) and
 * finished, or given up, with the next chunk; each piece is then decoded like V8 decodes a
 * buffer (WHATWG UTF-8 decode: one U+FFFD per maximal invalid subpart, Unicode §3.9).
 * Well-formed chunks (most terminal output) take V8's native path instead, which is faster
 * than any loop over bytes for text; the loop is for the rest (binary data).
 *
 * JSON.stringify escapes `"`, `\` and the controls below U+0020 (`\b \t \n \f \r`, else
 * `\u00xx`); everything else, U+007F and U+2028/2029 included, stays as it is.
 */

import { isUtf8 } from 'node:buffer';

/** For each byte: 0 written as it is, 1 a one-letter escape (`\n`), 2 `\u00xx`, 3 not ASCII. */
const CLASS = new Uint8Array(256).map((_, b) => {
  if (b >= 0x80) return 3;
  const escaped = JSON.stringify(String.fromCharCode(b)).slice(1, -1);
  return escaped.length === 1 ? 0 : escaped.length === 2 ? 1 : 2;
});
/** The letter after the backslash of a one-letter escape. */
const LETTER = new Uint8Array(0x80).map((_, b) =>
  CLASS[b] === 1 ? JSON.stringify(String.fromCharCode(b)).charCodeAt(2) : 0,
);
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** Most output bytes one input byte can make (`\u00xx`). */
const MAX_EXPANSION = 6;

function isContinuation(b: number): boolean {
  return (b & 0xc0) === 0x80;
}

export class Utf8JsonEncoder {
  /** The start of a character cut off at the end of the last chunk (StringDecoder's buffer). */
  readonly #held = new Uint8Array(4);
  #heldCount = 0;
  /** Bytes the held character still lacks by its lead byte's count. */
  #missing = 0;

  /** Room `write` or `end` may need in `out` for a chunk of `length` bytes. */
  static maxBytes(length: number): number {
    return (length + 4) * MAX_EXPANSION;
  }

  /**
   * Encodes `chunk` into `out` from `at` (which must have `maxBytes(chunk.length)` bytes of
   * room) and returns the offset after the last byte written.
   */
  write(chunk: Uint8Array, out: Buffer, at: number): number {
    if (this.#heldCount === 0 && isUtf8(chunk)) {
      // Whole characters only, nothing held: StringDecoder would return the same text.
      const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
      return at + out.write(JSON.stringify(text).slice(1, -1), at, 'utf8');
    }
    let start = 0;
    const end = chunk.length;
    if (this.#missing > 0) {
      // Continuation bytes finish the held character; another byte gives it up (it is decoded
      // alone, as an incomplete sequence) and starts the rest.
      let i = 0;
      let cut = false;
      while (i < end && i < this.#missing) {
        if (!isContinuation(chunk[i] as number)) {
          cut = true;
          break;
        }
        i++;
      }
      this.#held.set(chunk.subarray(0, i), this.#heldCount);
      this.#heldCount += i;
      this.#missing = cut ? 0 : this.#missing - i;
      start = i;
      if (this.#missing > 0) return at;
      at = decode(this.#held, 0, this.#heldCount, out, at);
      this.#heldCount = 0;
    }
    if (start === end) return at;
    let keep = 0;
    if ((chunk[end - 1] as number) & 0x80) {
      // Look back from the end for the lead byte of the last character.
      for (let i = end - 1; ; i--) {
        keep++;
        const b = chunk[i] as number;
        if (isContinuation(b)) {
          if (keep >= 4 || i === start) {
            keep = 0;
            break;
          }
          continue;
        }
        let length: number;
        if ((b & 0xe0) === 0xc0) length = 2;
        else if ((b & 0xf0) === 0xe0) length = 3;
        else if ((b & 0xf8) === 0xf0) length = 4;
        else {
          keep = 0;
          break;
        }
        if (keep >= length) keep = 0;
        else this.#missing = length - keep;
        break;
      }
    }
    if (keep > 0) {
      this.#held.set(chunk.subarray(end - keep, end), 0);
      this.#heldCount = keep;
    }
    return decode(chunk, start, end - keep, out, at);
  }

  /** Flushes a held, incomplete character (U+FFFD) into `out` from `at`; returns the new offset. */
  end(out: Buffer, at: number): number {
    const n = this.#heldCount;
    this.#heldCount = 0;
    this.#missing = 0;
    return n > 0 ? decode(this.#held, 0, n, out, at) : at;
  }
}

/** WHATWG UTF-8 decode of bytes[from, to) as a whole (end of input at `to`), JSON-escaped. */
function decode(bytes: Uint8Array, from: number, to: number, out: Uint8Array, at: number): number {
  let i = from;
  while (i < to) {
    const b = bytes[i] as number;
    const kind = CLASS[b] as number;
    if (kind === 0) {
      out[at++] = b;
      i++;
      continue;
    }
    if (kind === 1) {
      out[at++] = 0x5c; // \
      out[at++] = LETTER[b] as number;
      i++;
      continue;
    }
    if (kind === 2) {
      out[at++] = 0x5c; // \u00
      out[at++] = 0x75;
      out[at++] = 0x30;
      out[at++] = 0x30;
      out[at++] = HEX[b >> 4] as number;
      out[at++] = HEX[b & 0xf] as number;
      i++;
      continue;
    }
    let need: number;
    let lower = 0x80;
    let upper = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lower = 0xa0;
      else if (b === 0xed) upper = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lower = 0x90;
      else if (b === 0xf4) upper = 0x8f;
    } else {
      at = replacement(out, at);
      i++;
      continue;
    }
    let j = i + 1;
    let valid = true;
    for (let k = 0; k < need; k++, j++) {
      const c = j < to ? (bytes[j] as number) : -1;
      if (c < lower || c > upper) {
        valid = false;
        break;
      }
      lower = 0x80;
      upper = 0xbf;
    }
    if (valid) {
      // A well-formed character: its UTF-8 bytes are the input bytes.
      while (i < j) out[at++] = bytes[i++] as number;
    } else {
      // One U+FFFD for the maximal subpart; the byte that broke it starts over.
      at = replacement(out, at);
      i = j;
    }
  }
  return at;
}

function replacement(out: Uint8Array, at: number): number {
  out[at] = 0xef;
  out[at + 1] = 0xbf;
  out[at + 2] = 0xbd;
  return at + 3;
}
