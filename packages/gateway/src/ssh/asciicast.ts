import { StringDecoder } from 'node:string_decoder';

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
  readonly #out = new StringDecoder('utf8');
  readonly #in = new StringDecoder('utf8');
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
    this.#event('o', this.#out.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  input(data: Uint8Array): void {
    this.#event('i', this.#in.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
  }

  resize(cols: number, rows: number): void {
    this.#event('r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.#event('m', label);
  }

  /** The whole recording; flushes partial characters. The writer takes no events after this. */
  finish(): Buffer {
    this.#event('o', this.#out.end());
    this.#event('i', this.#in.end());
    this.#truncated ||= false;
    const all = Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks.length = 0;
    this.#chunks.push(all);
    return all;
  }

  #event(code: 'o' | 'i' | 'r' | 'm', data: string): void {
    if (data.length === 0 || this.#truncated) return;
    const t = Math.max(0, this.#now() - this.#startMs) / 1000;
    const line = `${JSON.stringify([Number(t.toFixed(6)), code, data])}\n`;
    if (!this.#push(line, false)) {
      this.#truncated = true;
      const note = `${JSON.stringify([Number(t.toFixed(6)), 'm', `ward: recording truncated at ${this.#maxBytes} bytes`])}\n`;
      this.#push(note, true);
      return;
    }
    this.#events++;
  }

  #push(line: string, force: boolean): boolean {
    const bytes = Buffer.from(line, 'utf8');
    if (!force && this.#bytes + bytes.length > this.#maxBytes) return false;
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
    return true;
  }
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
