import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chargedTokens, LlmAssembler, usageFromTail } from './llm-result.js';
import type { SseEvent } from './sse-parser.js';

const ev = (data: unknown, event?: string): SseEvent => ({
  event,
  data: typeof data === 'string' ? data : JSON.stringify(data),
  id: undefined,
  raw: Buffer.alloc(0),
});

describe('LlmAssembler', () => {
  test('chat completion chunks: text from deltas, tool calls by index, usage from the final chunk', () => {
    const a = new LlmAssembler('chat.completions', 1000);
    const chunk = (delta: unknown, finish: string | null = null) =>
      ev({ model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: finish }] });
    for (const e of [
      chunk({ role: 'assistant', content: '' }),
      chunk({ content: 'Hel' }),
      chunk({ content: 'lo' }),
      chunk({
        tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '' } }],
      }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] }),
      chunk({ tool_calls: [{ index: 1, id: 'call_2', function: { name: 'other', arguments: '{}' } }] }),
      chunk({ tool_calls: [{ index: 0, function: { arguments: '"x"}' } }] }),
      chunk({}, 'tool_calls'),
      ev({ model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } }),
      ev('[DONE]'),
    ])
      a.event(e);
    const r = a.result();
    assert.equal(r.text, 'Hello');
    assert.deepEqual(r.toolCalls, [
      { id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' },
      { id: 'call_2', name: 'other', arguments: '{}' },
    ]);
    assert.deepEqual(r.usage, { promptTokens: 5, completionTokens: 7, totalTokens: 12 });
    assert.equal(r.model, 'gpt-4o-mini');
    assert.equal(r.finishReason, 'tool_calls');
    assert.equal(chargedTokens(r.usage), 12);
  });

  test('Responses API events', () => {
    const a = new LlmAssembler('responses', 1000);
    a.event(ev({ type: 'response.created', response: { model: 'gpt-4o', usage: null } }, 'response.created'));
    a.event(ev({ type: 'response.output_text.delta', output_index: 0, delta: 'Hi ' }));
    a.event(ev({ type: 'response.output_text.delta', output_index: 0, delta: 'there' }));
    a.event(
      ev({
        type: 'response.output_item.added',
        output_index: 1,
        item: { type: 'function_call', call_id: 'c1', name: 'f' },
      }),
    );
    a.event(ev({ type: 'response.function_call_arguments.delta', output_index: 1, delta: '{"a"' }));
    a.event(ev({ type: 'response.function_call_arguments.delta', output_index: 1, delta: ':1}' }));
    a.event(
      ev({
        type: 'response.completed',
        response: {
          model: 'gpt-4o',
          status: 'completed',
          usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 },
        },
      }),
    );
    const r = a.result();
    assert.equal(r.text, 'Hi there');
    assert.deepEqual(r.toolCalls, [{ id: 'c1', name: 'f', arguments: '{"a":1}' }]);
    assert.deepEqual(r.usage, { inputTokens: 3, outputTokens: 4, totalTokens: 7 });
    assert.equal(r.finishReason, 'completed');
  });

  test('Anthropic message events: input usage from message_start, output from message_delta', () => {
    const a = new LlmAssembler('messages', 1000);
    a.event(
      ev({
        type: 'message_start',
        message: { model: 'claude-sonnet-4-5', usage: { input_tokens: 9, output_tokens: 1 } },
      }),
    );
    a.event(ev({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
    a.event(ev({ type: 'ping' }));
    a.event(ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Bon' } }));
    a.event(ev({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'jour' } }));
    a.event(
      ev({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get' } }),
    );
    a.event(ev({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"id":' } }));
    a.event(ev({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '2}' } }));
    a.event(ev({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 11 } }));
    const r = a.result();
    assert.equal(r.text, 'Bonjour');
    assert.deepEqual(r.toolCalls, [{ id: 'toolu_1', name: 'get', arguments: '{"id":2}' }]);
    assert.deepEqual(r.usage, { inputTokens: 9, outputTokens: 11 });
    assert.equal(chargedTokens(r.usage), 20);
    assert.equal(r.finishReason, 'tool_use');
  });

  test('whole JSON answers, and the text cap', () => {
    const chat = new LlmAssembler('chat.completions', 4);
    chat.body({
      model: 'm',
      choices: [{ index: 0, message: { content: 'abcdefgh' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
    const r = chat.result();
    assert.equal(r.text, 'abcd');
    assert.equal(r.textTruncated, true);
    assert.equal(r.usage?.totalTokens, 3);
    const msg = new LlmAssembler('messages', 100);
    msg.body({
      model: 'c',
      content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 2, output_tokens: 1 },
    });
    assert.deepEqual([msg.result().text, chargedTokens(msg.result().usage)], ['ok', 3]);
  });

  test('usageFromTail finds the last usage object in a cut JSON body', () => {
    const tail = '0.12,0.5]}],"model":"x","usage":{"prompt_tokens":40,"total_tokens":40}}';
    assert.deepEqual(usageFromTail(tail), { promptTokens: 40, totalTokens: 40 });
    assert.equal(usageFromTail('"usage":{"prompt_tokens":4'), undefined);
    assert.equal(usageFromTail('no usage here'), undefined);
  });
});
