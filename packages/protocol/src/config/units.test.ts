import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { WardError } from '../errors.js';
import { formatHostPort, isLoopback, parseHostPort } from './host-port.js';
import { parseByteSize, parseDuration } from './units.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WardError, `expected a WardError, got ${String(err)}`);
    assert.equal(err.kind, 'invalid_argument');
    assert.match(err.message, / Fix: /);
    return err.code;
  }
  assert.fail('expected a throw');
}

describe('parseDuration', () => {
  const good: Array<[string, number]> = [
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1_500],
    ['0s', 0],
    [' 10s ', 10_000],
  ];
  for (const [input, ms] of good)
    test(`${JSON.stringify(input)} is ${ms} ms`, () => assert.equal(parseDuration(input), ms));

  const bad = ['', '60', '10 s', '10sec', 's', '-5s', '1.5.5s', '5M', '0.5ms', '1e3s', '10s5', `${'9'.repeat(20)}d`];
  for (const input of bad) {
    test(`${JSON.stringify(input)} is refused`, () =>
      assert.equal(
        codeOf(() => parseDuration(input)),
        'ERR_CONFIG_BAD_DURATION',
      ));
  }
  test('a non-string is refused, not coerced', () => {
    assert.equal(
      codeOf(() => parseDuration(60 as unknown as string)),
      'ERR_CONFIG_BAD_DURATION',
    );
  });
});

describe('parseByteSize', () => {
  const good: Array<[string | number, number]> = [
    ['1MiB', 1_048_576],
    ['512KiB', 524_288],
    ['64KB', 64_000],
    ['1GiB', 1_073_741_824],
    ['1mib', 1_048_576],
    ['1.5KiB', 1_536],
    ['100B', 100],
    ['4096', 4096],
    [1_048_576, 1_048_576],
    [0, 0],
  ];
  for (const [input, bytes] of good)
    test(`${JSON.stringify(input)} is ${bytes} bytes`, () => assert.equal(parseByteSize(input), bytes));

  const bad: Array<string | number> = [
    '',
    'MiB',
    '1 XB',
    '1.5B',
    '-1KiB',
    1.5,
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '1e6',
  ];
  for (const input of bad) {
    test(`${JSON.stringify(input)} is refused`, () =>
      assert.equal(
        codeOf(() => parseByteSize(input)),
        'ERR_CONFIG_BAD_SIZE',
      ));
  }
});

describe('parseHostPort', () => {
  const good: Array<[string, string, number]> = [
    ['127.0.0.1:7401', '127.0.0.1', 7401],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['[::1]:7401', '::1', 7401],
    ['localhost:65535', 'localhost', 65535],
    ['gateway.example.com:443', 'gateway.example.com', 443],
  ];
  for (const [input, host, port] of good) {
    test(`${input}`, () => assert.deepEqual(parseHostPort(input), { host, port }));
  }
  const bad = [
    '7401',
    ':7401',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '::1:7401',
    '[127.0.0.1]:80',
    'bad_host!:80',
    'a:b:c',
  ];
  for (const input of bad) {
    test(`${JSON.stringify(input)} is refused`, () =>
      assert.equal(
        codeOf(() => parseHostPort(input)),
        'ERR_CONFIG_BAD_ADDRESS',
      ));
  }
  test('formatHostPort brackets IPv6 only', () => {
    assert.equal(formatHostPort({ host: '::1', port: 1 }), '[::1]:1');
    assert.equal(formatHostPort({ host: '10.0.0.1', port: 2 }), '10.0.0.1:2');
  });
});

describe('isLoopback', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.9.8.7', true],
    ['::1', true],
    ['localhost', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['127.example.com', false],
    ['localhost.example.com', false],
  ];
  for (const [host, expected] of cases)
    test(`${host} → ${expected}`, () => assert.equal(isLoopback({ host, port: 1 }), expected));
});

describe('properties', () => {
  const MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  test('parseDuration(n + unit) is n times the unit, and chained parts add up', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(10_000), fc.constantFrom(...(Object.keys(MS) as (keyof typeof MS)[]))), {
          minLength: 1,
          maxLength: 4,
        }),
        (parts) => {
          const text = parts.map(([n, u]) => `${n}${u}`).join('');
          assert.equal(
            parseDuration(text),
            parts.reduce((sum, [n, u]) => sum + n * MS[u], 0),
          );
        },
      ),
    );
  });

  test('parseByteSize accepts any unit spelling and equals n times the unit', () => {
    const units = { b: 1, kb: 1e3, mb: 1e6, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 } as const;
    fc.assert(
      fc.property(
        fc.nat(100_000),
        fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])),
        fc.boolean(),
        (n, unit, upper) => {
          const spelt = upper ? unit.toUpperCase() : unit;
          assert.equal(parseByteSize(`${n}${spelt}`), n * units[unit]);
        },
      ),
    );
  });

  test('parseHostPort(formatHostPort(x)) is x for IPv4, IPv6 and names', () => {
    const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());
    fc.assert(
      fc.property(host, fc.integer({ min: 0, max: 65535 }), (h, port) => {
        assert.deepEqual(parseHostPort(formatHostPort({ host: h, port })), { host: h, port });
      }),
    );
  });
});
