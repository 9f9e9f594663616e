// Property tests (fast-check): random message sequences cut at random places parse to the
// same messages; random bytes only ever raise WardError, and the codec never allocates more
// than the bytes it was given, nor more than its limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import fc from 'fast-check';
import type { BackendMessage } from './backend-messages.js';
import { parseBackendMessage } from './backend-parser.js';
import { BackendMessageSplitter } from './backend-splitter.js';
import type { FrontendMessage } from './frontend-messages.js';
import { FrontendParser } from './frontend-parser.js';
import { chunkBy, feedFrontend, fieldsOf, reserializeBackend, reserializeFrontend } from './testing.js';

const NO_WIRE = { raw: Buffer.alloc(0), byteLength: 0 };
const ALLOWED = new Set(['ERR_PG_PROTOCOL', 'ERR_PG_MESSAGE_TOO_LARGE', 'ERR_PG_UNSUPPORTED_PROTOCOL']);

const text = fc.string({ unit: 'binary', maxLength: 24 }).map((s) => s.replaceAll('\0', ''));
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const nullableBytes = fc.option(bytes, { nil: null });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const int32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const oid = fc.integer({ min: 0, max: 0xffff_ffff });
const target = fc.constantFrom<'S' | 'P'>('S', 'P');
// Plain prototypes, so that parsed messages compare deep-equal to the generated ones.
const rec = ((model: Record<string, fc.Arbitrary<unknown>>, constraints: object = {}) =>
  fc.record(model, { ...constraints, noNullPrototype: true })) as typeof fc.record;
const list = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { maxLength: 6 });
const chunkSizes = fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 });

type Spec<T> = T extends unknown ? Omit<T, 'raw' | 'byteLength'> : never;

const taggedFrontend: fc.Arbitrary<Spec<FrontendMessage>> = fc.oneof(
  rec({ type: fc.constant('Query' as const), query: text }),
  rec({ type: fc.constant('Parse' as const), name: text, query: text, paramTypes: list(oid) }),
  rec({
    type: fc.constant('Bind' as const),
    portal: text,
    statement: text,
    paramFormats: list(int16),
    params: list(nullableBytes),
    resultFormats: list(int16),
  }),
  rec({ type: fc.constant('Describe' as const), target, name: text }),
  rec({ type: fc.constant('Close' as const), target, name: text }),
  rec({ type: fc.constant('Execute' as const), portal: text, maxRows: int32 }),
  rec({ type: fc.constantFrom('Sync' as const, 'Flush' as const, 'CopyDone' as const) }),
  rec({ type: fc.constant('CopyData' as const), data: bytes }),
  rec({ type: fc.constant('CopyFail' as const), message: text }),
  rec({
    type: fc.constant('FunctionCall' as const),
    functionOid: oid,
    argFormats: list(int16),
    args: list(nullableBytes),
    resultFormat: int16,
  }),
  rec({ type: fc.constant('AuthenticationResponse' as const), body: bytes }),
);

const startup = fc
  .uniqueArray(
    fc.tuple(
      text.filter((s) => s !== ''),
      text,
    ),
    { maxLength: 5, selector: ([k]) => k },
  )
  .map((pairs) => ({
    type: 'StartupMessage' as const,
    majorVersion: 3,
    minorVersion: 0,
    parameters: new Map(pairs),
  }));

