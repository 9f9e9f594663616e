import http from 'node:http';
import https from 'node:https';
import {
  CLIENT_CREDENTIAL_HEADERS,
  create,
  forwardableHeaders,
  type HeaderPair,
  headersFromPairs,
  type SessionChannel,
  SessionFrameSchema,
  unexpectedFrame,
  WardError,
} from '@ward/protocol';

/** An HTTP connection as the agent knows it: where it goes and the key it adds. */
export interface HttpUpstream {
  name: string;
  /** Base URL; the client's path is appended below it. */
  url: string;
  /** The credential the agent injects. The gateway never sees it. */
  auth?: { header: string; scheme?: string; secret: string };
  timeoutMs: number;
  /** PEM CA for an https upstream with a private CA. */
  ca?: Buffer;
}

const bodyFrame = (data: Uint8Array, end = false) =>
  create(SessionFrameSchema, { frame: { case: 'body', value: { data, end } } });

/**
 * Serves the HTTP exchanges of a session: the request head and body arrive as frames, the
 * agent replaces any client credential by the upstream's own, sends the request, and streams
 * the response back frame by frame (SSE events are never held back). The response ends with a
 * body frame flagged `end`. Without `keepAlive` the agent then closes the session (one exchange,
 * as older gateways expect); with it, it waits for the next request head and leaves the closing
 * to the gateway. (Node's global agent keeps upstream connections alive between exchanges.)
 */
export function serveHttpSession(
  channel: SessionChannel,
  upstream: HttpUpstream,
  start: { keepAlive?: boolean } = {},
): void {
  const base = new URL(upstream.url);
  const client = base.protocol === 'https:' ? https : http;
  const drop = new Set([...CLIENT_CREDENTIAL_HEADERS, ...(upstream.auth ? [upstream.auth.header.toLowerCase()] : [])]);
  const keepAlive = start.keepAlive === true;
  /** The exchange in progress; undefined between exchanges. */
  let request: http.ClientRequest | undefined;
  /** Of the exchange in progress: the request body's end frame came, the response ended. */
  let bodyEnded = false;
  let responseEnded = false;
  const finishIfDone = () => {
    if (!bodyEnded || !responseEnded) return;
    request = undefined;
  };

  channel.send(
    create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'http', value: { keepAlive } } } } }),
  );
  channel.onClose(() => request?.destroy());

  const exchange = (head: { method: string; path: string; headers: HeaderPair[] }) => {
    const headers = headersFromPairs(head.headers, drop);
    if (upstream.auth) {
      headers[upstream.auth.header.toLowerCase()] = upstream.auth.scheme
        ? `${upstream.auth.scheme} ${upstream.auth.secret}`
        : upstream.auth.secret;
    }
    const req = client.request({
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port || undefined,
      method: head.method,
      path: joinPath(base.pathname, head.path),
      headers,
      timeout: upstream.timeoutMs,
      ...(upstream.ca ? { ca: upstream.ca } : {}),
    });
    // Errors of a finished exchange (a late socket error) must not end the next one.
    const current = () => request === req;
    req.on('timeout', () =>
      req.destroy(
        new WardError(
          'ERR_UPSTREAM_TIMEOUT',
          'deadline_exceeded',
          `upstream "${upstream.name}" did not answer within ${upstream.timeoutMs} ms`,
        ),
      ),
    );
    req.on('error', (err) => {
      if (current()) channel.close(upstreamError(upstream.name, err));
    });
    req.on('response', (response) => {
      channel.send(
        create(SessionFrameSchema, {
          frame: {
            case: 'httpResponseHead',
            value: {
              status: response.statusCode ?? 502,
              headers: forwardableHeaders(response.headers) as HeaderPair[],
            },
          },
        }),
      );
      const done = () => {
        if (!current()) return;
        responseEnded = true;
        if (!keepAlive) channel.close();
        else finishIfDone();
      };
      const declared = Number(response.headers['content-length'] ?? -1);
      if (declared >= 0 && declared <= channel.maxFrameBytes) {
        // A body that fits one frame goes as one frame with its end flag, once whole: half the
        // frames of a typical JSON answer. Nothing is held past the body's own last byte.
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size > declared) {
            response.destroy();
            if (current()) channel.close(resetError(upstream.name));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          if (!current()) return;
          const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
          sendBody(channel, body);
          done();
        });
      } else {
        channel.pipeFrom(response, (chunk) => bodyFrame(chunk));
        response.on('end', () => {
          if (!current()) return;
          channel.send(bodyFrame(new Uint8Array(0), true));
          done();
        });
      }
      response.on('aborted', () => {
        if (current()) channel.close(resetError(upstream.name));
      });
    });
    return req;
  };

  channel.onFrame((frame) => {
    switch (frame.frame.case) {
      case 'httpRequestHead': {
        if (request) {
          channel.close(
            new WardError(
              'ERR_TUNNEL_MALFORMED_FRAME',
              'invalid_argument',
              'a request head while an exchange is in progress',
            ),
          );
          return;
        }
        bodyEnded = false;
        responseEnded = false;
        request = exchange(frame.frame.value);
        return;
      }
      case 'body': {
        if (!request) {
          channel.close(
            new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', 'body before the request head'),
          );
          return;
        }
        const { data, end } = frame.frame.value;
        if (end) {
          // The last frame: its bytes and the end in one write (with the head, for a one-frame body).
          const n = data.byteLength;
          if (n > 0) request.end(data, () => channel.delivered(n));
          else request.end();
          bodyEnded = true;
          finishIfDone();
        } else if (data.byteLength > 0) channel.deliverTo(request, data);
        return;
      }
      default:
        channel.close(unexpectedFrame(frame, 'an HTTP session'));
    }
  });
}

/** A whole body; the last frame carries the end flag (one frame when it fits). */
function sendBody(channel: SessionChannel, payload: Uint8Array): void {
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

const resetError = (name: string) =>
  new WardError('ERR_UPSTREAM_RESET', 'unavailable', `upstream "${name}" closed the response mid-stream`);

function joinPath(basePath: string, path: string): string {
  const trimmed = basePath.endsWith('/') ? basePath.slice(0, -1) : basePath;
  return `${trimmed}${path.startsWith('/') ? path : `/${path}`}`;
}

function upstreamError(name: string, err: Error): WardError {
  if (err instanceof WardError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
    return new WardError('ERR_UPSTREAM_UNAVAILABLE', 'unavailable', `upstream "${name}" is unreachable (${code})`, {
      cause: err,
    });
  }
  return new WardError('ERR_UPSTREAM_RESET', 'unavailable', `upstream "${name}" failed: ${err.message}`, {
    cause: err,
  });
}
