// LLM connections end to end with the real openai SDK: what ward records of each exchange
// (model, usage, reassembled streams, tool calls), rate limits, response caps, typed errors,
// and a client that leaves mid-stream, checked at the upstream.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream } from '@ward/demo';
import OpenAI from 'openai';
import { eventually, startStack, type WardStack } from './helpers/ward-stack.js';

const KEY = 'sk-upstream-key-for-llm-tests';
const ANTHROPIC_KEY = 'sk-ant-upstream-key-for-llm-tests';

interface Rec {
  decision: string | null;
  rule: string | null;
  connection: string | null;
  identity: string | null;
  data: Record<string, unknown>;
}

describe('LLM connections through ward', () => {
  let stack: WardStack;
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let claude: Awaited<ReturnType<typeof startDemoUpstream>>;
  // A stream that never ends, to see at the upstream when ward stops reading it.
  let endless: Server;
  const endlessState = { opened: 0, closed: 0 };

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: KEY, tokenDelayMs: 2 });
    claude = await startDemoUpstream({ apiKey: ANTHROPIC_KEY });
    endless = createServer((req, res) => {
      endlessState.opened++;
      req.resume();
      res.on('close', () => endlessState.closed++);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const timer = setInterval(() => {
        const chunk = {
          id: 'x',
          object: 'chat.completion.chunk',
          model: 'slow',
          choices: [{ index: 0, delta: { content: `t${n++} ` }, finish_reason: null }],
        };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      }, 10);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    const endlessUrl = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
    const http = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      type: 'http' as const,
      agent: 'e2e-agent',
      ...extra,
    });
    const openaiAgent = (name: string, url = upstream.url, timeoutMs = 10_000) => ({
      type: 'http' as const,
      name,
      url,
      auth: { header: 'authorization', scheme: 'Bearer', secret: KEY },
      timeoutMs,
    });
    stack = await startStack({
      gatewayConnections: [
        http('llm', { llm: 'openai' }),
        http('claude', { llm: 'anthropic' }),
        http('rpm', { llm: 'openai', limits: { requestsPerMinute: 2 } }),
        http('tpm', { llm: 'openai', limits: { tokensPerMinute: 20 } }),
        http('emb', { llm: 'openai', limits: { embeddingInputsPerMinute: 3 } }),
        http('capped', { llm: 'openai', limits: { maxResponseBody: 1500 } }),
        http('slow', { llm: 'openai' }),
        http('timeout', { llm: 'openai' }),
        http('down', { llm: 'openai' }),
        { name: 'nobody', type: 'http', llm: 'openai' },
      ],
      agentConnections: [
        openaiAgent('llm'),
        {
          type: 'http',
          name: 'claude',
          url: claude.url,
          auth: { header: 'x-api-key', secret: ANTHROPIC_KEY },
          timeoutMs: 10_000,
        },
        openaiAgent('rpm'),
        openaiAgent('tpm'),
        openaiAgent('emb'),
        openaiAgent('capped'),
        openaiAgent('slow', endlessUrl),
        openaiAgent('timeout', upstream.url, 300),
        // Port 9 on loopback: nothing listens, so connecting is refused.
        openaiAgent('down', 'http://127.0.0.1:9'),
      ],
    });
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
    await claude?.close();
    endless?.closeAllConnections();
    await new Promise((r) => endless?.close(r));
  });

  const client = (connection: string) =>
    new OpenAI({ baseURL: `${stack.gateway.httpUrl}/c/${connection}/v1`, apiKey: stack.userToken, maxRetries: 0 });

  /** The exchange records of a connection, once `count` of them are durable. */
  async function exchanges(connection: string, count: number): Promise<Rec[]> {
    const list = () =>
      stack.gateway.store.audit
        .listRecords({ kind: 'http.exchange', limit: 10_000 })
        .filter((r) => r.connection === connection) as unknown as Rec[];
    await eventually(() => list().length >= count, 10_000, `${count} exchanges on ${connection}`);
    return list();
  }
  const blobJson = (sha: unknown) => JSON.parse(stack.gateway.store.blobs.get(String(sha))?.toString('utf8') ?? 'null');

  test('chat completion (not streamed): model and usage recorded as the upstream reported them', async () => {
    const reply = await client('llm').chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Record my usage please' }],
    });
    const [rec] = await exchanges('llm', 1);
    assert.ok(rec);
    assert.equal(rec.identity, 'user:bob');
    assert.equal(rec.data['endpoint'], 'chat.completions');
    assert.equal(rec.data['model'], 'gpt-4o-mini');
    assert.equal(rec.data['stream'], false);
    assert.deepEqual(rec.data['usage'], {
      promptTokens: reply.usage?.prompt_tokens,
      completionTokens: reply.usage?.completion_tokens,
      totalTokens: reply.usage?.total_tokens,
    });
    assert.equal(typeof rec.data['latencyMs'], 'number');
    assert.equal(typeof rec.data['ttfbMs'], 'number');
    assert.equal(blobJson(rec.data['output']).text, reply.choices[0]?.message.content);
  });

  test('streamed chat: chunks arrive incrementally; recorded text equals the concatenated deltas, usage from the last chunk', async () => {
    const stream = await client('llm').chat.completions.create({
      model: 'gpt-4o',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Stream a reply about a customer email through the gateway' }],
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.ok(chunks >= 5, `expected several chunks, got ${chunks}`);
    const recs = await exchanges('llm', 2);
    const rec = recs.find((r) => r.data['stream'] === true);
    assert.ok(rec, 'the streamed exchange is recorded');
    assert.equal(rec.data['model'], 'gpt-4o');
    assert.equal(rec.data['finishReason'], 'stop');
    assert.equal(rec.data['sseEvents'], chunks);
    assert.deepEqual(rec.data['usage'], {
      promptTokens: usage?.prompt_tokens,
      completionTokens: usage?.completion_tokens,
      totalTokens: usage?.total_tokens,
    });
    assert.equal(blobJson(rec.data['output']).text, text);
    assert.ok(text.includes('jane.doe@example.com'));
  });

  test('streamed tool call: argument deltas reassembled into the call the SDK saw', async () => {
    const stream = await client('llm').chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      tools: [
        {
          type: 'function',
          function: {
            name: 'lookup_customer',
            parameters: { type: 'object', properties: { name: { type: 'string' }, limit: { type: 'integer' } } },
          },
        },
      ],
      messages: [{ role: 'user', content: 'call lookup_customer with Jane Doe' }],
    });
    let args = '';
    let name = '';
    let argDeltas = 0;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        name += tc.function?.name ?? '';
        if (tc.function?.arguments) {
          args += tc.function.arguments;
          argDeltas++;
        }
      }
    }
    assert.ok(argDeltas >= 2, 'the arguments came as several deltas');
    const recs = await exchanges('llm', 3);
    const rec = recs.find((r) => Array.isArray(r.data['toolCalls']) && (r.data['toolCalls'] as string[]).length > 0);
    assert.ok(rec);
    assert.deepEqual(rec.data['toolCalls'], ['lookup_customer']);
    assert.equal(rec.data['finishReason'], 'tool_calls');
    const output = blobJson(rec.data['output']);
    assert.equal(output.toolCalls.length, 1);
    assert.equal(output.toolCalls[0].name, name);
    assert.equal(output.toolCalls[0].arguments, args);
    assert.deepEqual(JSON.parse(args), { name: 'Jane Doe', limit: 1 });
  });

  test('Responses API through the SDK, streamed and not', async () => {
    const r = await client('llm').responses.create({ model: 'gpt-4.1-mini', input: 'Hello responses API' });
    assert.ok(r.output_text.length > 0);
    const stream = await client('llm').responses.create({
      model: 'gpt-4.1-mini',
      input: 'Stream the responses API',
      stream: true,
    });
    let streamed = '';
    for await (const event of stream) if (event.type === 'response.output_text.delta') streamed += event.delta;
    const recs = (await exchanges('llm', 5)).filter((x) => x.data['endpoint'] === 'responses');
    assert.equal(recs.length, 2);
    const plain = recs.find((x) => x.data['stream'] === false);
    const live = recs.find((x) => x.data['stream'] === true);
    assert.ok(plain && live);
    assert.equal(blobJson(plain.data['output']).text, r.output_text);
    assert.equal(plain.data['model'], 'gpt-4.1-mini');
    assert.equal((plain.data['usage'] as { totalTokens: number }).totalTokens, r.usage?.total_tokens);
    assert.equal(blobJson(live.data['output']).text, streamed);
    assert.equal(live.data['finishReason'], 'completed');
    assert.ok((live.data['usage'] as { outputTokens: number }).outputTokens > 0);
  });

  test('embeddings: input count and usage recorded', async () => {
    const res = await client('llm').embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'bb', 'ccc'] });
    assert.equal(res.data.length, 3);
    const rec = (await exchanges('llm', 6)).find((x) => x.data['endpoint'] === 'embeddings');
    assert.ok(rec);
    assert.equal(rec.data['embeddingInputs'], 3);
    assert.equal((rec.data['usage'] as { promptTokens: number }).promptTokens, res.usage.prompt_tokens);
  });

  test('Anthropic messages via fetch, streamed and not: input/output usage recorded', async () => {
    const call = (stream: boolean) =>
      fetch(`${stack.gateway.httpUrl}/c/claude/v1/messages`, {
        method: 'POST',
        headers: {
          'x-api-key': stack.userToken,
          'anthropic-version': '2023-06-01',
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          model: 'claude-sonnet-4-5',
          max_tokens: 200,
          stream,
          messages: [{ role: 'user', content: 'Bonjour Claude' }],
        }),
      });
    const plain = await call(false);
    assert.equal(plain.status, 200);
    const message = (await plain.json()) as {
      content: Array<{ text: string }>;
      usage: { input_tokens: number; output_tokens: number };
    };
    const streamed = await call(true);
    assert.equal(streamed.status, 200);
    const sse = await streamed.text();
    let text = '';
    for (const line of sse.split('\n')) {
      if (!line.startsWith('data: ')) continue;
      const e = JSON.parse(line.slice(6));
      if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    }
    const recs = await exchanges('claude', 2);
    const p = recs.find((r) => r.data['stream'] === false);
    const s = recs.find((r) => r.data['stream'] === true);
    assert.ok(p && s);
    assert.deepEqual(p.data['usage'], {
      inputTokens: message.usage.input_tokens,
      outputTokens: message.usage.output_tokens,
    });
    assert.equal(blobJson(p.data['output']).text, message.content[0]?.text);
    assert.equal(s.data['endpoint'], 'messages');
    assert.equal(s.data['finishReason'], 'end_turn');
    assert.equal(blobJson(s.data['output']).text, text);
    assert.equal((s.data['usage'] as { inputTokens: number }).inputTokens, message.usage.input_tokens);
  });

  test('requestsPerMinute: the SDK gets a RateLimitError with Retry-After; the denial is recorded', async () => {
    const c = client('rpm');
    await c.models.list();
    await c.models.list();
    let seen = 0;
    await assert.rejects(c.models.list(), (err: unknown) => {
      assert.ok(err instanceof OpenAI.RateLimitError);
      assert.equal(err.status, 429);
      assert.equal(err.code, 'ERR_RATE_LIMITED');
      const retryAfter = Number(err.headers?.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 30, `retry-after ${retryAfter}`);
      seen++;
      return true;
    });
    assert.equal(seen, 1);
    await stack.gateway.store.audit.flush();
    const denied = stack.gateway.store.audit
      .listRecords({ kind: 'http.rate_limited', limit: 100 })
      .filter((r) => r.connection === 'rpm');
    assert.equal(denied.length, 1);
    assert.equal(denied[0]?.decision, 'deny');
    assert.equal(denied[0]?.rule, 'rate-limit:requestsPerMinute');
    assert.equal(denied[0]?.identity, 'user:bob');
  });

  test('tokensPerMinute is charged from the reported usage, streamed answers included', async () => {
    const c = client('tpm');
    const stream = await c.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'a prompt long enough to spend more than twenty tokens in one answer' }],
    });
    let total = 0;
    for await (const chunk of stream) total = chunk.usage?.total_tokens ?? total;
    assert.ok(total > 20, `used ${total} tokens`);
    await exchanges('tpm', 1); // charged once the exchange is done
    await assert.rejects(
      c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }] }),
      (err: unknown) => err instanceof OpenAI.RateLimitError && err.code === 'ERR_RATE_LIMITED',
    );
    const denied = stack.gateway.store.audit.listRecords({ kind: 'http.rate_limited', limit: 100 });
    await eventually(
      () =>
        stack.gateway.store.audit
          .listRecords({ kind: 'http.rate_limited', limit: 100 })
          .some((r) => r.rule === 'rate-limit:tokensPerMinute'),
      5_000,
      'the token denial record',
    );
    assert.ok(denied.length >= 1);
  });

  test('embeddingInputsPerMinute counts inputs', async () => {
    const c = client('emb');
    await c.embeddings.create({ model: 'text-embedding-3-small', input: ['one', 'two'] });
    await assert.rejects(
      c.embeddings.create({ model: 'text-embedding-3-small', input: ['three', 'four'] }),
      (err: unknown) => err instanceof OpenAI.RateLimitError && err.status === 429,
    );
    await c.embeddings.create({ model: 'text-embedding-3-small', input: 'five' });
  });

  test('response cap: 502 before the head (declared length), a cut stream after', async () => {
    const c = client('capped');
    await assert.rejects(
      c.embeddings.create({ model: 'text-embedding-3-small', input: ['x', 'y', 'z'] }),
      (err: unknown) =>
        err instanceof OpenAI.InternalServerError && err.status === 502 && err.code === 'ERR_HTTP_RESPONSE_TOO_LARGE',
    );
    const stream = await c.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'a long streamed answer about a customer and their email address' }],
    });
    let chunks = 0;
    await assert.rejects(async () => {
      for await (const _ of stream) chunks++;
    });
    assert.ok(chunks > 0, 'the stream started before it was cut');
    const recs = await exchanges('capped', 2);
    assert.deepEqual(
      recs.map((r) => r.data['errorCode']),
      ['ERR_HTTP_RESPONSE_TOO_LARGE', 'ERR_HTTP_RESPONSE_TOO_LARGE'],
    );
    assert.equal(recs[0]?.data['status'], 502);
  });

  test('upstream timeout, agent offline and upstream down are typed SDK errors with their status', async () => {
    await assert.rejects(
      client('timeout').chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hang' }] },
        { headers: { 'x-demo-fail': 'timeout' } },
      ),
      (err: unknown) =>
        err instanceof OpenAI.InternalServerError && err.status === 504 && err.code === 'ERR_UPSTREAM_TIMEOUT',
    );
    await assert.rejects(
      client('llm').chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'fail' }] },
        { headers: { 'x-demo-fail': '500' } },
      ),
      (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 500,
    );
    await assert.rejects(
      client('llm').chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'x'.repeat(9 * 1024 * 1024) }],
      }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 413 && err.code === 'ERR_HTTP_BODY_TOO_LARGE',
    );
  });

  test('a client that leaves mid-stream ends the upstream request', async () => {
    const before = endlessState.closed;
    const controller = new AbortController();
    const stream = await client('slow').chat.completions.create(
      { model: 'slow', stream: true, messages: [{ role: 'user', content: 'never ends' }] },
      { signal: controller.signal },
    );
    let chunks = 0;
    // The SDK ends the iteration quietly on its own abort; what matters is what the upstream sees.
    try {
      for await (const _ of stream) if (++chunks === 3) controller.abort();
    } catch (err) {
      assert.ok(err instanceof OpenAI.APIUserAbortError, String(err));
    }
    assert.equal(chunks, 3);
    // The upstream sees its response closed: ward stopped reading it.
    await eventually(() => endlessState.closed > before, 10_000, 'the upstream to see the request end');
    const recs = await exchanges('slow', 1);
    assert.equal(recs[0]?.data['errorCode'], 'ERR_CLIENT_GONE');
    assert.ok(String(blobJson(recs[0]?.data['output']).text).startsWith('t0 t1 t2'));
  });
});
