import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { serialize } from 'pg-protocol';
import { decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse } from './authentication-response.js';
import type { FrontendMessage } from './frontend-messages.js';
import { FrontendParser } from './frontend-parser.js';
import { FrontendSerializer as F } from './frontend-serializer.js';
import { everySplit, feedFrontend, fieldsOf, reserializeFrontend } from './testing.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

// Each case: the bytes a client sends, and the fields the parser must find in them. Several
// are built by pg-protocol's serializer (what node-postgres really sends), not by ours.
const cases: Array<{ name: string; bytes: Buffer; expect: Record<string, unknown> }> = [
  { name: 'SSLRequest (pg-protocol)', bytes: serialize.requestSsl(), expect: { type: 'SSLRequest' } },
  { name: 'GSSENCRequest', bytes: F.gssEncRequest(), expect: { type: 'GSSENCRequest' } },
  {
    name: 'CancelRequest (pg-protocol)',
    bytes: serialize.cancel(4242, -123456789),
    expect: { type: 'CancelRequest', processId: 4242, secretKey: -123456789 },
  },
  {
    name: 'StartupMessage (pg-protocol)',
    // pg-protocol appends client_encoding itself.
    bytes: serialize.startup({ user: 'alice', database: 'app' }),
    expect: {
      type: 'StartupMessage',
      majorVersion: 3,
      minorVersion: 0,
      parameters: new Map([
        ['user', 'alice'],
        ['database', 'app'],
        ['client_encoding', 'UTF8'],
      ]),
    },
  },
  {
    name: 'StartupMessage 3.2 with a _pq_ option',
    bytes: F.startupMessage({ user: 'bob', '_pq_.compression': 'on' }, 2),
    expect: {
      type: 'StartupMessage',
      majorVersion: 3,
      minorVersion: 2,
      parameters: new Map([
        ['user', 'bob'],
        ['_pq_.compression', 'on'],
      ]),
    },
  },
  {
    name: 'Query (pg-protocol)',
    bytes: serialize.query("select 'é', 1"),
    expect: { type: 'Query', query: "select 'é', 1" },
  },
  { name: 'empty Query', bytes: F.query(''), expect: { type: 'Query', query: '' } },
  {
    name: 'Parse (pg-protocol)',
    bytes: serialize.parse({ name: 's1', text: 'select $1, $2', types: [23, 25] }),
    expect: { type: 'Parse', name: 's1', query: 'select $1, $2', paramTypes: [23, 25] },
  },
  {
    name: 'Parse with an OID above 2^31',
    bytes: F.parse({ query: 'select $1', paramTypes: [0xffff_fff0] }),
    expect: { type: 'Parse', name: '', query: 'select $1', paramTypes: [0xffff_fff0] },
  },
  {
    name: 'Bind (pg-protocol, mixed text/binary/null)',
    bytes: serialize.bind({ portal: 'p', statement: 's1', values: ['42', null, Buffer.from([1, 2, 3])] }),
    expect: {
      type: 'Bind',
      portal: 'p',
      statement: 's1',
      paramFormats: [0, 0, 1],
      params: [b('42'), null, Buffer.from([1, 2, 3])],
      resultFormats: [0],
    },
  },
  {
    name: 'Bind with explicit formats and an empty value',
    bytes: F.bind({ paramFormats: [1], params: [Buffer.alloc(0)], resultFormats: [1, 0] }),
    expect: {
      type: 'Bind',
      portal: '',
      statement: '',
      paramFormats: [1],
      params: [Buffer.alloc(0)],
      resultFormats: [1, 0],
    },
  },
  {
    name: 'Describe portal (pg-protocol)',
    bytes: serialize.describe({ type: 'P', name: 'p1' }),
    expect: { type: 'Describe', target: 'P', name: 'p1' },
  },
  { name: 'Describe statement', bytes: F.describe('S', 's1'), expect: { type: 'Describe', target: 'S', name: 's1' } },
  {
    name: 'Execute (pg-protocol)',
    bytes: serialize.execute({ portal: 'p1', rows: 100 }),
    expect: { type: 'Execute', portal: 'p1', maxRows: 100 },
  },
  {
    name: 'Close (pg-protocol)',
    bytes: serialize.close({ type: 'S', name: 's1' }),
    expect: { type: 'Close', target: 'S', name: 's1' },
  },
  { name: 'Sync (pg-protocol)', bytes: serialize.sync(), expect: { type: 'Sync' } },
  { name: 'Flush (pg-protocol)', bytes: serialize.flush(), expect: { type: 'Flush' } },
  { name: 'Terminate (pg-protocol)', bytes: serialize.end(), expect: { type: 'Terminate' } },
  {
    name: 'CopyData (pg-protocol)',
    bytes: serialize.copyData(b('1\talice\n')),
    expect: { type: 'CopyData', data: b('1\talice\n') },
  },
  { name: 'CopyDone (pg-protocol)', bytes: serialize.copyDone(), expect: { type: 'CopyDone' } },
  {
    name: 'CopyFail (pg-protocol)',
    bytes: serialize.copyFail('aborted by user'),
    expect: { type: 'CopyFail', message: 'aborted by user' },
  },
  {
    name: 'FunctionCall',
    bytes: F.functionCall({
      functionOid: 1598,
      argFormats: [1],
      args: [Buffer.from([0, 0, 0, 7]), null],
      resultFormat: 1,
    }),
    expect: {
      type: 'FunctionCall',
      functionOid: 1598,
      argFormats: [1],
      args: [Buffer.from([0, 0, 0, 7]), null],
      resultFormat: 1,
    },
  },
  {
    name: 'PasswordMessage (pg-protocol)',
    bytes: serialize.password('s3cret'),
    expect: { type: 'AuthenticationResponse', body: b('s3cret\0') },
  },
  {
    name: 'SASLInitialResponse (pg-protocol)',
    bytes: serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'),
    expect: {
      type: 'AuthenticationResponse',
      body: Buffer.concat([b('SCRAM-SHA-256\0'), Buffer.from([0, 0, 0, 11]), b('n,,n=,r=abc')]),
    },
  },
  {
    name: 'SASLResponse (pg-protocol)',
    bytes: serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz'),
    expect: { type: 'AuthenticationResponse', body: b('c=biws,r=abc,p=xyz') },
  },
];

