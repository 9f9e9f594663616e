import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { countTokens, DEMO_REPLY_PII, type DemoUpstream, startDemoUpstream } from './index.js';

const KEY = 'sk-demo-test-key';

async function withUpstream<T>(
  fn: (u: DemoUpstream, openai: OpenAI) => Promise<T>,
  opts: { latencyMs?: number; tokenDelayMs?: number } = {},
): Promise<T> {
  const upstream = await startDemoUpstream({ apiKey: KEY, port: 0, ...opts });
  const openai = new OpenAI({ apiKey: KEY, baseURL: `${upstream.url}/v1`, maxRetries: 0 });
  try {
    return await fn(upstream, openai);
  } finally {
    await upstream.close();
  }
}

function post(u: DemoUpstream, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${u.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Reads an SSE body into its `data:` payloads (and `event:` names). */
async function sseEvents(res: Response): Promise<{ event: string | undefined; data: string }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const lines = block.split('\n');
      return {
        event: lines.find((l) => l.startsWith('event: '))?.slice(7),
        data: lines
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n'),
      };
    });
}

describe('demo upstream: OpenAI chat completions', () => {
  test('non-streamed completion quotes the prompt and reports consistent usage', () =>
    withUpstream(async (u, openai) => {
      const prompt = 'Summarise the quarterly numbers for the board please';
      const r = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: prompt }],
      });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.model, 'gpt-4o-mini');
      assert.equal(r.choices.length, 1);
      const content = r.choices[0]?.message.content ?? '';
      assert.ok(content.startsWith('You said: "Summarise the quarterly numbers for the…"'), content);
      assert.equal(r.choices[0]?.finish_reason, 'stop');
      assert.deepEqual(r.usage && { p: r.usage.prompt_tokens, c: r.usage.completion_tokens, t: r.usage.total_tokens }, {
        p: countTokens(prompt),
        c: countTokens(content),
        t: countTokens(prompt) + countTokens(content),
      });
      // Deterministic: the same prompt gives the same answer and id.
      const again = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: prompt }],
      });
      assert.equal(again.choices[0]?.message.content, content);
      assert.equal(again.id, r.id);
      assert.equal(u.stats.requests, 2);
    }));

  test('a prompt about a customer gets an email address and a phone number in the reply', () =>
    withUpstream(async (_u, openai) => {
      const r = await openai.chat.completions.create({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Who is the customer for order 42?' }],
      });
      const content = r.choices[0]?.message.content ?? '';
      assert.ok(content.includes(DEMO_REPLY_PII.email));
      assert.ok(content.includes(DEMO_REPLY_PII.phone));
    }));

  test('streamed chunks arrive one by one, then finish_reason, usage and [DONE]', () =>
    withUpstream(
      async (_u, openai) => {
        const prompt = 'Tell me about the customer email policy';
        const stream = await openai.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: prompt }],
          stream: true,
          stream_options: { include_usage: true },
        });
        const arrivals: number[] = [];
        const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
        for await (const chunk of stream) {
          arrivals.push(performance.now());
          chunks.push(chunk);
        }
        const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
        const words = text.match(/\s*\S+/g) ?? [];
        // role chunk + one per word + finish chunk + usage chunk
        assert.equal(chunks.length, 1 + words.length + 2);
        assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
        assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
        const usage = chunks.at(-1)?.usage;
        assert.equal(chunks.at(-1)?.choices.length, 0);
        assert.equal(usage?.prompt_tokens, countTokens(prompt));
        assert.equal(usage?.completion_tokens, countTokens(text));
        assert.ok(text.includes(DEMO_REPLY_PII.email));
        assert.ok((arrivals[0] ?? 0) < (arrivals.at(-1) ?? 0), 'first chunk must arrive before the last');
      },
      { tokenDelayMs: 15 },
    ));

  test('raw SSE ends with data: [DONE]', () =>
    withUpstream(async (u) => {
      const res = await post(u, '/v1/chat/completions', {
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'hi there' }],
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const events = await sseEvents(res);
      assert.equal(events.at(-1)?.data, '[DONE]');
      const deltas = events
        .slice(1, -2)
        .map(
          (e) => (JSON.parse(e.data) as { choices: { delta: { content: string } }[] }).choices[0]?.delta.content ?? '',
        );
      assert.ok(deltas.join('').startsWith('You said: "hi there".'));
      assert.ok(
        deltas.every((d) => /^\s*\S+$/.test(d)),
        'one word per chunk',
      );
      assert.equal(events.length, 1 + (deltas.join('').match(/\s*\S+/g) ?? []).length + 2); // role, words, finish, [DONE]
    }));

  test('"call <tool>" with tools answers with tool_calls, streamed as deltas too', () =>
    withUpstream(async (_u, openai) => {
      const tools: OpenAI.Chat.Completions.ChatCompletionTool[] = [
        {
          type: 'function',
          function: {
            name: 'lookup_customer',
            parameters: {
              type: 'object',
              properties: { query: { type: 'string' }, limit: { type: 'integer' } },
              required: ['query', 'limit'],
            },
          },
        },
      ];
      const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
        { role: 'user', content: 'Please call lookup_customer with Jane' },
      ];
      const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, tools });
      const call = r.choices[0]?.message.tool_calls?.[0];
      assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
      assert.equal(call?.type, 'function');
      assert.ok(call?.type === 'function');
      assert.equal(call.function.name, 'lookup_customer');
      assert.deepEqual(JSON.parse(call.function.arguments), { query: 'Jane', limit: 1 });

      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, tools, stream: true });
      let args = '';
      let name = '';
      let deltas = 0;
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        for (const tc of chunk.choices[0]?.delta.tool_calls ?? []) {
          deltas++;
          name += tc.function?.name ?? '';
          args += tc.function?.arguments ?? '';
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(name, 'lookup_customer');
      assert.equal(args, call.function.arguments);
      assert.ok(deltas >= 2, `expected several tool-call deltas, got ${deltas}`);
      assert.equal(finish, 'tool_calls');
    }));

  test('unknown model is a 404 model_not_found', () =>
    withUpstream(async (_u, openai) => {
      await assert.rejects(
        openai.chat.completions.create({ model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] }),
        (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
      );
    }));

  test('max_tokens truncates and reports finish_reason length', () =>
    withUpstream(async (_u, openai) => {
      const r = await openai.chat.completions.create({
        model: 'gpt-4o-mini',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'Tell me a long story about a dragon' }],
      });
      assert.equal(r.choices[0]?.finish_reason, 'length');
      assert.ok((r.usage?.completion_tokens ?? 99) <= 5);
    }));
});

