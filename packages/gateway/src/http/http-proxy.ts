import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CLIENT_CREDENTIAL_HEADERS,
  create,
  forwardableHeaders,
  type SessionChannel,
  SessionFrameSchema,
  toWardError,
  unexpectedFrame,
  WardError,
} from '@ward/protocol';
import type { Identity } from '../identity/index.js';
import { classifyLlmRequest, inspectLlmRequest, type LlmApi, type LlmRequestFacts } from '../llm/llm-endpoint.js';
import { chargedTokens, type LlmResult } from '../llm/llm-result.js';
import type { ConnectionLimits, RateLimiter } from '../llm/rate-limiter.js';
import { identityLabel, type Recorder } from '../recording/index.js';
import type { SessionRegistry } from '../sessions/index.js';
import type { StagedBlob } from '../store/index.js';
import type { TunnelServer } from '../tunnel/index.js';
import { BodyCapture } from './body-capture.js';
import type { ExchangeInfo, HttpExchangeHooks } from './exchange-hooks.js';
import { HttpSession, OpenFailure, reusableSession } from './http-session.js';
import { sendJsonError } from './json-error.js';
import { ResponseRelay } from './response-relay.js';

/** Defaults for the optional limits of `HttpProxyContext`. */
export const HTTP_PROXY_DEFAULTS = Object.freeze({
  maxResponseBodyBytes: 64 * 1024 * 1024,
  maxSseEventBytes: 1024 * 1024,
  maxAssembledChars: 256 * 1024,
  /** How long a client connection's idle session stays open for its next request. */
  sessionIdleMs: 30_000,
});

export interface HttpProxyContext {
  tunnel: TunnelServer;
  recorder: Recorder;
  maxRequestBodyBytes: number;
  /** How much of each body the recording keeps. */
  recordBodyBytes: number;
  /** Response body cap when the connection sets none (default 64 MiB). */
  maxResponseBodyBytes?: number | undefined;
  /** Largest SSE event parsed or held (default 1 MiB). */
  maxSseEventBytes?: number | undefined;
  /** Where masking and policy plug in; none: bytes pass through unchanged. */
  hooks?: HttpExchangeHooks | undefined;
  /** Shared by all exchanges of a gateway; needed when a connection sets rate limits. */
  rateLimiter?: RateLimiter | undefined;
  /** How long a client connection's idle session waits for its next request (default 30 s). */
  sessionIdleMs?: number | undefined;
  /** Open sessions register here, so an expired or revoked grant ends them too. */
  sessions?: SessionRegistry | undefined;
}

/** Limits of one HTTP connection (`connections[].limits`). */
export interface HttpConnectionLimits extends ConnectionLimits {
  /** Response body cap in bytes. */
  maxResponseBody?: number | undefined;
}

export interface HttpExchangeTarget {
  connection: string;
  /** Path below the connection, with the query string. */
  path: string;
  identity: Identity;
  source: string;
  /** The LLM API the connection speaks; `none` (the default) proxies bytes only. */
  llm?: LlmApi | undefined;
  limits?: HttpConnectionLimits | undefined;
  /** The access rule that allowed the exchange (recorded on `http.exchange`). */
  rule?: string | undefined;
}

const bodyFrame = (data: Uint8Array, end = false) =>
  create(SessionFrameSchema, { frame: { case: 'body', value: { data, end } } });

/**
 * Sends a whole body: the last frame carries the end flag, so a body up to one frame is one
 * frame. Counted against the session's credit like any data (a reused session may have less
 * than a full window).
 */
export function sendBody(channel: SessionChannel, payload: Uint8Array): void {
  if (payload.byteLength === 0) {
    channel.send(bodyFrame(payload, true));
    return;
  }
  const last = payload.byteOffset + payload.byteLength;
  channel
    .sendData(payload, (chunk) =>
      bodyFrame(chunk, chunk.buffer === payload.buffer && chunk.byteOffset + chunk.byteLength === last),
    )
    .catch(() => {});
}

/** Upstream failures are the upstream's fault (502/504); an absent agent is ours (503). */
function httpStatusFor(err: WardError): number {
  if (err.code === 'ERR_UPSTREAM_TIMEOUT') return 504;
  if (err.code.startsWith('ERR_UPSTREAM_')) return 502;
  return err.httpStatus;
}

const SENSITIVE_QUERY = /(key|token|secret|password|signature|sig|auth)/i;

