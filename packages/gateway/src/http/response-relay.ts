import type { ServerResponse } from 'node:http';
import { type HeaderPair, headersFromPairs, WardError } from '@ward/protocol';
import { LlmAssembler, type LlmResult, usageFromTail } from '../llm/llm-result.js';
import { formatSseEvent, isEmptyEvent, type SseEvent, SseParser } from '../llm/sse-parser.js';
import { BodyCapture } from './body-capture.js';
import type { ExchangeInfo, HttpExchangeHooks } from './exchange-hooks.js';

export interface ResponseRelayOptions {
  res: ServerResponse;
  hooks: HttpExchangeHooks;
  exchange: ExchangeInfo;
  /** Response body cap: 502 before the head is sent, a cut stream after. */
  maxResponseBytes: number;
  /** How much of the body the recording keeps. */
  recordBodyBytes: number;
  /** Largest SSE event held whole (rewriting) or parsed (recording). */
  maxEventBytes: number;
  /** Cap on the reassembled text and tool-call arguments kept for the recording. */
  maxAssembledChars: number;
  /** Called once the first response body byte is handed to the client. */
  now?: () => number;
}

type Mode = 'pass' | 'sse-rewrite' | 'buffer';

const TAIL_BYTES = 4096;

export function responseTooLarge(limit: number): WardError {
  return new WardError(
    'ERR_HTTP_RESPONSE_TOO_LARGE',
    'resource_exhausted',
    `the upstream's response body exceeds ${limit} bytes`,
    { httpStatus: 502 },
  );
}

/**
 * The response half of an exchange: takes the upstream's head and body chunks (as the tunnel
 * delivers them) and writes them to the client, through the hooks when set, while keeping what
 * the recording needs (capped body, reassembled LLM answer, time to first byte).
 *
 * Memory stays bounded in every mode: pass-through holds nothing (credit returns when the
 * socket took the bytes); SSE rewriting holds at most one incomplete event; buffering (only with
 * a `responseBody` hook) holds at most the response cap.
 */
export class ResponseRelay {
  readonly #o: ResponseRelayOptions;
  readonly #res: ServerResponse;
  readonly #capture: BodyCapture;
  readonly #now: () => number;
  #mode: Mode = 'pass';
  #parser: SseParser | undefined;
  #assembler: LlmAssembler | undefined;
  #held: Buffer[] = [];
  #heldHeaders: Record<string, string | string[]> = {};
  #total = 0;
  #inspectJson = false;
  status = 0;
  contentType: string | null = null;
  /** `performance.now()` when the first body byte went to the client. */
  firstByteAt: number | undefined;
  ended = false;

  constructor(options: ResponseRelayOptions) {
    this.#o = options;
    this.#res = options.res;
    this.#now = options.now ?? (() => performance.now());
    const llm = options.exchange.llm !== 'none';
    this.#capture = new BodyCapture(options.recordBodyBytes, llm ? TAIL_BYTES : 0);
  }

  get responseBytes(): number {
    return this.#capture.total;
  }

  get capture(): BodyCapture {
    return this.#capture;
  }

  get sseEventsSkipped(): number {
    return this.#parser?.skipped ?? 0;
  }