const backend: fc.Arbitrary<Spec<BackendMessage>> = fc.oneof(
  rec({ type: fc.constantFrom('AuthenticationOk' as const, 'AuthenticationCleartextPassword' as const) }),
  rec({
    type: fc.constant('AuthenticationSASL' as const),
    mechanisms: list(text.filter((s) => s !== '')),
  }),
  rec({ type: fc.constant('AuthenticationSASLContinue' as const), data: bytes }),
  rec({ type: fc.constant('ParameterStatus' as const), name: text, value: text }),
  rec({ type: fc.constant('BackendKeyData' as const), processId: int32, secretKey: int32 }),
  rec({
    type: fc.constant('ReadyForQuery' as const),
    status: fc.constantFrom('I' as const, 'T' as const, 'E' as const),
  }),
  rec({
    type: fc.constant('RowDescription' as const),
    fields: list(
      rec({
        name: text,
        tableOid: oid,
        columnAttributeNumber: int16,
        dataTypeOid: oid,
        dataTypeSize: int16,
        typeModifier: int32,
        format: int16,
      }),
    ),
  }),
  rec({ type: fc.constant('DataRow' as const), values: list(nullableBytes) }),
  rec({ type: fc.constant('CommandComplete' as const), tag: text }),
  rec({
    type: fc.constantFrom('ErrorResponse' as const, 'NoticeResponse' as const),
    fields: rec(
      { severity: text, code: text, message: text, detail: text, hint: text, position: text, routine: text },
      { requiredKeys: [] },
    ),
  }),
  rec({
    type: fc.constantFrom(
      'ParseComplete' as const,
      'BindComplete' as const,
      'CloseComplete' as const,
      'NoData' as const,
      'PortalSuspended' as const,
      'EmptyQueryResponse' as const,
      'CopyDone' as const,
    ),
  }),
  rec({ type: fc.constant('ParameterDescription' as const), paramTypes: list(oid) }),
  rec({
    type: fc.constantFrom('CopyInResponse' as const, 'CopyOutResponse' as const),
    format: fc.integer({ min: 0, max: 1 }),
    columnFormats: list(int16),
  }),
  rec({ type: fc.constant('CopyData' as const), data: bytes }),
  rec({ type: fc.constant('NotificationResponse' as const), processId: int32, channel: text, payload: text }),
  rec({
    type: fc.constant('NegotiateProtocolVersion' as const),
    newestMinorVersion: int32,
    unrecognizedOptions: list(text),
  }),
);

