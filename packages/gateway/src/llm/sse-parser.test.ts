import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { formatSseEvent, type SseEvent, SseParser } from './sse-parser.js';

const STREAM = [
  ': a comment first\n\n',
  'data: {"a":1}\n\n',
  'event: response.output_text.delta\r\ndata: {"delta":"h\u00e9llo"}\r\n\r\n',
  'id: 7\rdata: line one\rdata: line two\r\r',
  'data:no-space\n\n',
  'data: [DONE]\n\n',
].join('');

const simple = (events: SseEvent[]) => events.map((e) => [e.event ?? null, e.data, e.id ?? null]);

function parseAll(chunks: Buffer[], max = 1 << 20): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser({ maxEventBytes: max, onOversize: 'skip' });
  const events = chunks.flatMap((c) => parser.push(c));
  return { events, parser };
}

describe('SseParser', () => {
  const bytes = Buffer.from(STREAM, 'utf8');
  const expected = [
    [null, '', null], // the comment-only event still reaches a rewriting relay
    [null, '{"a":1}', null],
    ['response.output_text.delta', '{"delta":"h\u00e9llo"}', null],
    [null, 'line one\nline two', '7'],
    [null, 'no-space', null],
    [null, '[DONE]', null],
  ];

  test('whole stream: every field, LF, CRLF and CR line ends', () => {
    const { events } = parseAll([bytes]);
    assert.deepEqual(simple(events), expected);
    assert.equal(Buffer.concat(events.map((e) => e.raw)).toString('utf8'), STREAM);
  });

  test('split at every byte offset (inside CRLF and inside UTF-8) gives the same events and raw bytes', () => {
    let checked = 0;
    for (let i = 1; i < bytes.length; i++) {
      const { events } = parseAll([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(simple(events), expected, `split at ${i}`);
      assert.equal(Buffer.concat(events.map((e) => e.raw)).toString('utf8'), STREAM, `raw, split at ${i}`);
      checked++;
    }
    assert.equal(checked, bytes.length - 1);
  });

  test('byte by byte', () => {
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(simple(parseAll(chunks).events), expected);
  });

  test('an oversized event is skipped and counted, and the stream goes on; memory stays bounded', () => {
    const big = `data: ${'x'.repeat(5000)}\n\ndata: after\n\n`;
    const parser = new SseParser({ maxEventBytes: 1024, onOversize: 'skip' });
    const events: SseEvent[] = [];
    for (let i = 0; i < big.length; i += 100) events.push(...parser.push(Buffer.from(big.slice(i, i + 100))));
    assert.deepEqual(simple(events), [[null, 'after', null]]);
    assert.equal(parser.skipped, 1);
  });

  test('in throw mode an oversized event is refused with ERR_LLM_SSE_EVENT_TOO_LARGE', () => {
    const parser = new SseParser({ maxEventBytes: 64, onOversize: 'throw' });
    assert.throws(
      () => parser.push(Buffer.from(`data: ${'y'.repeat(100)}`)),
      (err: unknown) => err instanceof WardError && err.code === 'ERR_LLM_SSE_EVENT_TOO_LARGE',
    );
  });

  test('formatSseEvent round-trips through the parser', () => {
    const out = formatSseEvent({ event: 'x', data: 'a\nb', id: undefined });
    assert.deepEqual(simple(parseAll([out]).events), [['x', 'a\nb', null]]);
  });
});
