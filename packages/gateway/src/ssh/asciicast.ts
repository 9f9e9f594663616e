import { Utf8JsonEncoder } from './utf8-json.js';

export interface AsciicastHeader {
  width: number;
  height: number;
  /** Unix time of the start, in seconds. */
  timestamp: number;
  term?: string | undefined;
  command?: string | undefined;
  title?: string | undefined;
}

/** Default cap: under the store's 64 MiB blob limit with room for the header and closing event. */
export const DEFAULT_MAX_RECORDING_BYTES = 63 * 1024 * 1024;

/**
 * Writes an asciicast v2 recording (https://docs.asciinema.org/manual/asciicast/v2/): a JSON
 * header line, then one `[time, code, data]` line per event — `o` output, `i` input, `r`
 * resize as `COLSxROWS`, `m` marker. I/O-free: the session feeds it chunks and takes the
 * bytes at the end.
 *
 * Output and input each go through their own UTF-8 decoder, so a character split across two
 * SSH packets is written whole instead of as two replacement characters. Once the recording
 * reaches `maxBytes` it stops taking events and writes one marker saying so (`truncated`).
 */
export class AsciicastWriter {
  readonly #chunks: Buffer[] = [];
  readonly #maxBytes: number;
  readonly #startMs: number;
  readonly #now: () => number;
  readonly #out = new Utf8JsonEncoder();
  readonly #in = new Utf8JsonEncoder();
  #bytes = 0;
  #truncated = false;
  #events = 0;

  constructor(header: AsciicastHeader, options: { maxBytes?: number; now?: () => number } = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_RECORDING_BYTES;
    this.#now = options.now ?? Date.now;
    this.#startMs = this.#now();
    const env: Record<string, string> = {};
    if (header.term) env['TERM'] = header.term;
    const line: Record<string, unknown> = {
      version: 2,
      width: header.width,
      height: header.height,
      timestamp: header.timestamp,
      env,
    };
    if (header.command !== undefined) line['command'] = header.command;
    if (header.title !== undefined) line['title'] = header.title;
    this.#push(`${JSON.stringify(line)}\n`, true);
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  get byteLength(): number {
    return this.#bytes;
  }

  /** Events written (header excluded). */
  get events(): number {
    return this.#events;
  }

  output(data: Uint8Array): void {
    // Past the cap nothing is written: skip the decoding too (a bulk transfer through an exec
    // session spent a third of the gateway's CPU decoding bytes it then dropped).
    if (!this.#truncated) this.#text('o', this.#out, data);
  }

  input(data: Uint8Array): void {
    if (!this.#truncated) this.#text('i', this.#in, data);
  }

  resize(cols: number, rows: number): void {
    this.#event('r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.#event('m', label);
  }

  /** The whole recording; flushes partial characters. The writer takes no events after this. */
  finish(): Buffer {
    if (!this.#truncated) this.#text('o', this.#out);
    if (!this.#truncated) this.#text('i', this.#in);
    const all = Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks.length = 0;
    this.#chunks.push(all);
    return all;
  }

  /**
   * An `o`/`i` event straight from the bytes (see utf8-json.ts): the same line as
   * `#event(code, decoder.write(data))`, without the string in between. `data` undefined: the
   * decoder's end.
   */
  #text(code: 'o' | 'i', encoder: Utf8JsonEncoder, data?: Uint8Array): void {
    const body = scratch(Utf8JsonEncoder.maxBytes(data?.length ?? 0));
    const n = data ? encoder.write(data, body, 0) : encoder.end(body, 0);
    if (n === 0) return;
    const t = Math.max(0, this.#now() - this.#startMs) / 1000;
    const head = `[${Number(t.toFixed(6))},"${code}","`;
    const line = Buffer.allocUnsafe(head.length + n + 3);
    line.write(head, 0, 'latin1');
    body.copy(line, head.length, 0, n);
    line.write('"]\n', head.length + n, 'latin1');
    if (!this.#pushBytes(line, false)) {
      this.#truncate(t);
      return;
    }
    this.#events++;
  }

  #event(code: 'o' | 'i' | 'r' | 'm', data: string): void {
    if (data.length === 0 || this.#truncated) return;
    const t = Math.max(0, this.#now() - this.#startMs) / 1000;
    const line = `${JSON.stringify([Number(t.toFixed(6)), code, data])}\n`;
    if (!this.#push(line, false)) {
      this.#truncate(t);
      return;
    }
    this.#events++;
  }

  #truncate(t: number): void {
    this.#truncated = true;
    const note = `${JSON.stringify([Number(t.toFixed(6)), 'm', `ward: recording truncated at ${this.#maxBytes} bytes`])}\n`;
    this.#push(note, true);
  }

  #push(line: string, force: boolean): boolean {
    return this.#pushBytes(Buffer.from(line, 'utf8'), force);
  }

  #pushBytes(bytes: Buffer, force: boolean): boolean {
    if (!force && this.#bytes + bytes.length > this.#maxBytes) return false;
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
    return true;
  }
}

/** One buffer for every writer's event under construction (synchronous use only). */
let scratchBuffer = Buffer.allocUnsafe(64 * 1024);

function scratch(bytes: number): Buffer {
  if (scratchBuffer.length < bytes) scratchBuffer = Buffer.allocUnsafe(Math.max(bytes, scratchBuffer.length * 2));
  return scratchBuffer;
}

export interface AsciicastEvent {
  time: number;
  code: string;
  data: string;
}

/** Parses an asciicast v2 recording (for replay and tests); throws on a malformed line. */
export function parseAsciicast(text: string): { header: Record<string, unknown>; events: AsciicastEvent[] } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const first = lines.shift();
  if (first === undefined) throw new Error('empty recording');
  const header = JSON.parse(first) as Record<string, unknown>;
  if (header['version'] !== 2) throw new Error('not an asciicast v2 recording');
  const events = lines.map((line, i) => {
    const e = JSON.parse(line) as unknown;
    if (!Array.isArray(e) || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string')
      throw new Error(`event ${i + 1} is not [time, code, data]`);
    return { time: e[0], code: e[1], data: e[2] };
  });
  return { header, events };
}