/** Valid traffic with a few bytes overwritten: reaches deep into the parsers, unlike pure noise. */
const mutated = <T>(arb: fc.Arbitrary<T>, toBytes: (spec: T) => Buffer): fc.Arbitrary<Uint8Array> =>
  fc
    .tuple(
      fc.array(arb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    )
    .map(([specs, edits]) => {
      const buf = Buffer.concat(specs.map(toBytes));
      for (const [pos, value] of edits) buf[pos % buf.byteLength] = value;
      return buf;
    });

const noisyInput = fc.oneof(
  fc.uint8Array({ maxLength: 400 }),
  mutated(taggedFrontend, (s) => reserializeFrontend({ ...s, ...NO_WIRE } as FrontendMessage)),
  mutated(backend, (s) => reserializeBackend({ ...s, ...NO_WIRE } as BackendMessage)),
);

// Records the largest Buffer.allocUnsafe the codec asks for while a property runs.
let largestAlloc = 0;
const realAllocUnsafe = Buffer.allocUnsafe;
before(() => {
  Buffer.allocUnsafe = ((size: number) => {
    largestAlloc = Math.max(largestAlloc, size);
    return realAllocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;
});
after(() => {
  Buffer.allocUnsafe = realAllocUnsafe;
});

describe('codec properties', () => {
  test('frontend: random sessions, randomly chunked, parse to the messages that were sent', () => {
    let runs = 0;
    fc.assert(
      fc.property(startup, fc.array(taggedFrontend, { maxLength: 12 }), chunkSizes, (first, rest, sizes) => {
        const specs: Spec<FrontendMessage>[] = [first, ...rest];
        const wire = specs.map((s) => reserializeFrontend({ ...s, ...NO_WIRE } as FrontendMessage));
        const got = feedFrontend(new FrontendParser(), chunkBy(Buffer.concat(wire), sizes));
        assert.equal(got.length, specs.length);
        got.forEach((m, i) => {
          assert.deepEqual(fieldsOf(m), specs[i]);
          assert.deepEqual(m.raw, wire[i]);
        });
        runs++;
      }),
      { numRuns: 300 },
    );
    assert.equal(runs, 300);
  });

  test('backend: random responses, randomly chunked, split and parse to what was sent', () => {
    let runs = 0;
    fc.assert(
      fc.property(fc.array(backend, { minLength: 1, maxLength: 12 }), chunkSizes, (specs, sizes) => {
        const wire = specs.map((s) => reserializeBackend({ ...s, ...NO_WIRE } as BackendMessage));
        const splitter = new BackendMessageSplitter();
        const packets = chunkBy(Buffer.concat(wire), sizes).flatMap((c) => splitter.push(c));
        assert.equal(packets.length, specs.length);
        packets.forEach((p, i) => {
          assert.deepEqual(p.raw, wire[i]);
          assert.deepEqual(fieldsOf(parseBackendMessage(p.raw)), specs[i]);
        });
        runs++;
      }),
      { numRuns: 300 },
    );
    assert.equal(runs, 300);
  });

  test('random bytes: only WardError, buffering and allocation bounded by the limit and the input', () => {
    let errors = 0;
    let parsedSome = 0;
    let runs = 0;
    fc.assert(
      fc.property(
        noisyInput,
        chunkSizes,
        fc.constantFrom('startup', 'normal', 'backend'),
        fc.integer({ min: 16, max: 300 }),
        (input, sizes, mode, limit) => {
          const chunks = chunkBy(Buffer.from(input), sizes);
          const parser = new FrontendParser({ maxMessageSize: limit });
          const splitter = new BackendMessageSplitter({ maxMessageSize: limit });
          if (mode === 'normal') parser.startupDone();
          largestAlloc = 0;
          let pushed = 0;
          let messages = 0;
          try {
            for (const c of chunks) {
              pushed += c.byteLength;
              if (mode === 'backend') {
                for (const p of splitter.push(c)) {
                  messages++;
                  try {
                    parseBackendMessage(p.raw);
                  } catch (err) {
                    assert.ok(err instanceof WardError && err.code === 'ERR_PG_PROTOCOL', String(err));
                  }
                }
                assert.ok(splitter.buffered <= limit);
              } else {
                messages += feedFrontend(parser, [c]).length;
                assert.ok(parser.buffered <= (parser.phase === 'normal' ? limit : 10_000));
              }
              assert.ok(largestAlloc <= pushed, `allocated ${largestAlloc} after receiving ${pushed}`);
            }
          } catch (err) {
            assert.ok(err instanceof WardError, `not a WardError: ${String(err)}`);
            assert.ok(ALLOWED.has(err.code), err.code);
            errors++;
          }
          assert.ok(largestAlloc <= Math.max(limit + 1, 10_000));
          if (messages > 0) parsedSome++;
          runs++;
        },
      ),
      { numRuns: 2000 },
    );
    assert.equal(runs, 2000);
    // Both outcomes must actually occur, or the property proves little.
    assert.ok(errors > 100, `errors in ${errors} runs`);
    assert.ok(parsedSome > 100, `messages in ${parsedSome} runs`);
  });

  test('any claimed length above the limit is refused from the 5-byte header alone', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...'QPBFdp'),
        fc.integer({ min: 17, max: 0x7fff_ffff }),
        fc.integer({ min: 16, max: 1 << 20 }),
        (tag, length, limit) => {
          fc.pre(length > limit);
          const header = Buffer.alloc(5);
          header.write(tag, 0, 'latin1');
          header.writeInt32BE(length, 1);
          const parser = new FrontendParser({ maxMessageSize: limit });
          parser.startupDone();
          largestAlloc = 0;
          assert.throws(
            () => parser.push(header),
            (err) => err instanceof WardError && err.code === 'ERR_PG_MESSAGE_TOO_LARGE',
          );
          assert.equal(parser.buffered, 0);
          assert.equal(largestAlloc, 0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
