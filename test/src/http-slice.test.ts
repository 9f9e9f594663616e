// The first end-to-end slice: an OpenAI client talks to an HTTP connection through the
// gateway, the agent adds the upstream key it alone holds, and the exchange is recorded.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream } from '@ward/demo';
import { exportAuditLog, verifyAuditExport } from '@ward/gateway';
import OpenAI, { APIError } from 'openai';
import { eventually, startStack, type WardStack } from './helpers/ward-stack.js';

const UPSTREAM_KEY = 'sk-upstream-secret-held-by-the-agent-only';

describe('HTTP connection through gateway and agent', () => {
  let stack: WardStack;
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let baseURL: string;

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.1', port: 0, apiKey: UPSTREAM_KEY, tokenDelayMs: 20 });
    stack = await startStack({
      gatewayConnections: [
        { name: 'llm', type: 'http', agent: 'e2e-agent' },
        { name: 'down', type: 'http', agent: 'e2e-agent' },
        { name: 'nobody-serves', type: 'http' },
        { name: 'pg', type: 'postgres', agent: 'e2e-agent' },
      ],
      agentConnections: [
        {
          type: 'http',
          name: 'llm',
          url: upstream.url,
          auth: { header: 'authorization', scheme: 'Bearer', secret: UPSTREAM_KEY },
          timeoutMs: 10_000,
        },
        // Port 9 on loopback: nothing listens (discard is not run here), so connecting is refused.
        { type: 'http', name: 'down', url: 'http://127.0.0.1:9', timeoutMs: 2_000 },
      ],
      maxRequestBodyBytes: 64 * 1024,
    });
    baseURL = `${stack.gateway.httpUrl}/c/llm/v1`;
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
  });

  test('a chat completion works with a ward token as the API key', async () => {
    const client = new OpenAI({ baseURL, apiKey: stack.userToken, maxRetries: 0 });
    const reply = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello through ward' }],
    });
    assert.equal(reply.object, 'chat.completion');
    assert.ok((reply.choices[0]?.message.content ?? '').length > 0);
    assert.ok((reply.usage?.total_tokens ?? 0) > 0);
  });

  test('a streamed completion arrives chunk by chunk', async () => {
    const client = new OpenAI({ baseURL, apiKey: stack.userToken, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Tell me a longer story about streaming through a gateway please' }],
    });
    const arrivals: number[] = [];
    let text = '';
    let usage = 0;
    for await (const chunk of stream) {
      arrivals.push(performance.now());
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage?.total_tokens ?? usage;
    }
    assert.ok(arrivals.length >= 5, `expected several chunks, got ${arrivals.length}`);
    // The upstream waits 20 ms between chunks; a proxy that buffered the stream would deliver
    // them all at once. Spread, not speed: the first and last arrivals must be far apart.
    const first = arrivals[0] ?? 0;
    const last = arrivals.at(-1) ?? 0;
    assert.ok(
      last - first >= 20 * (arrivals.length - 3),
      `chunks arrived together (${(last - first).toFixed(1)} ms spread)`,
    );
    assert.ok(text.length > 0);
    assert.ok(usage > 0);
  });

  test('embeddings work', async () => {
    const client = new OpenAI({ baseURL, apiKey: stack.userToken, maxRetries: 0 });
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    assert.equal(res.data.length, 2);
    assert.ok((res.data[0]?.embedding.length ?? 0) > 0);
  });

  test('a bad token is refused as the SDK typed error, and recorded', async () => {
    const client = new OpenAI({ baseURL, apiKey: 'not-a-ward-token', maxRetries: 0 });
    await assert.rejects(
      client.models.list(),
      (err: unknown) =>
        err instanceof OpenAI.AuthenticationError && err.status === 401 && err.code === 'ERR_AUTH_TOKEN_INVALID',
    );
    await stack.gateway.store.audit.flush();
    const denied = stack.gateway.store.audit.listRecords({ kind: 'auth.denied', limit: 100 });
    assert.ok(denied.some((r) => r.decision === 'deny' && r.rule === 'auth.token'));
  });

  test('errors are JSON in the OpenAI shape with stable codes', async () => {
    const call = (path: string, init: RequestInit = {}) =>
      fetch(`${stack.gateway.httpUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${stack.userToken}`, 'content-type': 'application/json', ...init.headers },
      });
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/c/unknown/v1/models', {}, 404, 'ERR_CONN_UNKNOWN'],
      ['/c/pg/v1/models', {}, 400, 'ERR_CONN_TYPE_MISMATCH'],
      ['/c/nobody-serves/v1/models', {}, 503, 'ERR_AGENT_OFFLINE'],
      ['/c/down/v1/models', {}, 502, 'ERR_UPSTREAM_UNAVAILABLE'],
      ['/c/llm/v1/chat/completions', { method: 'POST', body: 'x'.repeat(100 * 1024) }, 413, 'ERR_HTTP_BODY_TOO_LARGE'],
      ['/nowhere', {}, 404, 'ERR_HTTP_NOT_FOUND'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await call(path, init);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, code, path);
    }
    const noToken = await fetch(`${stack.gateway.httpUrl}/c/llm/v1/models`);
    assert.equal(noToken.status, 401);
    assert.equal(((await noToken.json()) as { error: { code: string } }).error.code, 'ERR_AUTH_TOKEN_MISSING');
  });

  test('a client-supplied upstream key is dropped: the agent injects its own', async () => {
    // With only the upstream's real key and no ward token, the gateway refuses: the key is
    // worthless to a client, and it never travels to the upstream from the client side.
    const res = await fetch(`${stack.gateway.httpUrl}/c/llm/v1/models`, { headers: { 'x-api-key': UPSTREAM_KEY } });
    assert.equal(res.status, 401);
    const ok = await fetch(`${stack.gateway.httpUrl}/c/llm/v1/models`, {
      headers: { authorization: `Bearer ${stack.userToken}`, 'x-api-key': 'sk-client-tries-its-own' },
    });
    assert.equal(ok.status, 200);
  });

  test('exchanges are recorded, the log verifies, and no credential is stored or logged', async () => {
    // An exchange is recorded right after its response ends, so wait for the last ones.
    await eventually(
      () => stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).length >= 6,
      10_000,
      'exchanges to be recorded',
    );
    await stack.gateway.store.audit.flush();
    const exchanges = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 });
    const chat = exchanges.find((r) => r.data['path'] === '/v1/chat/completions' && r.data['status'] === 200);
    assert.ok(chat, 'a chat completion exchange was recorded');
    assert.equal(chat.identity, 'user:bob');
    assert.equal(chat.connection, 'llm');
    assert.match(String(chat.source), /^127\.0\.0\.1:\d+$/);
    const sha = chat.data['responseBody'];
    assert.equal(typeof sha, 'string');
    const body = stack.gateway.store.blobs.get(String(sha));
    assert.ok(body?.toString('utf8').includes('chat.completion'));

    const sessions = stack.gateway.store.sessions.list({ limit: 100 });
    assert.ok(sessions.some((s) => s.connection === 'llm' && s.status === 'ok'));

    const exportPath = join(stack.dataDir, 'export.jsonl');
    await exportAuditLog(stack.gateway.store, exportPath);
    const result = await verifyAuditExport(exportPath);
    assert.equal(result.ok, true, JSON.stringify(result.firstBad));
    assert.ok(result.records >= exchanges.length);

    // Invariant 1: the upstream key never reaches the gateway's store, logs or recordings;
    // tokens never appear either.
    const haystacks = [
      readFileSync(join(stack.dataDir, 'ward.db')),
      readFileSync(stack.logFile),
      readFileSync(exportPath),
    ];
    for (const hay of haystacks) {
      assert.equal(hay.includes(UPSTREAM_KEY), false, 'upstream key leaked');
      assert.equal(hay.includes(stack.userToken), false, 'user token leaked');
    }
  });

  test('an upstream error reaches the SDK as its typed error', async () => {
    const client = new OpenAI({ baseURL, apiKey: stack.userToken, maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => err instanceof APIError && err.status === 404,
    );
  });
});
