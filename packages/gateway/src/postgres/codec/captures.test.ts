// Real traffic recorded by fixtures/capture.mjs: psql 15 and node-postgres talking to
// PostgreSQL 15 through a recording proxy. Client bytes go through FrontendParser, server
// bytes through BackendMessageSplitter and parseBackendMessage.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { BackendMessage } from './backend-messages.js';
import { parseBackendMessage } from './backend-parser.js';
import { BackendMessageSplitter } from './backend-splitter.js';
import type { FrontendMessage } from './frontend-messages.js';
import { FrontendParser } from './frontend-parser.js';
import { everySplit, feedFrontend, reserializeBackend, reserializeFrontend } from './testing.js';

interface Fixture {
  name: string;
  connections: Array<{ events: Array<{ from: 'client' | 'server'; hex: string }> }>;
}

// Tests run from dist/; the fixtures stay in src/ (tsc does not copy JSON).
const fixtureDir = new URL('../../../src/postgres/codec/fixtures/', import.meta.url);
const load = (name: string): Fixture => JSON.parse(readFileSync(new URL(`${name}.json`, fixtureDir), 'utf8'));

interface Replay {
  client: FrontendMessage[];
  server: BackendMessage[];
  clientBytes: Buffer;
  serverBytes: Buffer;
  sslAnswer?: string;
}

/** Replays one connection chunk by chunk, as captured, answering the startup phase like the server did. */
function replay(events: Fixture['connections'][number]['events']): Replay {
  const parser = new FrontendParser();
  const splitter = new BackendMessageSplitter();
  const client: FrontendMessage[] = [];
  const server: BackendMessage[] = [];
  let awaitingSslAnswer = false;
  let sslAnswer: string | undefined;
  const take = (msgs: FrontendMessage[]): void => {
    for (const m of msgs) {
      client.push(m);
      if (m.type === 'SSLRequest') awaitingSslAnswer = true;
      if (m.type === 'StartupMessage') take(parser.startupDone());
    }
  };
  for (const ev of events) {
    let bytes = Buffer.from(ev.hex, 'hex');
    if (ev.from === 'client') {
      take(parser.push(bytes));
      continue;
    }
    if (awaitingSslAnswer) {
      // The untagged one-byte answer is not a backend message; the session reads it apart.
      sslAnswer = String.fromCharCode(bytes[0]!);
      bytes = bytes.subarray(1);
      awaitingSslAnswer = false;
      take(parser.resume());
    }
    for (const p of splitter.push(bytes)) server.push(parseBackendMessage(p.raw));
  }
  assert.equal(parser.buffered, 0, 'client bytes left unparsed');
  assert.equal(splitter.buffered, 0, 'server bytes left unsplit');
  const join = (from: string): Buffer =>
    Buffer.concat(events.filter((e) => e.from === from).map((e) => Buffer.from(e.hex, 'hex')));
  return {
    client,
    server,
    clientBytes: join('client'),
    serverBytes: join('server'),
    ...(sslAnswer === undefined ? {} : { sslAnswer }),
  };
}

/** Message types, with the run of ParameterStatus at startup folded into one entry. */
const types = (msgs: Array<FrontendMessage | BackendMessage>): string[] =>
  msgs
    .map((m) => (m.type === 'ReadyForQuery' ? `ReadyForQuery ${m.status}` : m.type))
    .filter((t, i, all) => !(t === 'ParameterStatus' && all[i - 1] === 'ParameterStatus'));

const STARTUP_REPLY = ['AuthenticationOk', 'ParameterStatus', 'BackendKeyData', 'ReadyForQuery I'];

const FIXTURES = ['psql-simple', 'psql-ssl-refused', 'psql-session', 'pg-extended', 'pg-cancel'];

describe('captured traffic: every fixture', () => {
  for (const name of FIXTURES) {
    test(`${name}: lossless, and the same at every split offset`, () => {
      const fixture = load(name);
      assert.ok(fixture.connections.length >= 1);
      for (const conn of fixture.connections) {
        const r = replay(conn.events);
        // What the gateway forwards (each message's raw bytes) is exactly what was sent.
        assert.deepEqual(Buffer.concat(r.client.map((m) => m.raw)), r.clientBytes);
        const serverTagged = r.sslAnswer === undefined ? r.serverBytes : r.serverBytes.subarray(1);
        assert.deepEqual(Buffer.concat(r.server.map((m) => m.raw)), serverTagged);
        // And every parsed message rebuilds byte for byte from its fields.
        for (const m of r.client) {
          if (m.type !== 'StartupMessage') assert.deepEqual(reserializeFrontend(m), m.raw, m.type);
        }
        for (const m of r.server) assert.deepEqual(reserializeBackend(m), m.raw, m.type);

        const clientTypes = types(r.client);
        let splits = 0;
        for (const chunks of everySplit(serverTagged)) {
          const s = new BackendMessageSplitter();
          const packets = chunks.flatMap((c) => s.push(c));
          assert.equal(packets.length, r.server.length);
          splits++;
        }
        // The cancel connection gets no answer at all: nothing to split there.
        if (serverTagged.byteLength > 0) assert.equal(splits, serverTagged.byteLength + 1);
        if (r.sslAnswer === undefined) {
          for (const chunks of everySplit(r.clientBytes)) {
            assert.deepEqual(types(feedFrontend(new FrontendParser(), chunks)), clientTypes);
          }
        }
      }
    });
  }
});