describe('demo upstream: embeddings and models', () => {
  test('float embeddings are deterministic unit vectors of the asked dimension', () =>
    withUpstream(async (_u, openai) => {
      const r = await openai.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['alpha', 'beta'],
        encoding_format: 'float',
      });
      assert.equal(r.data.length, 2);
      const [a, b] = [r.data[0]?.embedding ?? [], r.data[1]?.embedding ?? []];
      assert.equal(a.length, 256);
      const norm = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
      assert.notDeepEqual(a, b);
      assert.equal(r.usage.prompt_tokens, countTokens('alpha') + countTokens('beta'));
      const again = await openai.embeddings.create({
        model: 'text-embedding-3-small',
        input: 'alpha',
        encoding_format: 'float',
        dimensions: 64,
      });
      assert.equal(again.data[0]?.embedding.length, 64);
    }));

  test('base64 (the SDK default) decodes to the same vector as float', () =>
    withUpstream(async (u, openai) => {
      const viaSdk = await openai.embeddings.create({ model: 'text-embedding-3-small', input: 'gamma' });
      const raw = await post(u, '/v1/embeddings', {
        model: 'text-embedding-3-small',
        input: 'gamma',
        encoding_format: 'base64',
      });
      const body = (await raw.json()) as { data: { embedding: string }[] };
      assert.equal(typeof body.data[0]?.embedding, 'string');
      const float = await openai.embeddings.create({
        model: 'text-embedding-3-small',
        input: 'gamma',
        encoding_format: 'float',
      });
      assert.equal(viaSdk.data[0]?.embedding.length, 256);
      const f32 = (xs: number[]) => Array.from(new Float32Array(xs));
      assert.deepEqual(f32(viaSdk.data[0]?.embedding ?? []), f32(float.data[0]?.embedding ?? []));
    }));

  test('token-array input is accepted; a chat model on /embeddings is refused', () =>
    withUpstream(async (_u, openai) => {
      const r = await openai.embeddings.create({
        model: 'text-embedding-3-large',
        input: [[1, 2, 3]],
        encoding_format: 'float',
      });
      assert.equal(r.usage.prompt_tokens, 3);
      await assert.rejects(
        openai.embeddings.create({ model: 'gpt-4o', input: 'x' }),
        (err: unknown) => err instanceof OpenAI.BadRequestError,
      );
    }));

  test('models list and retrieve; unknown model id is a 404', () =>
    withUpstream(async (_u, openai) => {
      const ids: string[] = [];
      for await (const m of openai.models.list()) ids.push(m.id);
      assert.ok(ids.includes('gpt-4o-mini') && ids.includes('text-embedding-3-small'));
      const m = await openai.models.retrieve('gpt-4o');
      assert.equal(m.id, 'gpt-4o');
      assert.equal(m.object, 'model');
      await assert.rejects(
        openai.models.retrieve('nope'),
        (err: unknown) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
      );
    }));
});