const STARTUP_TYPES = new Set(['SSLRequest', 'GSSENCRequest', 'CancelRequest', 'StartupMessage']);

/** A parser already past the startup phase when the message is a tagged one. */
function parserFor(expectType: unknown): FrontendParser {
  const parser = new FrontendParser();
  if (!STARTUP_TYPES.has(expectType as string)) parser.startupDone();
  return parser;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WardError, `expected a WardError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected an error');
}

describe('FrontendParser: every message type', () => {
  for (const c of cases) {
    test(c.name, () => {
      const whole = feedFrontend(parserFor(c.expect.type), [c.bytes]);
      assert.equal(whole.length, 1);
      const msg = whole[0]!;
      assert.deepEqual(fieldsOf(msg), c.expect);
      assert.deepEqual(msg.raw, c.bytes);
      assert.equal(msg.byteLength, c.bytes.byteLength);
      // Lossless: the fields alone rebuild the exact bytes.
      assert.deepEqual(reserializeFrontend(msg), c.bytes);

      let splits = 0;
      for (const chunks of everySplit(c.bytes)) {
        const parser = parserFor(c.expect.type);
        const got = feedFrontend(parser, chunks);
        assert.equal(got.length, 1, `split into ${chunks.map((x) => x.byteLength).join('+')}`);
        assert.deepEqual(fieldsOf(got[0]!), c.expect);
        assert.deepEqual(got[0]!.raw, c.bytes);
        assert.equal(parser.buffered, 0);
        splits++;
      }
      assert.equal(splits, c.bytes.byteLength + 1);
    });
  }

  test('a whole pipelined session at every split offset gives the same messages', () => {
    const tagged = cases.filter((c) => !STARTUP_TYPES.has(c.expect.type as string) && c.expect.type !== 'Terminate');
    const stream = Buffer.concat([
      F.sslRequest(),
      F.startupMessage({ user: 'alice' }),
      ...tagged.map((c) => c.bytes),
      F.terminate(),
    ]);
    const reference = feedFrontend(new FrontendParser(), [stream]).map((m) => m.type);
    assert.equal(reference.length, tagged.length + 3);
    let runs = 0;
    for (const chunks of everySplit(stream)) {
      const got = feedFrontend(new FrontendParser(), chunks);
      assert.deepEqual(
        got.map((m) => m.type),
        reference,
      );
      assert.deepEqual(Buffer.concat(got.map((m) => m.raw)), stream);
      runs++;
    }
    assert.equal(runs, stream.byteLength + 1);
  });

  test('a message inside one chunk is a view of that chunk, not a copy', () => {
    const parser = new FrontendParser();
    parser.startupDone();
    const chunk = Buffer.concat([F.query('select 1'), F.sync()]);
    const [q, s] = parser.push(chunk);
    assert.equal(q!.raw.buffer, chunk.buffer);
    assert.equal(s!.raw.byteOffset, chunk.byteOffset + q!.byteLength);
  });
});

describe('FrontendParser: lengths are checked before buffering', () => {
  const tagged = (): FrontendParser => {
    const p = new FrontendParser();
    p.startupDone();
    return p;
  };
  const header = (tag: string, length: number): Buffer => {
    const h = Buffer.alloc(5);
    h.write(tag, 0, 'latin1');
    h.writeUInt32BE(length >>> 0, 1);
    return h;
  };

  test('a 5-byte header claiming 2 GiB - 1 is refused at once, nothing buffered', () => {
    const p = tagged();
    let err: unknown;
    try {
      p.push(header('Q', 0x7fff_ffff));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof WardError);
    assert.equal(err.code, 'ERR_PG_MESSAGE_TOO_LARGE');
    assert.equal(err.kind, 'resource_exhausted');
    assert.equal(err.sqlState, '54000');
    assert.equal(p.buffered, 0);
    assert.equal(p.phase, 'failed');
  });

  test('a length of 2 GiB (negative as Int32) is a protocol error', () => {
    const p = tagged();
    let err: unknown;
    try {
      p.push(header('Q', 0x8000_0000));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof WardError);
    assert.equal(err.code, 'ERR_PG_PROTOCOL');
    assert.equal(err.sqlState, '08P01');
  });

  test('the configured maximum applies, and can be changed between messages', () => {
    const p = new FrontendParser({ maxMessageSize: 100 });
    p.startupDone();
    assert.equal(p.push(F.query('x'.repeat(95))).length, 1); // length field 4 + 96 = 100
    p.setMaxMessageSize(50);
    assert.equal(
      code(() => p.push(F.query('x'.repeat(50)).subarray(0, 5))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
  });

  test('too-small, fixed-size and small-class lengths', () => {
    assert.equal(
      code(() => tagged().push(header('Q', 3))),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      code(() => tagged().push(header('S', 5))),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      code(() => tagged().push(header('X', 8))),
      'ERR_PG_PROTOCOL',
    );
    // Describe, Execute, Close, CopyFail are capped like Postgres' PQ_SMALL_MESSAGE_LIMIT.
    assert.equal(
      code(() => tagged().push(header('D', 10_001))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
    assert.equal(
      code(() => tagged().push(header('E', 10_001))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
    assert.deepEqual(tagged().push(header('D', 10_000)), []);
  });

  test('an unknown tag is refused from its first byte', () => {
    const p = tagged();
    assert.equal(
      code(() => p.push(Buffer.from('Z'))),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      code(() => tagged().push(Buffer.from([0]))),
      'ERR_PG_PROTOCOL',
    );
  });

  test('startup packet longer than 10000 bytes is refused from its 4-byte length', () => {
    const p = new FrontendParser();
    const len = Buffer.alloc(4);
    len.writeInt32BE(10_001);
    assert.equal(
      code(() => p.push(len)),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
    assert.equal(p.buffered, 0);
    const ok = new FrontendParser();
    len.writeInt32BE(10_000);
    assert.deepEqual(ok.push(len), []);
    assert.equal(
      code(() => new FrontendParser().push(Buffer.from([0, 0, 0, 7]))),
      'ERR_PG_PROTOCOL',
    );
  });

  test('a startup packet over 10000 bytes built by a real serializer is refused', () => {
    const big = serialize.startup({ user: 'u', options: 'x'.repeat(10_000) });
    assert.equal(
      code(() => new FrontendParser().push(big)),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
  });

  test('after an error every call throws the same error', () => {
    const p = tagged();
    let first: unknown;
    try {
      p.push(Buffer.from('?'));
    } catch (e) {
      first = e;
    }
    assert.ok(first instanceof WardError);
    assert.throws(
      () => p.push(F.sync()),
      (e) => e === first,
    );
    assert.throws(
      () => p.startupDone(),
      (e) => e === first,
    );
    assert.throws(
      () => p.discardBuffered(),
      (e) => e === first,
    );
  });
});

describe('FrontendParser: malformed bodies', () => {
  const frame = (tag: string, body: Buffer): Buffer => {
    const out = Buffer.alloc(5 + body.byteLength);
    out.write(tag, 0, 'latin1');
    out.writeInt32BE(4 + body.byteLength, 1);
    body.copy(out, 5);
    return out;
  };
  const bad: Array<[string, Buffer]> = [
    ['Query without its NUL', frame('Q', b('select 1'))],
    ['Query with trailing bytes', frame('Q', b('select 1\0x'))],
    ['Parse with a truncated OID list', frame('P', Buffer.concat([b('\0select\0'), Buffer.from([0, 2, 0, 0, 0, 23])]))],
    ['Parse with a negative count', frame('P', Buffer.concat([b('\0q\0'), Buffer.from([0xff, 0xff])]))],
    [
      'Bind with a value length of -2',
      frame('B', Buffer.concat([b('\0\0'), Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0])])),
    ],
    [
      'Bind with a value longer than the message',
      frame('B', Buffer.concat([b('\0\0'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 1, 0, 0])])),
    ],
    ['Describe with subtype X', frame('D', b('Xname\0'))],
    ['Close with no subtype', frame('C', Buffer.alloc(0))],
    ['Execute without maxRows', frame('E', b('p\0'))],
    ['FunctionCall truncated', frame('F', Buffer.from([0, 0, 6, 62, 0, 0, 0, 1]))],
  ];
  for (const [name, bytes] of bad) {
    test(name, () => {
      const p = new FrontendParser();
      p.startupDone();
      assert.equal(
        code(() => p.push(bytes)),
        'ERR_PG_PROTOCOL',
      );
    });
  }

  test('startup packets: versions, layout, request sizes', () => {
    const v2 = Buffer.from([0, 0, 0, 9, 0, 2, 0, 0, 0]);
    let err: unknown;
    try {
      new FrontendParser().push(v2);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof WardError);
    assert.equal(err.code, 'ERR_PG_UNSUPPORTED_PROTOCOL');
    assert.equal(err.sqlState, '0A000');
    // 1234.5681 is not a request code Postgres knows: an unsupported "version" too.
    const odd = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x31]);
    assert.equal(
      code(() => new FrontendParser().push(odd)),
      'ERR_PG_UNSUPPORTED_PROTOCOL',
    );
    const noTerminator = Buffer.concat([Buffer.from([0, 0, 0, 17, 0, 3, 0, 0]), b('user\0bob\0')]);
    assert.equal(
      code(() => new FrontendParser().push(noTerminator)),
      'ERR_PG_PROTOCOL',
    );
    const afterTerminator = Buffer.concat([Buffer.from([0, 0, 0, 11, 0, 3, 0, 0]), b('\0xy')]);
    assert.equal(
      code(() => new FrontendParser().push(afterTerminator)),
      'ERR_PG_PROTOCOL',
    );
    const longSsl = Buffer.concat([Buffer.from([0, 0, 0, 12]), F.sslRequest().subarray(4), Buffer.alloc(4)]);
    assert.equal(
      code(() => new FrontendParser().push(longSsl)),
      'ERR_PG_PROTOCOL',
    );
    const shortCancel = Buffer.from([0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1]);
    assert.equal(
      code(() => new FrontendParser().push(shortCancel)),
      'ERR_PG_PROTOCOL',
    );
  });
});

describe('FrontendParser: the caller drives the startup phase', () => {
  test('bytes sent after SSLRequest, before the answer, are held and can be discarded', () => {
    const p = new FrontendParser();
    const injected = Buffer.concat([F.startupMessage({ user: 'mallory' }), F.query('drop table t')]);
    const got = p.push(Buffer.concat([F.sslRequest(), injected]));
    assert.deepEqual(
      got.map((m) => m.type),
      ['SSLRequest'],
    );
    assert.equal(p.phase, 'awaiting');
    assert.equal(p.buffered, injected.byteLength);
    // The session answers 'S' and drops the plaintext before the TLS handshake.
    assert.equal(p.discardBuffered(), injected.byteLength);
    assert.equal(p.phase, 'startup');
    const after = p.push(F.startupMessage({ user: 'alice' }));
    assert.equal(after.length, 1);
    const startup = after[0]!;
    assert.ok(startup.type === 'StartupMessage');
    assert.equal(startup.parameters.get('user'), 'alice');
  });

  test("after 'N' the buffered startup packet is parsed by resume()", () => {
    const p = new FrontendParser();
    const got = p.push(Buffer.concat([F.sslRequest(), F.startupMessage({ user: 'alice' })]));
    assert.equal(got.length, 1);
    const resumed = p.resume();
    assert.deepEqual(
      resumed.map((m) => m.type),
      ['StartupMessage'],
    );
    assert.equal(p.phase, 'awaiting');
  });

  test('tagged bytes pipelined after StartupMessage come out of startupDone()', () => {
    const p = new FrontendParser();
    const got = p.push(Buffer.concat([F.startupMessage({ user: 'a' }), F.passwordMessage('tok'), F.query('select 1')]));
    assert.deepEqual(
      got.map((m) => m.type),
      ['StartupMessage'],
    );
    const rest = p.startupDone();
    assert.deepEqual(
      rest.map((m) => m.type),
      ['AuthenticationResponse', 'Query'],
    );
    assert.equal(p.phase, 'normal');
  });

  test('a client flooding before the answer is cut off', () => {
    const p = new FrontendParser();
    p.push(F.sslRequest());
    assert.equal(
      code(() => p.push(Buffer.alloc(10_001))),
      'ERR_PG_PROTOCOL',
    );
  });

  test('a repeated startup parameter keeps its last value, as in Postgres', () => {
    const p = new FrontendParser();
    const [m] = p.push(
      F.startupMessage([
        ['user', 'a'],
        ['user', 'b'],
      ]),
    );
    assert.ok(m?.type === 'StartupMessage');
    assert.equal(m.parameters.get('user'), 'b');
  });
});

describe('authentication response bodies', () => {
  const one = (bytes: Buffer): FrontendMessage => {
    const p = new FrontendParser();
    p.startupDone();
    const [m] = p.push(bytes);
    assert.ok(m);
    return m;
  };

  test('PasswordMessage', () => {
    const m = one(serialize.password('a'.repeat(200_000)));
    assert.ok(m.type === 'AuthenticationResponse');
    assert.equal(decodePasswordMessage(m), 'a'.repeat(200_000));
  });

  test('SASLInitialResponse with and without data, and SASLResponse', () => {
    const m = one(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=xyz'));
    assert.ok(m.type === 'AuthenticationResponse');
    assert.deepEqual(decodeSASLInitialResponse(m), { mechanism: 'SCRAM-SHA-256', data: b('n,,n=,r=xyz') });
    const none = one(F.saslInitialResponse('PLAIN', null));
    assert.ok(none.type === 'AuthenticationResponse');
    assert.deepEqual(decodeSASLInitialResponse(none), { mechanism: 'PLAIN', data: null });
    const resp = one(F.saslResponse(b('c=biws')));
    assert.ok(resp.type === 'AuthenticationResponse');
    assert.deepEqual(decodeSASLResponse(resp), b('c=biws'));
  });

  test('malformed bodies are protocol errors', () => {
    const m = one(F.saslResponse(b('no terminator')));
    assert.ok(m.type === 'AuthenticationResponse');
    assert.equal(
      code(() => decodePasswordMessage(m)),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      code(() => decodeSASLInitialResponse(m)),
      'ERR_PG_PROTOCOL',
    );
    const trailing = one(F.saslResponse(Buffer.concat([b('SCRAM\0'), Buffer.from([0, 0, 0, 1]), b('ab')])));
    assert.ok(trailing.type === 'AuthenticationResponse');
    assert.equal(
      code(() => decodeSASLInitialResponse(trailing)),
      'ERR_PG_PROTOCOL',
    );
  });
});