/** The path as recorded: query values that look like credentials are replaced. */
export function redactPath(path: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const params = new URLSearchParams(path.slice(q + 1));
  for (const name of [...params.keys()]) if (SENSITIVE_QUERY.test(name)) params.set(name, '[redacted]');
  return `${path.slice(0, q)}?${params.toString()}`;
}

const NO_FACTS: LlmRequestFacts = { model: undefined, stream: false, embeddingInputs: 0 };

const hasRateLimits = (l: ConnectionLimits | undefined): l is ConnectionLimits =>
  !!l &&
  (l.requestsPerMinute !== undefined || l.tokensPerMinute !== undefined || l.embeddingInputsPerMinute !== undefined);

/**
 * Carries one HTTP exchange through the tunnel: the caller is already authenticated. Rate
 * limits are checked first; the exchange runs in its client connection's session (see
 * HttpSession), recorded before the session's first byte leaves; the request
 * goes to the agent (which adds the upstream's key), whole and through the `requestBody` hook
 * for LLM connections, streamed otherwise; the response streams back chunk by chunk (see
 * ResponseRelay). The exchange record holds model, usage, latency, time to first byte and the
 * reassembled answer for LLM connections.
 */
export async function proxyHttpExchange(
  ctx: HttpProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: HttpExchangeTarget,
): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const llm = target.llm ?? 'none';
  const endpoint = classifyLlmRequest(llm, method, target.path);
  const hooks = ctx.hooks ?? {};
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > ctx.maxRequestBodyBytes) {
    req.resume();
    sendJsonError(res, tooLarge(ctx.maxRequestBodyBytes), { connection: 'close' });
    return;
  }

  // LLM requests are read whole first: the limits need the embedding count, and masking needs
  // the whole JSON before the upstream sees any of it.
  const buffered = llm !== 'none' || hooks.requestBody !== undefined;
  let body: Buffer | undefined;
  let facts = NO_FACTS;
  if (buffered) {
    try {
      body = await readBody(req, ctx.maxRequestBodyBytes);
    } catch (err) {
      req.resume();
      sendJsonError(res, err, { connection: 'close' });
      return;
    }
    facts = inspectLlmRequest(endpoint, body);
  }

  let admission: ReturnType<RateLimiter['admit']> | undefined;
  if (hasRateLimits(target.limits) && ctx.rateLimiter) {
    admission = ctx.rateLimiter.admit(target.connection, identityLabel(target.identity) ?? '', target.limits, {
      embeddingInputs: facts.embeddingInputs,
    });
    if (!admission.ok) {
      const { limit, limitValue, retryAfterSeconds } = admission;
      const error = new WardError(
        'ERR_RATE_LIMITED',
        'resource_exhausted',
        `rate limit ${limit} (${limitValue}) reached for ${target.identity.subject} on "${target.connection}"; retry in ${retryAfterSeconds} s`,
        { httpStatus: 429 },
      );
      req.resume();
      await ctx.recorder.record(undefined, 'http.rate_limited', {
        identity: target.identity,
        source: target.source,
        connection: target.connection,
        decision: 'deny',
        rule: `rate-limit:${limit}`,
        data: {
          code: error.code,
          method,
          path: redactPath(target.path),
          limit,
          limitValue,
          retryAfterSeconds,
          ...(facts.model !== undefined ? { model: facts.model } : {}),
        },
      });
      sendJsonError(res, error, { 'retry-after': String(retryAfterSeconds) });
      return;
    }
  }

  const socket = req.socket;
  // The client leaving before its answer is whole ends the session (an abort before the session
  // is open cancels the opening). No AbortController unless a session is opened: this runs per
  // exchange.
  let opening: AbortController | undefined;
  let running: SessionChannel | undefined;
  let gone = false;
  res.on('close', () => {
    if (res.writableFinished) return;
    gone = true;
    opening?.abort();
    running?.close(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection'));
  });
  const exchange: ExchangeInfo = {
    sessionId: '',
    connection: target.connection,
    identity: target.identity,
    source: target.source,
    method,
    path: target.path,
    llm,
    endpoint,
  };
  const requestBody = new BodyCapture(ctx.recordBodyBytes);
  const relay = new ResponseRelay({
    res,
    hooks,
    exchange,
    maxResponseBytes:
      target.limits?.maxResponseBody ?? ctx.maxResponseBodyBytes ?? HTTP_PROXY_DEFAULTS.maxResponseBodyBytes,
    recordBodyBytes: ctx.recordBodyBytes,
    maxEventBytes: ctx.maxSseEventBytes ?? HTTP_PROXY_DEFAULTS.maxSseEventBytes,
    maxAssembledChars: HTTP_PROXY_DEFAULTS.maxAssembledChars,
  });
  let error: WardError | undefined;
  /** Set once a session start is recorded: the exchange is then recorded in it. */
  let sessionId: string | undefined;
  let session = reusableSession(socket, target.connection, target.identity);
  /** The exchange ended cleanly (response end frame, request body sent whole): the session may carry the next. */
  let reusable = false;
  /** Set when ward ended a streamed answer with an SSE error event: end the body, do not cut it. */
  let endedWithEvent = false;
  try {
    if (session) session.take();
    else {
      opening = new AbortController();
      try {
        session = await HttpSession.open(
          {
            tunnel: ctx.tunnel,
            recorder: ctx.recorder,
            idleMs: ctx.sessionIdleMs ?? HTTP_PROXY_DEFAULTS.sessionIdleMs,
            registry: ctx.sessions,
          },
          target,
          opening.signal,
        );
      } catch (err) {
        if (!(err instanceof OpenFailure)) throw err;
        sessionId = err.sessionId;
        throw err.error;
      }
    }
    sessionId = session.id;
    exchange.sessionId = session.id;
    const channel = session.channel;
    running = channel;
    if (gone) channel.close(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection'));
    let finished: Promise<void> | undefined;
    let responseEnded = false;
    let requestEnded = false;
    let endSeen: () => void = () => {};
    const open = session;
    const done = new Promise<WardError | undefined>((resolve) => {
      endSeen = () => resolve(undefined);
      open.watchClose(resolve);
    });
    // Ended by policy (grant expired or revoked, shutdown) while this exchange runs: before the
    // head the client gets the error as JSON (below); mid-stream (SSE), one error event the SDK
    // raises as an APIError with the code, then the end of the body.
    open.onTerminate((reason) => {
      if (res.headersSent && !res.writableEnded && /event-stream/i.test(relay.contentType ?? '')) {
        res.write(`\n\nevent: error\ndata: ${JSON.stringify(reason.toJSON())}\n\n`);
        endedWithEvent = true;
      }
    });
    const headers = forwardableHeaders(req.headers, CLIENT_CREDENTIAL_HEADERS);
    if (buffered) {
      let out = body ?? Buffer.alloc(0);
      if (hooks.requestBody) out = await hooks.requestBody(out, exchange);
      if (llm !== 'none') {
        // ward inspects the answer, so it asks for it uncompressed.
        const at = headers.findIndex((h) => h.name === 'accept-encoding');
        if (at >= 0) headers.splice(at, 1);
        headers.push({ name: 'accept-encoding', value: 'identity' });
      }
      const length = headers.find((h) => h.name === 'content-length');
      if (length) length.value = String(out.byteLength);
      requestBody.add(out);
      channel.send(headFrame(method, target.path, headers));
      sendBody(channel, out);
      requestEnded = true;
    } else {
      // A streamed body waits for the agent's ready: a refusal then ends nothing but the session,
      // and the client, whose body is still arriving, gets the error as JSON.
      await session.ready;
      channel.send(headFrame(method, target.path, headers));
      channel.pipeFrom(
        req,
        (chunk) => bodyFrame(chunk),
        (chunk) => {
          requestBody.add(chunk);
          if (requestBody.total > ctx.maxRequestBodyBytes) throw tooLarge(ctx.maxRequestBodyBytes);
        },
      );
      req.on('end', () => {
        channel.send(bodyFrame(new Uint8Array(0), true));
        requestEnded = true;
      });
    }
    // A new session's request went right behind its start; its answer is read once the
    // agent's ready came (a refusal closes the channel: the client gets the error as JSON).
    await session.ready;
    channel.onFrame((frame) => {
      try {
        switch (frame.frame.case) {
          case 'httpResponseHead':
            relay.head(frame.frame.value.status, frame.frame.value.headers);
            return;
          case 'body': {
            const { data, end } = frame.frame.value;
            if (data.byteLength > 0) relay.data(data, (n) => channel.delivered(n));
            if (end) {
              responseEnded = true;
              finished = relay.end();
              finished.then(endSeen, (err) => channel.close(toWardError(err)));
            }
            return;
          }
          default:
            channel.close(unexpectedFrame(frame, 'an HTTP session'));
        }
      } catch (err) {
        channel.close(toWardError(err));
      }
    });

    error = await done;
    running = undefined;
    if (!error && finished) await finished;
    reusable = !error && responseEnded && requestEnded && !channel.closed;
  } catch (err) {
    error = toWardError(err);
  }

  if (error) {
    if (!res.headersSent) {
      const status = httpStatusFor(error);
      relay.status = status;
      sendJsonError(res, new WardError(error.code, error.kind, error.message, { httpStatus: status }));
    } else if (endedWithEvent) res.end();
    else res.destroy(); // mid-stream: the client sees the cut, never a silently short body
  } else if (!res.writableEnded) res.end();

  const result = relay.llmResult();
  if (admission?.ok) admission.charge(chargedTokens(result?.usage));
  if (sessionId === undefined) return;
  const responseBody = relay.capture;
  // The bodies are written in the record's own transaction (one per batch, not one each).
  const blobs: StagedBlob[] = [];
  const stage = (bytes: Uint8Array): string => {
    const blob = ctx.recorder.stageBlob(bytes);
    blobs.push(blob);
    return blob.sha256;
  };
  // Issued before the session's end, so the log reads start, exchanges, end.
  const recorded = ctx.recorder.record(sessionId, 'http.exchange', {
    blobs,
    identity: target.identity,
    source: target.source,
    connection: target.connection,
    decision: 'allow',
    rule: target.rule ?? 'auth.token',
    data: {
      method,
      path: redactPath(target.path),
      status: relay.status,
      latencyMs: ms(performance.now() - started),
      ttfbMs: relay.firstByteAt === undefined ? null : ms(relay.firstByteAt - started),
      requestBytes: requestBody.total,
      responseBytes: responseBody.total,
      requestBody: requestBody.total > 0 ? stage(requestBody.bytes()) : null,
      responseBody: responseBody.total > 0 ? stage(responseBody.bytes()) : null,
      bodiesTruncated: requestBody.truncated || responseBody.truncated,
      contentType: relay.contentType,
      ...(llm !== 'none' ? llmFields(stage, endpoint, facts, result, relay.sseEventsSkipped) : {}),
      ...(error ? { errorCode: error.code } : {}),
    },
  });
  if (session) session.release(socket, { error, reusable });
  else ctx.recorder.sessionEnded(sessionId, { status: 'error', error }).catch(() => {});
  await recorded;
}

/**
 * What an LLM exchange adds to its record. The answer's text and tool-call arguments go to a
 * blob (`output`): they are the model's words, may be long, and may hold anything.
 */
function llmFields(
  stage: (bytes: Uint8Array) => string,
  endpoint: string,
  facts: LlmRequestFacts,
  result: LlmResult | undefined,
  skipped: number,
): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    endpoint,
    model: result?.model ?? facts.model ?? null,
    stream: facts.stream,
    usage: result?.usage ?? null,
  };
  if (facts.embeddingInputs > 0) fields['embeddingInputs'] = facts.embeddingInputs;
  if (result && (result.text.length > 0 || result.toolCalls.length > 0)) {
    fields['output'] = stage(Buffer.from(JSON.stringify({ text: result.text, toolCalls: result.toolCalls }), 'utf8'));
    fields['outputChars'] = result.text.length;
    fields['outputTruncated'] = result.textTruncated;
    fields['toolCalls'] = result.toolCalls.map((t) => t.name);
  }
  if (result?.finishReason !== undefined) fields['finishReason'] = result.finishReason;
  if (result && result.events > 0) fields['sseEvents'] = result.events;
  if (skipped > 0) fields['sseEventsTooLarge'] = skipped;
  return fields;
}

function headFrame(method: string, path: string, headers: ReturnType<typeof forwardableHeaders>) {
  return create(SessionFrameSchema, { frame: { case: 'httpRequestHead', value: { method, path, headers } } });
}

const ms = (v: number) => Math.round(v * 1000) / 1000;

function tooLarge(limit: number): WardError {
  return new WardError('ERR_HTTP_BODY_TOO_LARGE', 'resource_exhausted', `request body exceeds ${limit} bytes`, {
    httpStatus: 413,
  });
}

/** Reads a request body whole, refusing it (ERR_HTTP_BODY_TOO_LARGE) past `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection', { cause: err }));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}
