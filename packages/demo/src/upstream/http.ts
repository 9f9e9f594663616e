import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** Which vendor's API a route imitates; it decides the error body shape. */
export type Flavor = 'openai' | 'anthropic';

/**
 * An error answer in the imitated vendor's own shape: OpenAI's
 * `{error:{message,type,param,code}}` or Anthropic's `{type:"error",error:{type,message}}`.
 */
export class UpstreamHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }

  body(flavor: Flavor): unknown {
    if (flavor === 'anthropic') return { type: 'error', error: { type: this.type, message: this.message } };
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 for a bad or missing request field (`invalid_request_error` in both vendors' vocabularies). */
export function badRequest(message: string, param: string | null = null): UpstreamHttpError {
  return new UpstreamHttpError(400, 'invalid_request_error', message, null, param);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
    ...headers,
  });
  res.end(payload);
}

/** The 8 MiB cap on request bodies, checked against Content-Length and again while reading. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const tooLarge = () =>
    new UpstreamHttpError(413, 'invalid_request_error', `request body exceeds ${limit} bytes`, 'request_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Server-sent events, each written and flushed on its own (Nagle is off on the socket), with
 * an optional pause before every event after the first: the streaming tests count arrivals.
 */
export class SseWriter {
  private sent = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly delayMs: number,
    private readonly signal: AbortSignal,
  ) {
    res.socket?.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
  }

  /** Writes one event; resolves once the client has room for more (backpressure) or aborted. */
  async send(data: unknown, event?: string): Promise<void> {
    if (this.sent > 0 && this.delayMs > 0) await sleep(this.delayMs, undefined, { signal: this.signal });
    this.signal.throwIfAborted();
    this.sent++;
    const text = `${event === undefined ? '' : `event: ${event}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    if (!this.res.write(text)) await waitForDrain(this.res, this.signal);
  }

  end(): void {
    this.res.end();
  }
}

function waitForDrain(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(signal.reason);
      else resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

/** Text of an OpenAI/Anthropic content field: a string, or an array of parts with `text`. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      if (typeof part === 'string') return part;
      if (part !== null && typeof part === 'object') {
        const p = part as Record<string, unknown>;
        if (typeof p.text === 'string') return p.text;
        if (typeof p.content === 'string') return p.content;
      }
      return '';
    })
    .join('');
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