function outputText(r: OpenAI.Responses.Response): string {
  return r.output
    .flatMap((item) => (item.type === 'message' ? item.content : []))
    .map((c) => (c.type === 'output_text' ? c.text : ''))
    .join('');
}

describe('demo upstream: Responses API', () => {
  test('non-streamed response exposes output_text and usage through the SDK', () =>
    withUpstream(async (_u, openai) => {
      const r = await openai.responses.create({ model: 'gpt-4o-mini', input: 'Write one line about the customer' });
      assert.equal(r.status, 'completed');
      assert.match(r.output_text, /Write one line about the customer/);
      assert.ok(r.output_text.includes(DEMO_REPLY_PII.email));
      assert.equal(r.usage?.input_tokens, countTokens('Write one line about the customer'));
      assert.equal(r.usage?.output_tokens, countTokens(r.output_text));
    }));

  test('streamed response: created, deltas, completed with usage', () =>
    withUpstream(async (_u, openai) => {
      const stream = await openai.responses.create({
        model: 'gpt-4o-mini',
        input: [{ role: 'user', content: 'stream this please' }],
        stream: true,
      });
      const types: string[] = [];
      let text = '';
      let completedText = '';
      let usageTotal = 0;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') {
          completedText = outputText(ev.response);
          usageTotal = ev.response.usage?.total_tokens ?? 0;
        }
      }
      assert.equal(types[0], 'response.created');
      assert.equal(types.at(-1), 'response.completed');
      assert.equal(
        types.filter((t) => t === 'response.output_text.delta').length,
        (text.match(/\s*\S+/g) ?? []).length,
      );
      assert.equal(completedText, text);
      assert.equal(usageTotal, countTokens('stream this please') + countTokens(text));
    }));

  test('the SDK stream helper assembles the final response', () =>
    withUpstream(async (_u, openai) => {
      const stream = openai.responses.stream({ model: 'gpt-4o-mini', input: 'hello helper' });
      const final = await stream.finalResponse();
      // openai 5.x only fills output_text on non-streamed responses, so read the items.
      assert.match(outputText(final), /hello helper/);
      assert.equal(final.status, 'completed');
    }));
});

describe('demo upstream: Anthropic Messages', () => {
  const headers = { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', authorization: '' };

  test('non-streamed message with usage', () =>
    withUpstream(async (u) => {
      const res = await post(
        u,
        '/v1/messages',
        {
          model: 'claude-3-5-haiku-latest',
          max_tokens: 200,
          messages: [{ role: 'user', content: 'Hello Claude friend' }],
        },
        headers,
      );
      assert.equal(res.status, 200);
      const body = (await res.json()) as {
        type: string;
        content: { type: string; text: string }[];
        stop_reason: string;
        usage: { input_tokens: number; output_tokens: number };
      };
      assert.equal(body.type, 'message');
      assert.equal(body.content.length, 1);
      assert.match(body.content[0]?.text ?? '', /Hello Claude friend/);
      assert.equal(body.stop_reason, 'end_turn');
      assert.equal(body.usage.input_tokens, countTokens('Hello Claude friend'));
      assert.equal(body.usage.output_tokens, countTokens(body.content[0]?.text ?? ''));
    }));

  test('streamed: message_start, text deltas, message_stop', () =>
    withUpstream(async (u) => {
      const res = await post(
        u,
        '/v1/messages',
        {
          model: 'claude-sonnet-4-5',
          max_tokens: 200,
          stream: true,
          messages: [{ role: 'user', content: 'stream me' }],
        },
        headers,
      );
      const events = await sseEvents(res);
      const names = events.map((e) => e.event);
      assert.equal(names[0], 'message_start');
      assert.equal(names.at(-1), 'message_stop');
      const text = events
        .filter((e) => e.event === 'content_block_delta')
        .map((e) => (JSON.parse(e.data) as { delta: { text: string } }).delta.text)
        .join('');
      assert.match(text, /stream me/);
      const delta = events.find((e) => e.event === 'message_delta');
      assert.equal(
        (JSON.parse(delta?.data ?? '{}') as { usage: { output_tokens: number } }).usage.output_tokens,
        countTokens(text),
      );
    }));

  test('the Anthropic route wants x-api-key, not a bearer token, and the version header', () =>
    withUpstream(async (u) => {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] };
      const bearer = await post(u, '/v1/messages', body, { 'anthropic-version': '2023-06-01' });
      assert.equal(bearer.status, 401);
      assert.equal(((await bearer.json()) as { error: { type: string } }).error.type, 'authentication_error');
      const noVersion = await post(u, '/v1/messages', body, { 'x-api-key': KEY, authorization: '' });
      assert.equal(noVersion.status, 400);
      const unknown = await post(u, '/v1/messages', { ...body, model: 'claude-0' }, headers);
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as { error: { type: string } }).error.type, 'not_found_error');
    }));
});

