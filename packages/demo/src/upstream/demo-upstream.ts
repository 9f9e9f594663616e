import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WardError } from '@ward/protocol';
import { messages } from './anthropic.js';
import { type Flavor, isRecord, readBody, sendJson, UpstreamHttpError } from './http.js';
import { chatCompletions, embeddings, getModel, listModels, responses } from './openai.js';
import type { RouteContext } from './route-context.js';

export interface DemoUpstreamOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** The key clients must send: `Authorization: Bearer <key>` (OpenAI routes) or `x-api-key` (Anthropic). */
  apiKey: string;
  /** Delay before each answer starts, in ms. Default 0. */
  latencyMs?: number;
  /** Delay between streamed events, in ms. Default 0. */
  tokenDelayMs?: number;
}

export interface DemoUpstream {
  /** `http://HOST:PORT`, without `/v1`. */
  url: string;
  port: number;
  close(): Promise<void>;
  /** Live counters; `requests` counts every request received, refused ones included. */
  stats: { requests: number };
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  flavor: Flavor;
  handler: (ctx: RouteContext) => Promise<void>;
}

const ROUTES: readonly Route[] = [
  { method: 'POST', pattern: /^\/v1\/chat\/completions$/, flavor: 'openai', handler: chatCompletions },
  { method: 'POST', pattern: /^\/v1\/embeddings$/, flavor: 'openai', handler: embeddings },
  { method: 'POST', pattern: /^\/v1\/responses$/, flavor: 'openai', handler: responses },
  { method: 'GET', pattern: /^\/v1\/models$/, flavor: 'openai', handler: listModels },
  { method: 'GET', pattern: /^\/v1\/models\/(?<id>[^/]+)$/, flavor: 'openai', handler: getModel },
  { method: 'POST', pattern: /^\/v1\/messages$/, flavor: 'anthropic', handler: messages },
];

/** Constant-time comparison of digests, so the check leaks neither content nor length. */
function keyMatches(presented: string | undefined, expected: Buffer): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), expected);
}

function presentedKey(req: IncomingMessage, flavor: Flavor): string | undefined {
  if (flavor === 'anthropic') {
    const key = req.headers['x-api-key'];
    return typeof key === 'string' ? key : undefined;
  }
  const auth = req.headers.authorization;
  const match = auth === undefined ? null : /^Bearer\s+(.+)$/i.exec(auth);
  return match?.[1]?.trim();
}

function nonNegative(name: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isFinite(v) || v < 0)
    throw new WardError(
      'ERR_DEMO_INVALID_OPTIONS',
      'invalid_argument',
      `${name} must be a non-negative number, got ${value}`,
    );
  return v;
}

/**
 * Starts a stand-in for a hosted LLM API on plain `node:http`: OpenAI Chat Completions,
 * Embeddings, Models and Responses, and Anthropic Messages, streamed and not. Answers are a
 * pure function of the prompt. A request header `x-demo-fail: 500|timeout|reset` makes it fail
 * on purpose: a 500 JSON error, no answer at all (until the client gives up), or a response
 * cut off by a socket reset after the first bytes.
 *
 * @example
 * const upstream = await startDemoUpstream({ apiKey: 'sk-demo' });
 * const openai = new OpenAI({ apiKey: 'sk-demo', baseURL: `${upstream.url}/v1` });
 * const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
 * await upstream.close();
 */
