import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CLIENT_CREDENTIAL_HEADERS,
  create,
  forwardableHeaders,
  headersFromPairs,
  SessionFrameSchema,
  unexpectedFrame,
  WardError,
} from '@ward/protocol';
import type { Identity } from '../identity/index.js';
import type { Recorder } from '../recording/index.js';
import type { TunnelServer } from '../tunnel/index.js';
import { BodyCapture } from './body-capture.js';
import { sendJsonError } from './json-error.js';

export interface HttpProxyContext {
  tunnel: TunnelServer;
  recorder: Recorder;
  maxRequestBodyBytes: number;
  /** How much of each body the recording keeps. */
  recordBodyBytes: number;
}

export interface HttpExchangeTarget {
  connection: string;
  /** Path below the connection, with the query string. */
  path: string;
  identity: Identity;
  source: string;
}

const bodyFrame = (data: Uint8Array, end = false) =>
  create(SessionFrameSchema, { frame: { case: 'body', value: { data, end } } });

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

/**
 * Carries one HTTP exchange through the tunnel: the caller is already authenticated; the
 * session is recorded before the first byte leaves, the request streams to the agent (which
 * adds the upstream's key), and the response streams back chunk by chunk.
 */
export async function proxyHttpExchange(
  ctx: HttpProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  target: HttpExchangeTarget,
): Promise<void> {
  const sessionId = `ses_${randomUUID()}`;
  const started = performance.now();
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > ctx.maxRequestBodyBytes) {
    sendJsonError(res, tooLarge(ctx.maxRequestBodyBytes));
    return;
  }
  await ctx.recorder.sessionStarted({
    id: sessionId,
    connection: target.connection,
    protocol: 'http',
    identity: target.identity,
    source: target.source,
  });

  const clientGone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) clientGone.abort();
  });

  const requestBody = new BodyCapture(ctx.recordBodyBytes);
  const responseBody = new BodyCapture(ctx.recordBodyBytes);
  let status = 0;
  let contentType: string | null = null;
  let error: WardError | undefined;
  try {
    const { channel } = await ctx.tunnel.openSession(
      {
        sessionId,
        connection: target.connection,
        identity: target.identity.subject,
        target: { case: 'http', value: {} },
      },
      clientGone.signal,
    );
    clientGone.signal.addEventListener('abort', () =>
      channel.close(new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection')),
    );
    const closed = new Promise<WardError | undefined>((resolve) => channel.onClose(resolve));
    channel.onFrame((frame) => {
      switch (frame.frame.case) {
        case 'httpResponseHead':
          status = frame.frame.value.status;
          contentType = frame.frame.value.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? null;
          res.writeHead(status, headersFromPairs(frame.frame.value.headers));
          // SSE and chunked answers must reach the client event by event.
          res.flushHeaders();
          return;
        case 'body': {
          const { data, end } = frame.frame.value;
          if (data.byteLength > 0) {
            responseBody.add(data);
            channel.deliverTo(res, data);
          }
          if (end) res.end();
          return;
        }
        default:
          channel.close(unexpectedFrame(frame, 'an HTTP session'));
      }
    });
    channel.send(
      create(SessionFrameSchema, {
        frame: {
          case: 'httpRequestHead',
          value: {
            method: req.method ?? 'GET',
            path: target.path,
            headers: forwardableHeaders(req.headers, CLIENT_CREDENTIAL_HEADERS),
          },
        },
      }),
    );
    channel.pipeFrom(
      req,
      (chunk) => bodyFrame(chunk),
      (chunk) => {
        requestBody.add(chunk);
        if (requestBody.total > ctx.maxRequestBodyBytes) throw tooLarge(ctx.maxRequestBodyBytes);
      },
    );
    req.on('end', () => channel.send(bodyFrame(new Uint8Array(0), true)));
    error = await closed;
  } catch (err) {
    error = err instanceof WardError ? err : new WardError('ERR_INTERNAL', 'internal', String(err), { cause: err });
  }

  if (error) {
    if (!res.headersSent) {
      status = httpStatusFor(error);
      sendJsonError(res, new WardError(error.code, error.kind, error.message, { httpStatus: status }));
    } else res.destroy(); // mid-stream: the client sees the cut, never a silently short body
  } else if (!res.writableEnded) res.end();

  await ctx.recorder.record(sessionId, 'http.exchange', {
    identity: target.identity,
    source: target.source,
    connection: target.connection,
    decision: 'allow',
    rule: 'auth.token',
    data: {
      method: req.method,
      path: redactPath(target.path),
      status,
      latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
      requestBytes: requestBody.total,
      responseBytes: responseBody.total,
      requestBody: requestBody.total > 0 ? ctx.recorder.putBlob(requestBody.bytes()) : null,
      responseBody: responseBody.total > 0 ? ctx.recorder.putBlob(responseBody.bytes()) : null,
      bodiesTruncated: requestBody.truncated || responseBody.truncated,
      contentType,
      ...(error ? { errorCode: error.code } : {}),
    },
  });
  await ctx.recorder.sessionEnded(sessionId, { status: error ? 'error' : 'ok', error });
}

function tooLarge(limit: number): WardError {
  return new WardError('ERR_HTTP_BODY_TOO_LARGE', 'resource_exhausted', `request body exceeds ${limit} bytes`, {
    httpStatus: 413,
  });
}