describe('demo upstream: refusals and faults', () => {
  test('no key or a wrong key is a 401 invalid_api_key in OpenAI shape', () =>
    withUpstream(async (u) => {
      for (const authorization of ['', 'Bearer wrong-key', `Basic ${KEY}`]) {
        const res = await post(u, '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] }, { authorization });
        assert.equal(res.status, 401);
        const body = (await res.json()) as { error: { type: string; code: string; param: unknown } };
        assert.deepEqual(
          [body.error.type, body.error.code, body.error.param],
          ['invalid_request_error', 'invalid_api_key', null],
        );
      }
      const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${u.url}/v1`, maxRetries: 0 });
      await assert.rejects(
        bad.models.list(),
        (err: unknown) => err instanceof OpenAI.AuthenticationError && err.code === 'invalid_api_key',
      );
      assert.equal(u.stats.requests, 4);
    }));

  test('invalid JSON is a 400, unknown route a 404, body over 8 MiB a 413', () =>
    withUpstream(async (u) => {
      const bad = await post(u, '/v1/chat/completions', '{"model": ');
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
      const missing = await post(u, '/v1/nothing-here', {});
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'unknown_url');
      const big = await new Promise<number>((resolve, reject) => {
        const req = request(`${u.url}/v1/chat/completions`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${KEY}`,
            'content-type': 'application/json',
            'content-length': String(9 * 1024 * 1024),
          },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(Buffer.alloc(9 * 1024 * 1024, 0x20));
      });
      assert.equal(big, 413);
    }));

  test('x-demo-fail: 500 answers a JSON server error', () =>
    withUpstream(async (u) => {
      const res = await post(
        u,
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
        { 'x-demo-fail': '500' },
      );
      assert.equal(res.status, 500);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'demo_failure');
    }));

  test('x-demo-fail: timeout never answers until the client aborts', () =>
    withUpstream(async (u) => {
      await assert.rejects(
        fetch(`${u.url}/v1/models`, {
          headers: { authorization: `Bearer ${KEY}`, 'x-demo-fail': 'timeout' },
          signal: AbortSignal.timeout(300),
        }),
        (err: unknown) => err instanceof Error && err.name === 'TimeoutError',
      );
      assert.equal(u.stats.requests, 1);
      // The server still serves others afterwards.
      const ok = await fetch(`${u.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
      assert.equal(ok.status, 200);
    }));

  test('x-demo-fail: reset cuts the connection after the first bytes (streamed and not)', () =>
    withUpstream(async (u, openai) => {
      const res = await post(
        u,
        '/v1/chat/completions',
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
        { 'x-demo-fail': 'reset' },
      );
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
      const stream = await openai.chat.completions.create(
        { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-demo-fail': 'reset' } },
      );
      let received = 0;
      await assert.rejects(async () => {
        for await (const _chunk of stream) received++;
      });
      assert.equal(received, 1);
    }));

  test('latencyMs delays the answer without breaking it', () =>
    withUpstream(
      async (u) => {
        const res = await fetch(`${u.url}/v1/models/gpt-4o`, { headers: { authorization: `Bearer ${KEY}` } });
        assert.equal(res.status, 200);
      },
      { latencyMs: 20 },
    ));

  test('bad options are refused with ERR_DEMO_INVALID_OPTIONS', async () => {
    await assert.rejects(startDemoUpstream({ apiKey: '' }), { code: 'ERR_DEMO_INVALID_OPTIONS' });
    await assert.rejects(startDemoUpstream({ apiKey: 'k', tokenDelayMs: -1 }), { code: 'ERR_DEMO_INVALID_OPTIONS' });
  });
});