export async function startDemoUpstream(opts: DemoUpstreamOptions): Promise<DemoUpstream> {
  if (typeof opts.apiKey !== 'string' || opts.apiKey.length === 0) {
    throw new WardError('ERR_DEMO_INVALID_OPTIONS', 'invalid_argument', 'apiKey must be a non-empty string');
  }
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WardError(
      'ERR_DEMO_INVALID_OPTIONS',
      'invalid_argument',
      `port must be an integer in 0..65535, got ${port}`,
    );
  }
  const latencyMs = nonNegative('latencyMs', opts.latencyMs);
  const tokenDelayMs = nonNegative('tokenDelayMs', opts.tokenDelayMs);
  const expectedKey = createHash('sha256').update(opts.apiKey).digest();
  const stats = { requests: 0 };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.requests++;
    const aborter = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort(new Error('client went away'));
    });
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    let flavor: Flavor = 'openai';
    try {
      let params: Record<string, string> = {};
      const route = ROUTES.find((r) => {
        const m = r.method === req.method ? r.pattern.exec(url.pathname) : null;
        if (m) params = { ...m.groups };
        return m !== null;
      });
      if (!route) {
        throw new UpstreamHttpError(
          404,
          'invalid_request_error',
          `Unknown request URL: ${req.method} ${url.pathname}.`,
          'unknown_url',
        );
      }
      flavor = route.flavor;
      if (!keyMatches(presentedKey(req, flavor), expectedKey)) {
        throw flavor === 'anthropic'
          ? new UpstreamHttpError(401, 'authentication_error', 'invalid x-api-key')
          : new UpstreamHttpError(401, 'invalid_request_error', 'Incorrect API key provided.', 'invalid_api_key');
      }
      const fail = req.headers['x-demo-fail'];
      if (fail === '500') {
        throw new UpstreamHttpError(
          500,
          flavor === 'anthropic' ? 'api_error' : 'server_error',
          'The demo upstream failed on purpose (x-demo-fail: 500).',
          'demo_failure',
        );
      }
      if (fail === 'timeout') {
        // Never answer: the request stays open until the client aborts or close() runs.
        req.resume();
        await new Promise<void>((resolve) => aborter.signal.addEventListener('abort', () => resolve(), { once: true }));
        return;
      }
      if (fail !== undefined && fail !== 'reset') {
        throw new UpstreamHttpError(
          400,
          'invalid_request_error',
          'x-demo-fail must be 500, timeout or reset',
          null,
          'x-demo-fail',
        );
      }

      let body: Record<string, unknown> = {};
      if (req.method === 'POST') {
        const raw = await readBody(req);
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new UpstreamHttpError(
            400,
            'invalid_request_error',
            'We could not parse the JSON body of your request.',
            'invalid_json',
          );
        }
        if (!isRecord(parsed))
          throw new UpstreamHttpError(
            400,
            'invalid_request_error',
            'The request body must be a JSON object.',
            'invalid_json',
          );
        body = parsed;
      }
      if (fail === 'reset') {
        await resetMidResponse(res, body.stream === true);
        return;
      }
      if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: aborter.signal });
      await route.handler({ req, res, body, params, signal: aborter.signal, tokenDelayMs });
    } catch (err) {
      if (aborter.signal.aborted) return;
      const httpErr =
        err instanceof UpstreamHttpError
          ? err
          : new UpstreamHttpError(
              500,
              flavor === 'anthropic' ? 'api_error' : 'server_error',
              'The demo upstream hit an internal error.',
              'internal_error',
            );
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A 413 leaves the rest of the body unread: close the connection instead of draining it.
      sendJson(res, httpErr.status, httpErr.body(flavor), httpErr.status === 413 ? { connection: 'close' } : {});
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(
        new WardError('ERR_DEMO_UPSTREAM_LISTEN', 'unavailable', `demo upstream could not listen on ${host}:${port}`, {
          cause,
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${bound}`,
    port: bound,
    stats,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Streams and x-demo-fail: timeout requests would otherwise hold close() open forever.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Sends a 200 and the first bytes of a plausible body, then destroys the socket. */
async function resetMidResponse(res: ServerResponse, stream: boolean): Promise<void> {
  res.writeHead(200, { 'content-type': stream ? 'text/event-stream; charset=utf-8' : 'application/json' });
  const partial = stream
    ? 'data: {"id":"chatcmpl-reset","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-re'
    : '{"id":"chatcmpl-reset","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis';
  await new Promise<void>((resolve) => res.write(partial, () => resolve()));
  res.socket?.resetAndDestroy();
}
