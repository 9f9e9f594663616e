import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { RecordRow } from './audit-log.js';
import { recordLine } from './export.js';
import { parseExportLine, parseExportLineSlow, parseRecordFast } from './export-line.js';
import { encodeJcs, GENESIS_HASH, recordHash } from './jcs.js';

// Mostly strings that need no escape (the fast path's case), sometimes any UTF-16 code units
// (lone surrogates, controls, quotes, backslashes).
const simple = fc.stringMatching(/^[a-z0-9 .:@é\u2028-]{0,12}$/);
const anyString = fc.oneof(
  { arbitrary: simple, weight: 8 },
  { arbitrary: fc.constantFrom('pg.query', 'user:alice', '203.0.113.7:5000', 'prod-pg', 'allow'), weight: 4 },
  {
    arbitrary: fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      maxLength: 12,
    }),
    weight: 1,
  },
  { arbitrary: fc.constantFrom('"', '\\', '\n', '😀', '\ud800'), weight: 1 },
);
const json: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1, 1.5, 1e21, 2 ** 53, -0),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    anyString,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(anyString, tie('value'), { maxKeys: 3 }),
  ),
})).value;
const optional = fc.option(anyString, { nil: null });

/** A row as the store holds it; `rehash` makes its hash the true one. */
const row = fc
  .record({
    seq: fc.oneof(fc.integer({ min: 0, max: 1_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
    ts: anyString,
    kind: anyString,
    session_id: optional,
    identity: optional,
    source: optional,
    connection: optional,
    rule: optional,
    decision: optional,
    data: fc.dictionary(anyString, json, { maxKeys: 5 }),
    prev_hash: fc.oneof(fc.constant(GENESIS_HASH), anyString),
    rehash: fc.boolean(),
    hash: anyString,
  })
  .map(({ data, rehash, hash, ...f }): RecordRow => {
    const dataJson = encodeJcs(data);
    return { ...f, data: dataJson, hash: rehash ? recordHash(f, dataJson) : hash };
  });

/** Ways a line can differ from what the exporter writes, each still often valid JSON. */
const variant = fc.oneof(
  { arbitrary: fc.constant((l: string) => l), weight: 10 },
  fc.constant((l: string) => l.replace('"data":{', '"data": {')),
  fc.constant((l: string) => `${l} `),
  fc.constant((l: string) => l.replace(/"seq":(\d+)/, '"seq":$1.0')),
  fc.constant((l: string) => l.replace(/"seq":(\d+)/, '"seq":0$1')),
  fc.constant((l: string) => JSON.stringify(JSON.parse(l), null, 1).replaceAll('\n', '')),
  fc.constant((l: string) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    return JSON.stringify(Object.fromEntries(Object.entries(o).reverse()));
  }),
  fc.constant((l: string) => l.replace(/,"hash":/, ',"data":{},"hash":')),
  fc.constant((l: string) => l.replace(/\}$/, ',"data":{"x":1}}')),
  fc.constant((l: string) => l.replace('"data":{', '"data":{"a":1,"a":2,')),
  fc
    .tuple(fc.nat(), fc.constantFrom('', ' ', '"', '\\', ',', '{', '}', '[', ']', ':', '0', '-', 'e', 'é', '\ud800'))
    .map(
      ([at, s]) =>
        (l: string) =>
          l.slice(0, at % (l.length + 1)) + s + l.slice((at % (l.length + 1)) + (at % 2)),
    ),
);

describe('export line parser', () => {
  test('property: the fast path returns exactly what the general parser returns, or nothing', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(row, variant, (r, change) => {
        const line = change(recordLine(r));
        total++;
        const quick = parseRecordFast(line);
        const general = parseExportLineSlow(line);
        assert.deepEqual(parseExportLine(line), general);
        if (quick === undefined) return;
        fast++;
        assert.deepEqual(quick, general);
      }),
      { numRuns: 4000 },
    );
    assert.equal(total, 4000);
    // The property is only worth something if both paths ran often.
    assert.ok(fast > 400 && fast < total - 400, `fast path taken ${fast} times of ${total}`);
  });

  test('canonical data is read as it stands; anything else falls back to the general parser', () => {
    const base: RecordRow = {
      seq: 7,
      ts: '2025-01-02T03:04:05.678Z',
      kind: 'pg.query',
      session_id: 's-1',
      identity: 'user:alice',
      source: '203.0.113.7:5000',
      connection: 'prod-pg',
      rule: null,
      decision: 'allow',
      data: '',
      prev_hash: GENESIS_HASH,
      hash: '',
    };
    const line = (dataJson: string) => {
      const r = { ...base, data: dataJson };
      return recordLine({ ...r, hash: recordHash(r, dataJson) });
    };
    const accepted = [
      '{}',
      '{"a":[],"b":{},"c":[1,-2.5,1e+21,0,true,false,null],"d":"x\u2028y"}',
      '{"10":1,"9":2,"__proto__":{"z":[[["deep"]]]}}',
    ];
    for (const d of accepted) {
      const quick = parseRecordFast(line(d));
      assert.equal(quick?.t, 'record', d);
      assert.deepEqual(quick, parseExportLineSlow(line(d)));
      assert.equal(quick.t === 'record' && quick.hashOk, true);
    }
    // Valid JSON, not canonical or not simple: the general parser decides.
    const declined = [
      '{"b":1,"a":2}',
      '{"a":1,"a":2}',
      '{"a":1.0}',
      '{"a":-0}',
      '{"a":1E5}',
      '{"a":"\\n"}',
      '{"a":"😀"}',
    ];
    for (const d of declined) {
      assert.equal(parseRecordFast(line(d)), undefined, d);
      assert.equal(parseExportLine(line(d)).t, 'record', d);
    }
    let deep = '1';
    for (let i = 0; i < 70; i++) deep = `[${deep}]`;
    assert.equal(parseRecordFast(line(`{"d":${deep}}`)), undefined);
    assert.deepEqual(parseExportLine(line(`{"d":${deep}}`)), {
      t: 'malformed',
      reason: 'not a well-formed record line',
    });
  });
});
