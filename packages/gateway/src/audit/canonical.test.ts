import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, canonicalRecord, GENESIS_HASH, quote, recordHash } from './canonical.js';

describe('canonical encoding', () => {
  test('sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Read the keys off the text: JSON.parse would put the integer-like key '1' first again.
    const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map(
      (m) => JSON.parse(`"${m[1]}"`) as string,
    );
    assert.deepEqual(keys, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  test('no whitespace, nested objects sorted, undefined keys dropped, -0 as 0', () => {
    assert.equal(
      canonicalJson({ b: [3, { z: 1, a: null }], a: 'x', u: undefined, n: -0, f: 1.5e-7 }),
      '{"a":"x","b":[3,{"a":null,"z":1}],"f":1.5e-7,"n":0}',
    );
  });

  test('refuses what JSON cannot say exactly', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1n, () => 1, new Date(0), Buffer.from('x'), Symbol('s')]) {
      assert.throws(() => canonicalJson({ v: bad }), { code: 'ERR_AUDIT_INVALID' }, String(typeof bad));
    }
    let deep: unknown = {};
    for (let i = 0; i < 70; i++) deep = { d: deep };
    assert.throws(() => canonicalJson(deep), { code: 'ERR_AUDIT_INVALID' });
  });

  test('the record encoding is the canonical JSON of all fields, and its hash is pinned', () => {
    const f = {
      seq: 1,
      ts: '2025-01-02T03:04:05.678Z',
      kind: 'pg.query',
      session_id: 's-1',
      identity: 'user:alice',
      source: '203.0.113.7:51234',
      connection: 'prod-pg',
      rule: null,
      decision: 'allow',
      prev_hash: GENESIS_HASH,
    };
    const data = { sql: 'SELECT 1', rows: 1 };
    const text = canonicalRecord(f, canonicalJson(data));
    assert.equal(text, canonicalJson({ ...f, data }));
    assert.equal(recordHash(f, canonicalJson(data)), createHash('sha256').update(text).digest('hex'));
    // Pinned: a change here breaks every export already handed to an auditor.
    assert.equal(
      recordHash(f, canonicalJson(data)),
      'c7dc807ce4ca6497b949ab3ddd2d8f4e362d90b06c90941c315bc78f92c432c0',
    );
  });

  // Any UTF-16 code unit, lone surrogates included: the fast path must agree on all of them.
  const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });

  test('property: quote writes exactly what JSON.stringify writes', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, fc.string({ unit: 'binary' })), (s) => {
        assert.equal(quote(s), JSON.stringify(s));
      }),
      { numRuns: 2000 },
    );
    for (const s of [
      '',
      '"',
      '\\',
      '\u0000',
      '\u001f',
      '\u007f',
      '\u2028',
      '\ud800',
      '\udfff',
      '\ud83d\ude00',
      'a\nb',
    ]) {
      assert.equal(quote(s), JSON.stringify(s), JSON.stringify(s));
    }
  });

  test('property: canonicalJson equals a plain RFC 8785 reference on any JSON value', () => {
    // The reference: sort keys, let JSON.stringify write every scalar.
    const reference = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        return `{${Object.keys(o)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${reference(o[k])}`)
          .join(',')}}`;
      }
      return JSON.stringify(v);
    };
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), anyString, (v, key) => {
        assert.equal(canonicalJson(v), reference(v));
        const withKey = JSON.parse(`{${JSON.stringify(key)}:${JSON.stringify(v) ?? 'null'}}`) as unknown;
        assert.equal(canonicalJson(withKey), reference(withKey));
      }),
      { numRuns: 1000 },
    );
  });
});
