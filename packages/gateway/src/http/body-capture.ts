/**
 * Keeps the first `limit` bytes of a body for the recording, and counts all of it. With
 * `tailBytes`, also the last bytes of a body too large to keep whole (an LLM answer's usage
 * comes last).
 */
export class BodyCapture {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  readonly #tailBytes: number;
  #tail: Buffer = Buffer.alloc(0);
  #kept = 0;
  total = 0;

  constructor(limit: number, tailBytes = 0) {
    this.#limit = limit;
    this.#tailBytes = tailBytes;
  }

  get truncated(): boolean {
    return this.total > this.#kept;
  }

  add(chunk: Uint8Array): void {
    this.total += chunk.byteLength;
    const room = this.#limit - this.#kept;
    if (room < chunk.byteLength && this.#tailBytes > 0) this.#keepTail(chunk);
    if (room <= 0) return;
    const piece = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(room, chunk.byteLength));
    // Copy: the source buffer may be reused by the socket after this tick.
    this.#chunks.push(Buffer.from(piece));
    this.#kept += piece.byteLength;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks, this.#kept);
  }

  /** The last bytes seen past the kept head (empty when the body was kept whole). */
  tail(): Buffer {
    return this.#tail;
  }

  #keepTail(chunk: Uint8Array): void {
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const joined = c.byteLength >= this.#tailBytes ? c : Buffer.concat([this.#tail, c]);
    this.#tail = Buffer.from(joined.subarray(Math.max(0, joined.byteLength - this.#tailBytes)));
  }
}