describe('captured traffic: message sequences', () => {
  test('psql -c: simple query', () => {
    const r = replay(load('psql-simple').connections[0]!.events);
    assert.deepEqual(types(r.client), ['StartupMessage', 'Query', 'Terminate']);
    const startup = r.client[0]!;
    assert.ok(startup.type === 'StartupMessage');
    assert.equal(startup.minorVersion, 0);
    assert.equal(startup.parameters.get('user'), 'postgres');
    assert.equal(startup.parameters.get('application_name'), 'ward-capture');
    const q = r.client[1]!;
    assert.ok(q.type === 'Query');
    assert.equal(q.query, "select 1 as one, 'two'::text as two, null::int as three");
    assert.deepEqual(types(r.server), [
      ...STARTUP_REPLY,
      'RowDescription',
      'DataRow',
      'CommandComplete',
      'ReadyForQuery I',
    ]);
    const params = new Map(r.server.flatMap((m) => (m.type === 'ParameterStatus' ? [[m.name, m.value] as const] : [])));
    assert.equal(params.get('client_encoding'), 'UTF8');
    assert.equal(params.get('integer_datetimes'), 'on');
    assert.match(params.get('server_version') ?? '', /^15\./);
    const row = r.server.find((m) => m.type === 'DataRow');
    assert.ok(row?.type === 'DataRow');
    assert.deepEqual(row.values, [Buffer.from('1'), Buffer.from('two'), null]);
    const desc = r.server.find((m) => m.type === 'RowDescription');
    assert.ok(desc?.type === 'RowDescription');
    assert.deepEqual(
      desc.fields.map((f) => [f.name, f.dataTypeOid]),
      [
        ['one', 23],
        ['two', 25],
        ['three', 23],
      ],
    );
  });

  test("psql sslmode=prefer: SSLRequest, 'N', then the StartupMessage in plaintext", () => {
    const r = replay(load('psql-ssl-refused').connections[0]!.events);
    assert.equal(r.sslAnswer, 'N');
    assert.deepEqual(types(r.client), ['SSLRequest', 'StartupMessage', 'Query', 'Terminate']);
    assert.deepEqual(types(r.server), [
      ...STARTUP_REPLY,
      'RowDescription',
      'DataRow',
      'CommandComplete',
      'ReadyForQuery I',
    ]);
  });

  test('psql script: multi-statement query, \\copy both ways, errors, notice, failed transaction', () => {
    const r = replay(load('psql-session').connections[0]!.events);
    assert.deepEqual(types(r.client), [
      'StartupMessage',
      'Query', // select 1 \; select 'two': one Query, two result sets
      'Query', // create temp table
      'Query', // copy from stdin
      'CopyData',
      'CopyDone',
      'Query', // copy to stdout
      'Query', // select * from people
      'Query', // no_such_table
      'Query', // do $$ raise notice $$
      'Query', // begin
      'Query', // 1/0
      'Query', // rollback
      'Terminate',
    ]);
    const multi = r.client[1]!;
    assert.ok(multi.type === 'Query');
    assert.equal(multi.query, "select 1 as one ; select 'two' as two;");
    const copyIn = r.client.find((m) => m.type === 'CopyData');
    assert.ok(copyIn?.type === 'CopyData');
    // psql 15 sends the end-of-data marker too; the server drops it.
    assert.equal(copyIn.data.toString(), '1\talice\talice@example.com\n2\tbob\t\\N\n\\.\n');
    assert.deepEqual(types(r.server), [
      ...STARTUP_REPLY,
      ...[
        'RowDescription',
        'DataRow',
        'CommandComplete',
        'RowDescription',
        'DataRow',
        'CommandComplete',
        'ReadyForQuery I',
      ],
      ...['CommandComplete', 'ReadyForQuery I'],
      ...['CopyInResponse', 'CommandComplete', 'ReadyForQuery I'],
      ...['CopyOutResponse', 'CopyData', 'CopyData', 'CopyDone', 'CommandComplete', 'ReadyForQuery I'],
      ...['RowDescription', 'DataRow', 'DataRow', 'CommandComplete', 'ReadyForQuery I'],
      ...['ErrorResponse', 'ReadyForQuery I'],
      ...['NoticeResponse', 'CommandComplete', 'ReadyForQuery I'],
      ...['CommandComplete', 'ReadyForQuery T'],
      ...['ErrorResponse', 'ReadyForQuery E'],
      ...['CommandComplete', 'ReadyForQuery I'],
    ]);
    const errors = r.server.flatMap((m) => (m.type === 'ErrorResponse' ? [m.fields] : []));
    assert.deepEqual(
      errors.map((f) => [f.severity, f.severityNonLocalized, f.code]),
      [
        ['ERROR', 'ERROR', '42P01'],
        ['ERROR', 'ERROR', '22012'],
      ],
    );
    assert.equal(errors[0]!.position, '15');
    const tags = r.server.flatMap((m) => (m.type === 'CommandComplete' ? [m.tag] : []));
    assert.deepEqual(tags, [
      'SELECT 1',
      'SELECT 1',
      'CREATE TABLE',
      'COPY 2',
      'COPY 2',
      'SELECT 2',
      'DO',
      'BEGIN',
      'ROLLBACK',
    ]);
    const copyOut = r.server.find((m) => m.type === 'CopyOutResponse');
    assert.ok(copyOut?.type === 'CopyOutResponse');
    assert.deepEqual([copyOut.format, copyOut.columnFormats], [0, [0, 0, 0]]);
    const notice = r.server.find((m) => m.type === 'NoticeResponse');
    assert.ok(notice?.type === 'NoticeResponse');
    assert.equal(notice.fields.message, 'hello from plpgsql');
  });

  test('node-postgres: extended protocol, named statement reused, error during execution', () => {
    const r = replay(load('pg-extended').connections[0]!.events);
    const extended = ['Parse', 'Bind', 'Describe', 'Execute', 'Sync'];
    assert.deepEqual(types(r.client), [
      'StartupMessage',
      ...extended,
      ...extended,
      ...extended.slice(1), // the named statement is parsed once
      ...extended,
      'Terminate',
    ]);
    const parse = r.client[1]!;
    assert.ok(parse.type === 'Parse');
    assert.equal(parse.query, 'select $1::int + 1 as n, $2::text as t');
    const bind = r.client[2]!;
    assert.ok(bind.type === 'Bind');
    assert.deepEqual(bind.params, [Buffer.from('41'), Buffer.from('x')]);
    const named = r.client.filter((m) => m.type === 'Parse').map((m) => (m.type === 'Parse' ? m.name : ''));
    assert.deepEqual(named, ['', 'by_id', '']);
    const describe = r.client[3]!;
    assert.ok(describe.type === 'Describe');
    assert.equal(describe.target, 'P');
    const result = ['BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery I'];
    assert.deepEqual(types(r.server), [
      ...STARTUP_REPLY,
      'ParseComplete',
      ...result,
      'ParseComplete',
      ...result,
      ...result,
      'ParseComplete',
      'ErrorResponse',
      'ReadyForQuery I',
    ]);
    const rows = r.server.flatMap((m) => (m.type === 'DataRow' ? [m.values.map((v) => v?.toString() ?? null)] : []));
    assert.deepEqual(rows, [
      ['42', 'x'],
      ['7', null],
      ['8', null],
    ]);
  });

  test('cancel: the query fails with 57014 after a CancelRequest on a second connection', () => {
    const fixture = load('pg-cancel');
    assert.equal(fixture.connections.length, 2);
    const main = replay(fixture.connections[0]!.events);
    const key = main.server.find((m) => m.type === 'BackendKeyData');
    assert.ok(key?.type === 'BackendKeyData');
    const cancelConn = replay(fixture.connections[1]!.events);
    assert.equal(cancelConn.client.length, 1);
    const cancel = cancelConn.client[0]!;
    assert.ok(cancel.type === 'CancelRequest');
    assert.deepEqual([cancel.processId, cancel.secretKey], [key.processId, key.secretKey]);
    assert.equal(cancelConn.server.length, 0);
    const err = main.server.find((m) => m.type === 'ErrorResponse');
    assert.ok(err?.type === 'ErrorResponse');
    assert.equal(err.fields.code, '57014');
  });
});
