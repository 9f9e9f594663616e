/**
 * Decides from the first bytes of a frame how long the whole frame is (every byte counted),
 * or returns undefined while it needs more header bytes. It throws on a bad header, and is
 * where every length limit is enforced, so nothing is buffered for a frame that is refused.
 */
export type FrameInspector = (head: Buffer) => number | undefined;

/** The longest header any inspector looks at (startup packets: Int32 length + Int32 code). */
const MAX_HEADER = 8;

/**
 * Keeps the unfinished remainder of a byte stream and cuts whole frames out of it. A frame
 * lying inside one pushed chunk is returned as a subarray of that chunk (no copy); a frame
 * spread over several chunks is copied once into a buffer of exactly its size, and only once
 * all of it has arrived, so a peer announcing a huge frame costs nothing until it sends it.
 * Pushed chunks are kept by reference: callers must not mutate them afterwards.
 */
export class Framer {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private needed: number | undefined;

  get buffered(): number {
    return this.pendingSize;
  }

  append(chunk: Buffer): void {
    if (chunk.byteLength === 0) return;
    this.pending.push(chunk);
    this.pendingSize += chunk.byteLength;
  }

  /** Drops everything buffered; returns how many bytes were dropped. */
  clear(): number {
    const n = this.pendingSize;
    this.pending = [];
    this.pendingSize = 0;
    this.needed = undefined;
    return n;
  }

  /**
   * Returns the next whole frame, or undefined when the buffered bytes do not hold one yet.
   * `inspect` may differ between calls (the frontend switches phase between frames).
   */
  next(inspect: FrameInspector): Buffer | undefined {
    if (this.pendingSize === 0) return undefined;
    if (this.needed === undefined) {
      this.needed = inspect(this.head());
      if (this.needed === undefined) return undefined;
    }
    const needed = this.needed;
    if (this.pendingSize < needed) return undefined;
    this.needed = undefined;
    this.pendingSize -= needed;
    const first = this.pending[0]!;
    if (first.byteLength >= needed) {
      if (first.byteLength === needed) this.pending.shift();
      else this.pending[0] = first.subarray(needed);
      return first.subarray(0, needed);
    }
    const frame = Buffer.allocUnsafe(needed);
    let off = 0;
    let used = 0;
    while (off < needed) {
      const part = this.pending[used]!;
      const take = Math.min(part.byteLength, needed - off);
      part.copy(frame, off, 0, take);
      off += take;
      if (take === part.byteLength) used++;
      else this.pending[used] = part.subarray(take);
    }
    this.pending.splice(0, used);
    return frame;
  }

  private head(): Buffer {
    const first = this.pending[0]!;
    if (first.byteLength >= MAX_HEADER || this.pending.length === 1) return first;
    // Copy only the header bytes: the chunk after a 3-byte remainder may be megabytes long.
    const head = Buffer.allocUnsafe(Math.min(MAX_HEADER, this.pendingSize));
    let off = 0;
    for (const part of this.pending) {
      off += part.copy(head, off, 0, Math.min(part.byteLength, head.byteLength - off));
      if (off === head.byteLength) break;
    }
    return head;
  }
}
