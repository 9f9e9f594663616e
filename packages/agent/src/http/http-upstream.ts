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
 * Serves one HTTP exchange of a session: the request head and body arrive as frames, the agent
 * replaces any client credential by the upstream's own, sends the request, and streams the
 * response back frame by frame (SSE events are never held back).
 */
export function serveHttpSession(channel: SessionChannel, upstream: HttpUpstream): void {
  const base = new URL(upstream.url);
  const client = base.protocol === 'https:' ? https : http;
  const drop = new Set([...CLIENT_CREDENTIAL_HEADERS, ...(upstream.auth ? [upstream.auth.header.toLowerCase()] : [])]);
  let request: http.ClientRequest | undefined;

  channel.send(
    create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'http', value: {} } } } }),
  );
  channel.onClose(() => request?.destroy());

  channel.onFrame((frame) => {
    switch (frame.frame.case) {
      case 'httpRequestHead': {
        if (request) {
          channel.close(
            new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', 'a second request head in one session'),
          );
          return;
        }
        const head = frame.frame.value;
        const headers = headersFromPairs(head.headers, drop);
        if (upstream.auth) {
          headers[upstream.auth.header.toLowerCase()] = upstream.auth.scheme
            ? `${upstream.auth.scheme} ${upstream.auth.secret}`
            : upstream.auth.secret;
        }
        const path = joinPath(base.pathname, head.path);
        request = client.request({
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port || undefined,
          method: head.method,
          path,
          headers,
          timeout: upstream.timeoutMs,
          ...(upstream.ca ? { ca: upstream.ca } : {}),
        });
        request.on('timeout', () =>
          request?.destroy(
            new WardError(
              'ERR_UPSTREAM_TIMEOUT',
              'deadline_exceeded',
              `upstream "${upstream.name}" did not answer within ${upstream.timeoutMs} ms`,
            ),
          ),
        );
        request.on('error', (err) => channel.close(upstreamError(upstream.name, err)));
        request.on('response', (response) => {
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
          channel.pipeFrom(response, (chunk) => bodyFrame(chunk));
          response.on('end', () => {
            channel.send(bodyFrame(new Uint8Array(0), true));
            channel.close();
          });
          response.on('aborted', () =>
            channel.close(
              new WardError(
                'ERR_UPSTREAM_RESET',
                'unavailable',
                `upstream "${upstream.name}" closed the response mid-stream`,
              ),
            ),
          );
        });
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
        if (data.byteLength > 0) channel.deliverTo(request, data);
        if (end) request.end();
        return;
      }
      default:
        channel.close(unexpectedFrame(frame, 'an HTTP session'));
    }
  });
}

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
