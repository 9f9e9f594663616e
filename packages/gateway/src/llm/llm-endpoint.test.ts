import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyLlmRequest, inspectLlmRequest } from './llm-endpoint.js';

describe('LLM endpoints', () => {
  test('classification by API, method and path', () => {
    const cases: Array<[Parameters<typeof classifyLlmRequest>, string]> = [
      [['openai', 'POST', '/v1/chat/completions'], 'chat.completions'],
      [['openai', 'POST', '/chat/completions?api-version=1'], 'chat.completions'],
      [['openai', 'POST', '/v1/responses'], 'responses'],
      [['openai', 'POST', '/v1/embeddings/'], 'embeddings'],
      [['openai', 'GET', '/v1/models/gpt-4o'], 'models'],
      [['openai', 'GET', '/v1/chat/completions'], 'other'],
      [['openai', 'POST', '/v1/messages'], 'other'],
      [['anthropic', 'POST', '/v1/messages'], 'messages'],
      [['anthropic', 'POST', '/v1/chat/completions'], 'other'],
      [['none', 'POST', '/v1/chat/completions'], 'other'],
    ];
    for (const [args, want] of cases) assert.equal(classifyLlmRequest(...args), want, args.join(' '));
  });

  test('request facts: model, stream, embedding input count; bad JSON yields none', () => {
    const facts = (endpoint: Parameters<typeof inspectLlmRequest>[0], body: unknown) =>
      inspectLlmRequest(endpoint, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
    assert.deepEqual(facts('chat.completions', { model: 'gpt-4o', stream: true, messages: [] }), {
      model: 'gpt-4o',
      stream: true,
      embeddingInputs: 0,
    });
    assert.equal(facts('embeddings', { model: 'e', input: ['a', 'b', 'c'] }).embeddingInputs, 3);
    assert.equal(facts('embeddings', { model: 'e', input: 'one' }).embeddingInputs, 1);
    assert.equal(facts('embeddings', { model: 'e', input: [1, 2, 3] }).embeddingInputs, 1);
    assert.equal(facts('embeddings', { model: 'e', input: [[1], [2]] }).embeddingInputs, 2);
    assert.deepEqual(facts('chat.completions', '{not json'), { model: undefined, stream: false, embeddingInputs: 0 });
  });
});
