import { WardError } from '@ward/protocol';

/** One server-sent event (WHATWG HTML §9.2.6), with the bytes it arrived as. */
export interface SseEvent {
  /** The `event:` field; undefined means the default type, "message". */
  event: string | undefined;
  /** The `data:` lines joined with "\n". */
  data: string;
  id: string | undefined;
  /** The event exactly as received, blank line included: what a pass-through writes. */
  raw: Buffer;
}

export interface SseParserOptions {
  /** Largest event kept, raw bytes; larger ones are skipped (counted in `skipped`) or refused. */
  maxEventBytes: number;
  /** `skip` (recording: lose that event, keep going) or `throw` (rewriting: cannot pass it on unchecked). */
  onOversize: 'skip' | 'throw';
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * An I/O-free, incremental `text/event-stream` parser: bytes in (split anywhere, even inside a
 * CRLF or a UTF-8 sequence), whole events out. It holds at most one event's bytes.
 *
 * @example
 * const parser = new SseParser({ maxEventBytes: 1 << 20, onOversize: 'skip' });
 * for (const event of parser.push(chunk)) console.log(event.event, event.data);
 */
export class SseParser {
  readonly #max: number;
  readonly #throw: boolean;
  /** Raw bytes of the event in progress (its complete lines plus the partial one). */
  #raw: Buffer[] = [];
  #rawBytes = 0;
  /** The partial line, kept apart from `#raw` only as an offset: where it starts in the raw bytes. */
  #lineStart = 0;
  #oversize = false;
  /** The last byte seen was CR: a following LF belongs to the same line end. */
  #afterCr = false;
  // Fields of the event in progress.
  #event: string | undefined;
  #data: string[] = [];
  #id: string | undefined;
  #hasField = false;
  /** Events dropped because they exceeded `maxEventBytes`. */
  skipped = 0;

  constructor(options: SseParserOptions) {
    this.#max = options.maxEventBytes;
    this.#throw = options.onOversize === 'throw';
  }

  /** Bytes held for the event in progress. */
  get pendingBytes(): number {
    return this.#rawBytes;
  }

  push(chunk: Uint8Array): SseEvent[] {
    const out: SseEvent[] = [];
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    if (this.#afterCr && buf.length > 0) {
      this.#afterCr = false;
      if (buf[0] === LF) {
        this.#keep(buf.subarray(0, 1));
        i = 1;
        this.#lineStart = this.#rawBytes;
      }
    }
    while (i < buf.length) {
      const end = nextLineEnd(buf, i);
      if (end < 0) {
        this.#keep(buf.subarray(i));
        break;
      }
      let next = end + 1;
      if (buf[end] === CR) {
        if (end + 1 < buf.length) {
          if (buf[end + 1] === LF) next = end + 2;
        } else this.#afterCr = true;
      }
      const lineBytes = this.#rawBytes - this.#lineStart + (end - i);
      // The line's content: the held partial line (if any) plus this chunk's part of it.
      const line = lineBytes === 0 ? '' : this.#lineText(buf.subarray(i, end));
      this.#keep(buf.subarray(i, next));
      this.#lineStart = this.#rawBytes;
      i = next;
      if (lineBytes === 0) {
        const event = this.#dispatch();
        if (event) out.push(event);
      } else if (!this.#oversize) this.#field(line);
    }
    return out;
  }

  /** Text of the line that ends in `tail`, when part of it was held from earlier chunks. */
  #lineText(tail: Buffer): string {
    const held = this.#rawBytes - this.#lineStart;
    if (held === 0 || this.#oversize) return tail.toString('utf8');
    const all = Buffer.concat(this.#raw, this.#rawBytes);
    return Buffer.concat([all.subarray(this.#lineStart), tail]).toString('utf8');
  }

  #keep(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#oversize) {
      this.#rawBytes += bytes.length;
      return;
    }
    if (this.#rawBytes + bytes.length > this.#max) {
      if (this.#throw) {
        throw new WardError(
          'ERR_LLM_SSE_EVENT_TOO_LARGE',
          'resource_exhausted',
          `a server-sent event exceeds ${this.#max} bytes; it cannot be inspected, so the stream is cut`,
        );
      }
      this.#oversize = true;
      this.#raw = [];
      this.#rawBytes += bytes.length;
      return;
    }
    // Copy: the chunk's memory belongs to the transport and may be reused.
    this.#raw.push(Buffer.from(bytes));
    this.#rawBytes += bytes.length;
  }

  #field(line: string): void {
    if (line.startsWith(':')) return; // a comment
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (name) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.#id = value;
        break;
      default:
        // `retry` and unknown fields carry nothing ward records.
        break;
    }
    this.#hasField = true;
  }

  #dispatch(): SseEvent | undefined {
    const oversize = this.#oversize;
    const raw = oversize ? Buffer.alloc(0) : Buffer.concat(this.#raw, this.#rawBytes);
    const event: SseEvent | undefined =
      this.#hasField && !oversize ? { event: this.#event, data: this.#data.join('\n'), id: this.#id, raw } : undefined;
    if (oversize) this.skipped++;
    this.#raw = [];
    this.#rawBytes = 0;
    this.#lineStart = 0;
    this.#oversize = false;
    this.#event = undefined;
    this.#data = [];
    this.#id = undefined;
    this.#hasField = false;
    // A blank line with nothing before it (a keep-alive) still has to reach the client.
    if (!event && !oversize && raw.length > 0) return { event: undefined, data: '', id: undefined, raw };
    return event;
  }
}

function nextLineEnd(buf: Buffer, from: number): number {
  const lf = buf.indexOf(LF, from);
  const cr = buf.indexOf(CR, from);
  if (cr < 0) return lf;
  if (lf < 0) return cr;
  return Math.min(lf, cr);
}

/** Whether an event carries nothing (a keep-alive blank line or a comment-only event). */
export function isEmptyEvent(event: SseEvent): boolean {
  return event.event === undefined && event.data === '' && event.id === undefined;
}

/** Serialises an event, e.g. one a hook rewrote. Multi-line data becomes several `data:` lines. */
export function formatSseEvent(event: Pick<SseEvent, 'event' | 'data' | 'id'>): Buffer {
  let text = '';
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  for (const line of event.data.split(/\r\n|\r|\n/)) text += `data: ${line}\n`;
  return Buffer.from(`${text}\n`, 'utf8');
}
