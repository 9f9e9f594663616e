import assert from 'node:assert/strict';
import { StringDecoder } from 'node:string_decoder';
import { test } from 'node:test';
import { AsciicastWriter } from './asciicast.js';
import { Utf8JsonEncoder } from './utf8-json.js';

/** What the encoder must equal: Node's StringDecoder, then JSON.stringify, as UTF-8. */
function reference(chunks: Uint8Array[]): Buffer[] {
  const decoder = new StringDecoder('utf8');
  const body = (text: string) => Buffer.from(JSON.stringify(text).slice(1, -1), 'utf8');
  return [...chunks.map((c) => body(decoder.write(Buffer.from(c)))), body(decoder.end())];
}

function encode(chunks: Uint8Array[]): Buffer[] {
  const encoder = new Utf8JsonEncoder();
  const out = (n: number) => Buffer.alloc(Utf8JsonEncoder.maxBytes(n));
  const results = chunks.map((c) => {
    const buf = out(c.length);
    return buf.subarray(0, encoder.write(c, buf, 0));
  });
  const last = out(0);
  return [...results, last.subarray(0, encoder.end(last, 0))];
}

/** Deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes that exercise every branch: escapes, boundaries of each lead byte's ranges, valid characters. */
const PIECES: number[][] = [
  [0x41],
  [0x20],
  [0x00],
  [0x08],
  [0x09],
  [0x0a],
  [0x0c],
  [0x0d],
  [0x1b],
  [0x1f],
  [0x22],
  [0x5c],
  [0x7f],
  [0x80],
  [0xbf],
  [0xc0],
  [0xc1],
  [0xc2],
  [0xdf],
  [0xe0],
  [0xe1],
  [0xec],
  [0xed],
  [0xee],
  [0xef],
  [0xf0],
  [0xf1],
  [0xf4],
  [0xf5],
  [0xf7],
  [0xf8],
  [0xfe],
  [0xff],
  [0x9f],
  [0xa0],
  [0x8f],
  [0x90],
  ...['é', '€', '😀', '\u2028', '\u2029', '\ufffd', '\u07ff', '\uffff', '\u{10ffff}'].map((s) => [...Buffer.from(s)]),
  [0xed, 0xa0, 0x80], // an encoded surrogate: three U+FFFD
  [0xe0, 0x80, 0x80], // overlong
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
];

function randomBytes(random: () => number, pieces: number): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < pieces; i++) {
    if (random() < 0.2) out.push(Math.floor(random() * 256));
    else out.push(...(PIECES[Math.floor(random() * PIECES.length)] as number[]));
  }
  return Uint8Array.from(out);
}

function randomSplit(random: () => number, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const n = random() < 0.1 ? 0 : 1 + Math.floor(random() * (random() < 0.5 ? 4 : 40));
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

test('every piece alone and after every other piece, each split at every offset, matches StringDecoder + JSON.stringify', () => {
  for (const a of PIECES) {
    for (const b of PIECES) {
      const bytes = Uint8Array.from([...a, ...b]);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
        assert.deepEqual(encode(chunks), reference(chunks), `${Buffer.from(bytes).toString('hex')} cut at ${cut}`);
      }
    }
  }
});

test('random byte streams cut at random points match StringDecoder + JSON.stringify, chunk by chunk', () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const random = prng(seed);
    const chunks = randomSplit(random, randomBytes(random, 1 + Math.floor(random() * 60)));
    assert.deepEqual(encode(chunks), reference(chunks), `seed ${seed}`);
  }
});

test('uniformly random bytes in 32 KiB chunks (a binary bulk transfer) match, and the output stays within maxBytes', () => {
  const random = prng(42);
  const chunks = Array.from({ length: 8 }, () =>
    Uint8Array.from({ length: 32 * 1024 + Math.floor(random() * 5) }, () => Math.floor(random() * 256)),
  );
  const got = encode(chunks);
  assert.deepEqual(got, reference(chunks));
  for (const [i, chunk] of chunks.entries()) assert.ok((got[i]?.length ?? 0) <= Utf8JsonEncoder.maxBytes(chunk.length));
  // The worst case: every byte a control character.
  const controls = new Uint8Array(1000).fill(0x01);
  assert.equal(encode([controls])[0]?.length, 6000);
  assert.ok(6000 <= Utf8JsonEncoder.maxBytes(1000));
});

test('AsciicastWriter writes the same lines as decoding to a string and JSON.stringify', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = prng(seed);
    let now = 5_000;
    const writer = new AsciicastWriter({ width: 80, height: 24, timestamp: 0 }, { now: () => now });
    const expected: string[] = [];
    const time = () => Number(((now - 5_000) / 1000).toFixed(6));
    const decoders = { o: new StringDecoder('utf8'), i: new StringDecoder('utf8') };
    const chunks = randomSplit(random, randomBytes(random, 80));
    for (const chunk of chunks) {
      now += Math.floor(random() * 2000);
      const code = random() < 0.5 ? 'o' : 'i';
      const text = decoders[code].write(Buffer.from(chunk));
      if (text.length > 0) expected.push(JSON.stringify([time(), code, text]));
      code === 'o' ? writer.output(chunk) : writer.input(chunk);
    }
    for (const code of ['o', 'i'] as const) {
      const text = decoders[code].end();
      if (text.length > 0) expected.push(JSON.stringify([time(), code, text]));
    }
    const lines = writer.finish().toString('utf8').split('\n').slice(1, -1);
    assert.deepEqual(lines, expected, `seed ${seed}`);
  }
});
