import type { Identity } from '../identity/index.js';
import type { LlmApi, LlmEndpoint } from '../llm/llm-endpoint.js';
import type { SseEvent } from '../llm/sse-parser.js';

/** The exchange a hook is called for. */
export interface ExchangeInfo {
  sessionId: string;
  connection: string;
  identity: Identity;
  source: string;
  method: string;
  /** Path below the connection, query included (not redacted: hooks run in memory only). */
  path: string;
  llm: LlmApi;
  endpoint: LlmEndpoint;
}

export interface ResponseInfo {
  status: number;
  contentType: string | null;
}

/**
 * Where masking and policy plug into an HTTP exchange. Every hook is optional; with none set
 * the gateway streams bytes through untouched (and, for LLM connections, parses SSE on the
 * side for the recording). Each hook's output is what the other side sees and what is
 * recorded. A hook refuses by throwing a WardError: before the response started the client
 * gets it as JSON with its status; mid-stream the stream is cut.
 *
 * @example
 * const upper: HttpExchangeHooks = {
 *   sseEvent: (e) => ({ ...e, data: e.data.replaceAll('secret', '[masked]') }),
 * };
 */
export interface HttpExchangeHooks {
  /**
   * The whole request body before the upstream sees any of it. Setting this hook (or the
   * connection being an LLM one) makes the gateway read the body first, up to the request cap.
   * Return the body to send (the same Buffer for no change).
   */
  requestBody?(body: Buffer, exchange: ExchangeInfo): Buffer | Promise<Buffer>;
  /**
   * A non-SSE response body, whole, before the client sees it: the response head waits for it
   * (bounded by the response cap). The Content-Length sent is that of the returned body.
   */
  responseBody?(body: Buffer, exchange: ExchangeInfo, response: ResponseInfo): Buffer | Promise<Buffer>;
  /**
   * Each SSE event, in order, before the client sees it. Return it unchanged (its raw bytes
   * are forwarded), a rewritten event, several (e.g. text held back from earlier events), or
   * null to drop it. Synchronous on purpose: the stream is never held behind an await, and the
   * gateway holds at most one incomplete event.
   */
  sseEvent?(event: SseEvent, exchange: ExchangeInfo): SseEvent | readonly SseEvent[] | null;
  /** The SSE stream ended: events still to send (text a masker held back), if any. */
  sseEnd?(exchange: ExchangeInfo): readonly SseEvent[];
}
