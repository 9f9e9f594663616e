import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { parseBackendMessage } from './backend-parser.js';
import { BackendSerializer as S } from './backend-serializer.js';
import { BackendMessageSplitter } from './backend-splitter.js';
import { everySplit, fieldsOf, reserializeBackend } from './testing.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** What pg-protocol's Parser (node-postgres' own, written independently) reads from bytes. */
function pgProtocolRead(bytes: Buffer): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  new Parser().parse(bytes, (m) => out.push(m as unknown as Record<string, unknown>));
  return out;
}

const allErrorFields = {
  severity: 'ERREUR',
  severityNonLocalized: 'ERROR',
  code: '23505',
  message: 'duplicate key value violates unique constraint "people_pkey"',
  detail: 'Key (id)=(1) already exists.',
  hint: 'try another id',
  position: '15',
  internalPosition: '3',
  internalQuery: 'select 1',
  where: 'SQL function "f"',
  schema: 'public',
  table: 'people',
  column: 'id',
  dataType: 'int4',
  constraint: 'people_pkey',
  file: 'nbtinsert.c',
  line: '664',
  routine: '_bt_check_unique',
};

// Each case: the serializer's output, what our parser must read back, and (where
// pg-protocol knows the message) what pg-protocol's parser must read from the same bytes.
const cases: Array<{
  name: string;
  bytes: Buffer;
  expect: Record<string, unknown>;
  pg?: Record<string, unknown>;
}> = [
  {
    name: 'AuthenticationOk',
    bytes: S.authenticationOk(),
    expect: { type: 'AuthenticationOk' },
    pg: { name: 'authenticationOk' },
  },
  {
    name: 'AuthenticationCleartextPassword',
    bytes: S.authenticationCleartextPassword(),
    expect: { type: 'AuthenticationCleartextPassword' },
    pg: { name: 'authenticationCleartextPassword' },
  },
  {
    name: 'AuthenticationMD5Password',
    bytes: S.authenticationMD5Password(Buffer.from([1, 2, 3, 4])),
    expect: { type: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
    pg: { name: 'authenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  },
  {
    name: 'AuthenticationSASL',
    bytes: S.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
    expect: { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    pg: { name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
  },
  {
    name: 'AuthenticationSASLContinue',
    bytes: S.authenticationSASLContinue(b('r=abc,s=c2FsdA==,i=4096')),
    expect: { type: 'AuthenticationSASLContinue', data: b('r=abc,s=c2FsdA==,i=4096') },
    pg: { name: 'authenticationSASLContinue', data: 'r=abc,s=c2FsdA==,i=4096' },
  },
  {
    name: 'AuthenticationSASLFinal',
    bytes: S.authenticationSASLFinal(b('v=xyz')),
    expect: { type: 'AuthenticationSASLFinal', data: b('v=xyz') },
    pg: { name: 'authenticationSASLFinal', data: 'v=xyz' },
  },
  {
    name: 'AuthenticationKerberosV5',
    bytes: S.authenticationKerberosV5(),
    expect: { type: 'AuthenticationKerberosV5' },
  },
  { name: 'AuthenticationGSS', bytes: S.authenticationGSS(), expect: { type: 'AuthenticationGSS' } },
  {
    name: 'AuthenticationGSSContinue',
    bytes: S.authenticationGSSContinue(Buffer.from([9, 9])),
    expect: { type: 'AuthenticationGSSContinue', data: Buffer.from([9, 9]) },
  },
  { name: 'AuthenticationSSPI', bytes: S.authenticationSSPI(), expect: { type: 'AuthenticationSSPI' } },
  {
    name: 'ParameterStatus',
    bytes: S.parameterStatus('client_encoding', 'UTF8'),
    expect: { type: 'ParameterStatus', name: 'client_encoding', value: 'UTF8' },
    pg: { name: 'parameterStatus', parameterName: 'client_encoding', parameterValue: 'UTF8' },
  },
  {
    name: 'BackendKeyData',
    bytes: S.backendKeyData(31337, -5),
    expect: { type: 'BackendKeyData', processId: 31337, secretKey: -5 },
    pg: { name: 'backendKeyData', processID: 31337, secretKey: -5 },
  },
  ...(['I', 'T', 'E'] as const).map((status) => ({
    name: `ReadyForQuery ${status}`,
    bytes: S.readyForQuery(status),
    expect: { type: 'ReadyForQuery', status },
    pg: { name: 'readyForQuery', status },
  })),
  {
    name: 'ErrorResponse with every documented field',
    bytes: S.errorResponse(allErrorFields),
    expect: { type: 'ErrorResponse', fields: allErrorFields },
    pg: {
      name: 'error',
      severity: 'ERREUR',
      code: '23505',
      detail: 'Key (id)=(1) already exists.',
      hint: 'try another id',
      position: '15',
      internalPosition: '3',
      internalQuery: 'select 1',
      where: 'SQL function "f"',
      schema: 'public',
      table: 'people',
      column: 'id',
      dataType: 'int4',
      constraint: 'people_pkey',
      file: 'nbtinsert.c',
      line: '664',
      routine: '_bt_check_unique',
    },
  },
  {
    name: 'NoticeResponse',
    bytes: S.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hello' }),
    expect: { type: 'NoticeResponse', fields: { severity: 'NOTICE', code: '00000', message: 'hello' } },
    pg: { name: 'notice', severity: 'NOTICE', code: '00000', message: 'hello' },
  },
  {
    name: 'RowDescription',
    bytes: S.rowDescription([
      { name: 'id', tableOid: 16384, columnAttributeNumber: 1, dataTypeOid: 23, dataTypeSize: 4 },
      { name: 'email', dataTypeOid: 25, dataTypeSize: -1, format: 1 },
      { name: 'amount', dataTypeOid: 1700, dataTypeSize: -1, typeModifier: 655366 },
    ]),
    expect: {
      type: 'RowDescription',
      fields: [
        {
          name: 'id',
          tableOid: 16384,
          columnAttributeNumber: 1,
          dataTypeOid: 23,
          dataTypeSize: 4,
          typeModifier: -1,
          format: 0,
        },
        {
          name: 'email',
          tableOid: 0,
          columnAttributeNumber: 0,
          dataTypeOid: 25,
          dataTypeSize: -1,
          typeModifier: -1,
          format: 1,
        },
        {
          name: 'amount',
          tableOid: 0,
          columnAttributeNumber: 0,
          dataTypeOid: 1700,
          dataTypeSize: -1,
          typeModifier: 655366,
          format: 0,
        },
      ],
    },
    pg: { name: 'rowDescription', fieldCount: 3 },
  },
  {
    name: 'DataRow with text, binary, null and empty values',
    bytes: S.dataRow(['alice', Buffer.from([0, 0, 0, 42]), null, '']),
    expect: { type: 'DataRow', values: [b('alice'), Buffer.from([0, 0, 0, 42]), null, Buffer.alloc(0)] },
    pg: { name: 'dataRow', fields: ['alice', '\0\0\0*', null, ''] },
  },
  {
    name: 'CommandComplete',
    bytes: S.commandComplete('INSERT 0 3'),
    expect: { type: 'CommandComplete', tag: 'INSERT 0 3' },
    pg: { name: 'commandComplete', text: 'INSERT 0 3' },
  },
  {
    name: 'EmptyQueryResponse',
    bytes: S.emptyQueryResponse(),
    expect: { type: 'EmptyQueryResponse' },
    pg: { name: 'emptyQuery' },
  },
  { name: 'ParseComplete', bytes: S.parseComplete(), expect: { type: 'ParseComplete' }, pg: { name: 'parseComplete' } },
  { name: 'BindComplete', bytes: S.bindComplete(), expect: { type: 'BindComplete' }, pg: { name: 'bindComplete' } },
  { name: 'CloseComplete', bytes: S.closeComplete(), expect: { type: 'CloseComplete' }, pg: { name: 'closeComplete' } },
  { name: 'NoData', bytes: S.noData(), expect: { type: 'NoData' }, pg: { name: 'noData' } },
  {
    name: 'PortalSuspended',
    bytes: S.portalSuspended(),
    expect: { type: 'PortalSuspended' },
    pg: { name: 'portalSuspended' },
  },
  {
    name: 'ParameterDescription',
    bytes: S.parameterDescription([23, 25, 0xffff_fff0]),
    expect: { type: 'ParameterDescription', paramTypes: [23, 25, 0xffff_fff0] },
    pg: { name: 'parameterDescription', parameterCount: 3, dataTypeIDs: [23, 25, 0xffff_fff0] },
  },
  {
    name: 'CopyInResponse',
    bytes: S.copyInResponse({ format: 0, columnFormats: [0, 0, 0] }),
    expect: { type: 'CopyInResponse', format: 0, columnFormats: [0, 0, 0] },
    pg: { name: 'copyInResponse', binary: false, columnTypes: [0, 0, 0] },
  },
  {
    name: 'CopyOutResponse (binary)',
    bytes: S.copyOutResponse({ format: 1, columnFormats: [1, 1] }),
    expect: { type: 'CopyOutResponse', format: 1, columnFormats: [1, 1] },
    pg: { name: 'copyOutResponse', binary: true, columnTypes: [1, 1] },
  },
  {
    name: 'CopyBothResponse',
    bytes: S.copyBothResponse({ format: 0, columnFormats: [] }),
    expect: { type: 'CopyBothResponse', format: 0, columnFormats: [] },
  },
  {
    name: 'CopyData',
    bytes: S.copyData(b('1\talice\n')),
    expect: { type: 'CopyData', data: b('1\talice\n') },
    pg: { name: 'copyData', chunk: b('1\talice\n') },
  },
  { name: 'CopyDone', bytes: S.copyDone(), expect: { type: 'CopyDone' }, pg: { name: 'copyDone' } },
  {
    name: 'NotificationResponse',
    bytes: S.notificationResponse(77, 'jobs', '{"id":1}'),
    expect: { type: 'NotificationResponse', processId: 77, channel: 'jobs', payload: '{"id":1}' },
    pg: { name: 'notification', processId: 77, channel: 'jobs', payload: '{"id":1}' },
  },
  {
    name: 'NegotiateProtocolVersion',
    bytes: S.negotiateProtocolVersion(0, ['_pq_.compression', '_pq_.other']),
    expect: {
      type: 'NegotiateProtocolVersion',
      newestMinorVersion: 0,
      unrecognizedOptions: ['_pq_.compression', '_pq_.other'],
    },
  },
  {
    name: 'FunctionCallResponse',
    bytes: S.functionCallResponse(null),
    expect: { type: 'FunctionCallResponse', result: null },
  },
];

describe('BackendSerializer → splitter → parseBackendMessage', () => {
  for (const c of cases) {
    test(c.name, () => {
      const msg = parseBackendMessage(c.bytes);
      assert.deepEqual(fieldsOf(msg), c.expect);
      assert.equal(msg.byteLength, c.bytes.byteLength);
      assert.deepEqual(reserializeBackend(msg), c.bytes);
      if (c.pg) {
        const [theirs, ...more] = pgProtocolRead(c.bytes);
        assert.equal(more.length, 0);
        for (const [k, v] of Object.entries(c.pg)) assert.deepEqual(theirs?.[k], v, `pg-protocol's ${k}`);
      }
      let splits = 0;
      for (const chunks of everySplit(c.bytes)) {
        const splitter = new BackendMessageSplitter();
        const packets = chunks.flatMap((chunk) => splitter.push(chunk));
        assert.equal(packets.length, 1);
        assert.equal(packets[0]!.tag, c.bytes[0]);
        assert.deepEqual(packets[0]!.raw, c.bytes);
        assert.equal(splitter.buffered, 0);
        splits++;
      }
      assert.equal(splits, c.bytes.byteLength + 1);
    });
  }

  test('a whole response stream at every split offset gives the same packets', () => {
    const stream = Buffer.concat(cases.map((c) => c.bytes));
    let runs = 0;
    for (const chunks of everySplit(stream)) {
      const splitter = new BackendMessageSplitter();
      const packets = chunks.flatMap((chunk) => splitter.push(chunk));
      assert.equal(packets.length, cases.length);
      assert.deepEqual(
        packets.map((p) => parseBackendMessage(p.raw).type),
        cases.map((c) => c.expect.type),
      );
      runs++;
    }
    assert.equal(runs, stream.byteLength + 1);
  });

  test('the single-byte answers to SSLRequest and GSSENCRequest', () => {
    assert.deepEqual(S.sslResponse(true), Buffer.from('S'));
    assert.deepEqual(S.sslResponse(false), Buffer.from('N'));
    assert.deepEqual(S.gssEncResponse(true), Buffer.from('G'));
    assert.deepEqual(S.gssEncResponse(false), Buffer.from('N'));
  });

  test("a WardError becomes an ErrorResponse with the kind's SQLSTATE", () => {
    const err = new WardError('ERR_PG_PROTOCOL', 'invalid_argument', 'bad\0input');
    const msg = parseBackendMessage(S.wardError(err, 'FATAL'));
    assert.ok(msg.type === 'ErrorResponse');
    assert.deepEqual(msg.fields, {
      severity: 'FATAL',
      severityNonLocalized: 'FATAL',
      code: '08P01',
      message: 'ERR_PG_PROTOCOL: bad\\0input',
    });
    const limited = parseBackendMessage(
      S.wardError(new WardError('ERR_PG_MESSAGE_TOO_LARGE', 'resource_exhausted', 'x', { sqlState: '54000' })),
    );
    assert.ok(limited.type === 'ErrorResponse');
    assert.equal(limited.fields.code, '54000');
    assert.equal(limited.fields.severity, 'ERROR');
  });

  test('values that cannot go on the wire are refused, not truncated', () => {
    const codes = [
      () => S.commandComplete('SELECT\0 1'),
      () => S.parameterStatus('a', 'b\0'),
      () => S.backendKeyData(2 ** 31, 0),
      () => S.authenticationMD5Password(Buffer.alloc(3)),
      () => S.authenticationSASL(['']),
      () => S.readyForQuery('X' as 'I'),
      () => S.dataRow(new Array(40_000).fill(null)),
    ].map((fn) => {
      try {
        fn();
      } catch (err) {
        assert.ok(err instanceof WardError);
        return err.code;
      }
      return 'no error';
    });
    assert.deepEqual(codes, new Array(7).fill('ERR_PG_ENCODE'));
  });
});

describe('BackendMessageSplitter limits and parseBackendMessage errors', () => {
  const header = (tag: string, length: number): Buffer => {
    const h = Buffer.alloc(5);
    h.write(tag, 0, 'latin1');
    h.writeUInt32BE(length >>> 0, 1);
    return h;
  };
  const codeOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof WardError);
      return err.code;
    }
    return 'no error';
  };

  test('oversized, negative and too-small lengths and unknown tags', () => {
    const huge = new BackendMessageSplitter();
    assert.equal(
      codeOf(() => huge.push(header('D', 0x7fff_ffff))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
    assert.equal(huge.buffered, 0);
    assert.equal(
      codeOf(() => huge.push(S.readyForQuery('I'))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
    assert.equal(
      codeOf(() => new BackendMessageSplitter().push(header('D', 0x8000_0000))),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      codeOf(() => new BackendMessageSplitter().push(header('D', 3))),
      'ERR_PG_PROTOCOL',
    );
    assert.equal(
      codeOf(() => new BackendMessageSplitter().push(Buffer.from('Q'))),
      'ERR_PG_PROTOCOL',
    );
    const small = new BackendMessageSplitter({ maxMessageSize: 16 });
    assert.equal(small.push(S.commandComplete('SELECT 1')).length, 1); // length field 13
    assert.equal(
      codeOf(() => small.push(S.commandComplete('SELECT 123456789'))),
      'ERR_PG_MESSAGE_TOO_LARGE',
    );
  });

  test('a message spread over many chunks is assembled once, at its exact size', () => {
    const row = S.dataRow([Buffer.alloc(100_000, 7)]);
    const splitter = new BackendMessageSplitter();
    const out = [];
    for (let off = 0; off < row.byteLength; off += 4096) out.push(...splitter.push(row.subarray(off, off + 4096)));
    assert.equal(out.length, 1);
    // Its own ArrayBuffer of exactly the message size: one allocation, one copy.
    assert.equal(out[0]!.raw.buffer.byteLength, row.byteLength);
    assert.deepEqual(out[0]!.raw, row);
    const parsed = parseBackendMessage(out[0]!.raw);
    assert.ok(parsed.type === 'DataRow');
    assert.equal(parsed.values[0]!.byteLength, 100_000);
  });

  const bad: Array<[string, Buffer]> = [
    ['shorter than a header', Buffer.from([0x5a, 0, 0])],
    ['length field disagreeing with the bytes', Buffer.from([0x5a, 0, 0, 0, 9, 0x49])],
    ['ReadyForQuery with status X', Buffer.from([0x5a, 0, 0, 0, 5, 0x58])],
    ['DataRow with a value past the end', Buffer.from([0x44, 0, 0, 0, 12, 0, 1, 0, 0, 0, 9, 1, 2])],
    ['DataRow with a negative column count', Buffer.from([0x44, 0, 0, 0, 6, 0xff, 0xff])],
    ['CommandComplete without NUL', Buffer.from([0x43, 0, 0, 0, 6, 0x41, 0x42])],
    ['ParseComplete with a body', Buffer.from([0x31, 0, 0, 0, 5, 0])],
    ['unknown authentication code', Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 99])],
    ['ErrorResponse without terminator', Buffer.from([0x45, 0, 0, 0, 8, 0x53, 0x45, 0x00, 0x43])],
    [
      'NegotiateProtocolVersion claiming 1e9 options',
      Buffer.from([0x76, 0, 0, 0, 12, 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0]),
    ],
    ['unknown tag', Buffer.from([0x51, 0, 0, 0, 4])],
  ];
  for (const [name, bytes] of bad) {
    test(`parseBackendMessage: ${name}`, () => {
      assert.equal(
        codeOf(() => parseBackendMessage(bytes)),
        'ERR_PG_PROTOCOL',
      );
    });
  }

  test('unknown notice field codes are ignored, as the docs require', () => {
    const body = Buffer.from('SNOTICE\0Zzz\0Mhi\0\0', 'latin1');
    const bytes = Buffer.concat([Buffer.from([0x4e, 0, 0, 0, 0]), body]);
    bytes.writeInt32BE(4 + body.byteLength, 1);
    const msg = parseBackendMessage(bytes);
    assert.ok(msg.type === 'NoticeResponse');
    assert.deepEqual(msg.fields, { severity: 'NOTICE', message: 'hi' });
  });
});
