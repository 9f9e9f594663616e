import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AsciicastWriter, parseAsciicast } from './asciicast.js';

const clock = () => {
  let now = 1_000_000;
  return { now: () => now, tick: (ms: number) => (now += ms) };
};

test('asciicast v2: header, output/input/resize events with relative times', () => {
  const c = clock();
  const w = new AsciicastWriter({ width: 100, height: 30, timestamp: 1_700_000_000, term: 'xterm' }, { now: c.now });
  c.tick(500);
  w.output(Buffer.from('$ '));
  c.tick(250);
  w.input(Buffer.from('ls\r'));
  w.resize(120, 40);
  c.tick(1000);
  w.output(Buffer.from('a b\r\n'));
  const { header, events } = parseAsciicast(w.finish().toString('utf8'));
  assert.deepEqual(header, { version: 2, width: 100, height: 30, timestamp: 1_700_000_000, env: { TERM: 'xterm' } });
  assert.deepEqual(events, [
    { time: 0.5, code: 'o', data: '$ ' },
    { time: 0.75, code: 'i', data: 'ls\r' },
    { time: 0.75, code: 'r', data: '120x40' },
    { time: 1.75, code: 'o', data: 'a b\r\n' },
  ]);
  assert.equal(w.events, 4);
});

test('a UTF-8 character split across chunks is written whole, at every split point', () => {
  const text = 'é€😀 ok';
  const bytes = Buffer.from(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const w = new AsciicastWriter({ width: 80, height: 24, timestamp: 0 });
    w.output(bytes.subarray(0, cut));
    w.output(bytes.subarray(cut));
    const out = parseAsciicast(w.finish().toString())
      .events.map((e) => e.data)
      .join('');
    assert.equal(out, text, `cut at ${cut}`);
  }
});

test('the recording stops at its cap and says so with one marker', () => {
  const w = new AsciicastWriter({ width: 80, height: 24, timestamp: 0 }, { maxBytes: 200 });
  for (let i = 0; i < 50; i++) w.output(Buffer.from(`line ${i}\n`));
  assert.equal(w.truncated, true);
  const bytes = w.finish();
  const { events } = parseAsciicast(bytes.toString());
  const markers = events.filter((e) => e.code === 'm');
  assert.equal(markers.length, 1);
  assert.ok(events.length < 50);
  assert.ok(bytes.length < 300, `${bytes.length} bytes`);
});

test('JSON escaping keeps control characters and quotes intact', () => {
  const w = new AsciicastWriter({ width: 80, height: 24, timestamp: 0 });
  const data = '\u001b[1m"bold"\u001b[0m\t\\\r\n\u0000';
  w.output(Buffer.from(data));
  assert.equal(parseAsciicast(w.finish().toString()).events[0]?.data, data);
});
