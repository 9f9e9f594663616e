import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { ExchangeInfo, HttpExchangeHooks } from './exchange-hooks.js';
import { ResponseRelay } from './response-relay.js';

const exchange: ExchangeInfo = {
  sessionId: 'ses_test',
  connection: 'llm',
  identity: {
    subject: 'bob',
    kind: 'user',
    roles: ['user'],
    groups: [],
    issuer: 'i',
    expiresAt: new Date(0),
    tokenId: 'j',
  },
  source: '127.0.0.1:1',
  method: 'POST',
  path: '/v1/chat/completions',
  llm: 'openai',
  endpoint: 'chat.completions',
};

const chunk = (content: string) =>
  `data: ${JSON.stringify({ model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/** Serves one response through a relay fed with `feed`; returns what a real HTTP client received. */
async function relayed(
  hooks: HttpExchangeHooks,
  contentType: string,
  feed: string[],
): Promise<{ body: string; headers: Headers; relay: ResponseRelay; credited: number }> {
  let relay: ResponseRelay | undefined;
  let credited = 0;
  const server = createServer((_req, res: ServerResponse) => {
    relay = new ResponseRelay({
      res,
      hooks,
      exchange,
      maxResponseBytes: 1 << 20,
      recordBodyBytes: 1 << 20,
      maxEventBytes: 4096,
      maxAssembledChars: 4096,
    });
    relay.head(200, [{ name: 'content-type', value: contentType }]);
    for (const piece of feed) relay.data(Buffer.from(piece), (n) => (credited += n));
    void relay.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const body = await res.text();
    await new Promise((r) => setImmediate(r));
    assert.ok(relay);
    return { body, headers: res.headers, relay, credited };
  } finally {
    server.close();
  }
}

/** Splits `text` into pieces of `size` bytes: events arrive cut at arbitrary places. */
const cut = (text: string, size: number) => text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];

describe('ResponseRelay', () => {
  test('an sseEvent hook rewrites events one at a time; the recording keeps what the client got', async () => {
    const stream = `${chunk('my email is jane@example.com')}: keep-alive\n\n${chunk(' bye')}data: [DONE]\n\n`;
    let calls = 0;
    const hooks: HttpExchangeHooks = {
      sseEvent: (e) => {
        calls++;
        return e.data.includes('@') ? { ...e, data: e.data.replace(/[a-z]+@[a-z.]+/, '<EMAIL_1>') } : e;
      },
      sseEnd: () => [{ event: 'ward.note', data: '{"masked":1}', id: undefined, raw: Buffer.alloc(0) }],
    };
    const { body, headers, relay, credited } = await relayed(hooks, 'text/event-stream', cut(stream, 7));
    assert.equal(calls, 3); // two chunks and [DONE]; the keep-alive comment passes as is
    assert.ok(!body.includes('jane@example.com'));
    assert.ok(body.includes('<EMAIL_1>'));
    assert.ok(body.includes(': keep-alive\n\n'));
    assert.ok(body.endsWith('event: ward.note\ndata: {"masked":1}\n\n'));
    assert.equal(headers.get('content-length'), null);
    assert.equal(credited, Buffer.byteLength(stream));
    const result = relay.llmResult();
    assert.equal(result?.text, 'my email is <EMAIL_1> bye');
    assert.equal(relay.capture.bytes().toString('utf8'), body);
  });

  test('without hooks SSE bytes pass through unchanged and are parsed on the side', async () => {
    const stream = chunk('Hel') + chunk('lo') + 'data: [DONE]\n\n';
    const { body, relay, credited } = await relayed({}, 'text/event-stream', cut(stream, 5));
    assert.equal(body, stream);
    assert.equal(credited, Buffer.byteLength(stream));
    assert.equal(relay.llmResult()?.text, 'Hello');
    assert.ok(relay.firstByteAt !== undefined);
  });

  test('a responseBody hook sees the whole JSON body before the head is sent; Content-Length follows it', async () => {
    const json = JSON.stringify({ model: 'm', choices: [{ index: 0, message: { content: 'secret 4111' } }] });
    const hooks: HttpExchangeHooks = { responseBody: (b) => Buffer.from(b.toString('utf8').replace('4111', '****')) };
    const { body, headers, relay } = await relayed(hooks, 'application/json', cut(json, 10));
    assert.equal(body, json.replace('4111', '****'));
    assert.equal(headers.get('content-length'), String(Buffer.byteLength(body)));
    assert.equal(relay.llmResult()?.text, 'secret ****');
  });
});
