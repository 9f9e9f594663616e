/** Keeps the first `limit` bytes of a body for the recording, and counts all of it. */
export class BodyCapture {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  total = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get truncated(): boolean {
    return this.total > this.#kept;
  }

  add(chunk: Uint8Array): void {
    this.total += chunk.byteLength;
    const room = this.#limit - this.#kept;
    if (room <= 0) return;
    const piece = Buffer.from(chunk.buffer, chunk.byteOffset, Math.min(room, chunk.byteLength));
    // Copy: the source buffer may be reused by the socket after this tick.
    this.#chunks.push(Buffer.from(piece));
    this.#kept += piece.byteLength;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks, this.#kept);
  }
}