  /** The upstream's status and headers. Throws ERR_HTTP_RESPONSE_TOO_LARGE on a declared oversize body. */
  head(status: number, pairs: readonly HeaderPair[]): void {
    const headers = headersFromPairs(pairs);
    const ct = headers['content-type'];
    this.status = status;
    this.contentType = (Array.isArray(ct) ? ct[0] : ct) ?? null;
    const declared = Number(headers['content-length'] ?? -1);
    if (declared > this.#o.maxResponseBytes) throw responseTooLarge(this.#o.maxResponseBytes);
    const encoded = headers['content-encoding'] !== undefined && headers['content-encoding'] !== 'identity';
    const sse = !encoded && (this.contentType ?? '').toLowerCase().startsWith('text/event-stream');
    const hooks = this.#o.hooks;
    const { exchange } = this.#o;
    const llm = exchange.llm !== 'none' && exchange.endpoint !== 'other';
    if (sse && hooks.sseEvent) this.#mode = 'sse-rewrite';
    else if (!sse && hooks.responseBody) this.#mode = 'buffer';
    if (llm && status < 300 && !encoded) {
      this.#assembler = new LlmAssembler(exchange.endpoint, this.#o.maxAssembledChars);
      this.#inspectJson = !sse && (this.contentType ?? '').toLowerCase().includes('json');
    }
    if (sse && (this.#mode === 'sse-rewrite' || this.#assembler)) {
      this.#parser = new SseParser({
        maxEventBytes: this.#o.maxEventBytes,
        onOversize: this.#mode === 'sse-rewrite' ? 'throw' : 'skip',
      });
    }
    if (this.#mode === 'buffer') {
      this.#heldHeaders = headers;
      return;
    }
    // A hook may change the body's length: let node frame it (chunked) instead.
    if (this.#mode === 'sse-rewrite') delete headers['content-length'];
    this.#res.writeHead(status, headers);
    // SSE and chunked answers must reach the client event by event; a body of known length
    // takes the head along with its first bytes (one socket write instead of two).
    if (sse || headers['content-length'] === undefined) this.#res.flushHeaders();
  }

  /**
   * One body chunk. `credit(n)` is called once `n` bytes no longer occupy the gateway (written
   * to the client socket, or held within a bound), which lets the agent send more.
   */
  data(chunk: Uint8Array, credit: (n: number) => void): void {
    const n = chunk.byteLength;
    this.#total += n;
    if (this.#total > this.#o.maxResponseBytes) throw responseTooLarge(this.#o.maxResponseBytes);
    switch (this.#mode) {
      case 'pass': {
        this.#write(chunk, () => credit(n));
        if (this.#parser) for (const e of this.#parser.push(chunk)) this.#assembler?.event(e);
        return;
      }
      case 'sse-rewrite': {
        const events = (this.#parser as SseParser).push(chunk);
        let last: Buffer | undefined;
        for (const e of events) {
          for (const out of this.#rewrite(e)) {
            if (last) this.#write(last);
            last = out;
          }
        }
        // The credit comes back with the last write of this chunk: a slow client slows the agent.
        if (last) this.#write(last, () => credit(n));
        else credit(n); // held in the parser: at most one event, within maxEventBytes
        return;
      }
      case 'buffer':
        this.#held.push(Buffer.from(chunk));
        credit(n); // held within the response cap
        return;
    }
  }

  /** The upstream's body ended. Resolves once the client has the whole response. */
  async end(): Promise<void> {
    if (this.#mode === 'sse-rewrite') {
      for (const e of this.#o.hooks.sseEnd?.(this.#o.exchange) ?? []) {
        const out = formatSseEvent(e);
        this.#assembler?.event(e);
        this.#write(out);
      }
    } else if (this.#mode === 'buffer') {
      const hook = this.#o.hooks.responseBody;
      let body: Buffer = Buffer.concat(this.#held, this.#total);
      this.#held = [];
      if (hook) {
        body = await hook(body, this.#o.exchange, { status: this.status, contentType: this.contentType });
      }
      const headers = { ...this.#heldHeaders, 'content-length': String(body.byteLength) };
      if (this.#res.destroyed) return;
      this.#res.writeHead(this.status, headers);
      if (body.byteLength > 0) this.#write(body);
    }
    this.ended = true;
    this.#res.end();
  }

  /** The LLM answer as recorded; undefined for non-LLM exchanges and error answers. */
  llmResult(): LlmResult | undefined {
    const a = this.#assembler;
    if (!a) return undefined;
    if (this.#inspectJson && this.ended) {
      if (!this.#capture.truncated) {
        try {
          a.body(JSON.parse(this.#capture.bytes().toString('utf8')));
        } catch {
          // Not JSON after all: proxied and recorded as bytes.
        }
      } else {
        const usage = usageFromTail(this.#capture.tail().toString('utf8'));
        if (usage) a.usage(usage);
      }
    }
    return a.result();
  }

  #rewrite(e: SseEvent): Buffer[] {
    if (isEmptyEvent(e)) return [e.raw];
    const hook = this.#o.hooks.sseEvent;
    const result = hook ? hook(e, this.#o.exchange) : e;
    if (result === null) return [];
    const list = Array.isArray(result) ? (result as readonly SseEvent[]) : [result as SseEvent];
    return list.map((out) => {
      this.#assembler?.event(out);
      return out === e ? e.raw : formatSseEvent(out);
    });
  }

  #write(bytes: Uint8Array, done?: () => void): void {
    if (this.firstByteAt === undefined && bytes.byteLength > 0) this.firstByteAt = this.#now();
    this.#capture.add(bytes);
    if (done) this.#res.write(bytes, done);
    else this.#res.write(bytes);
  }
}
