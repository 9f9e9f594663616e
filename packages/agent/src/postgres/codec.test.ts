/** I/O-free pieces: the bounded startup reader, encoders, SCRAM (RFC 7677 vector), SASLprep, Terminate tracking. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { FrontendScanner } from './frontend-scanner.js';
import { saslprep } from './saslprep.js';
import { ScramClient } from './scram.js';
import {
  BackendReader,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorFields,
  decodeParameterStatus,
  encodeCancelRequest,
  encodeStartupMessage,
} from './startup-codec.js';

const msg = (code: string, body: Buffer) => {
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeUInt32BE(body.byteLength + 4, 1);
  return Buffer.concat([head, body]);
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

// A capture of a real startup answer shape: SASL request, ParameterStatus, BackendKeyData, ReadyForQuery.
const STREAM = Buffer.concat([
  msg('R', Buffer.concat([int32(10), Buffer.from('SCRAM-SHA-256\0\0')])),
  msg('S', Buffer.from('server_version\x0015.20\0')),
  msg('K', Buffer.concat([int32(77), Buffer.from([0xff, 0xfe, 0xfd, 0xfc])])),
  msg('Z', Buffer.from('I')),
]);

const isCode = (code: string) => (err: unknown) => err instanceof WardError && err.code === code;

describe('BackendReader', () => {
  test('packets divided at every offset give the same messages', () => {
    for (let split = 0; split <= STREAM.byteLength; split++) {
      const reader = new BackendReader(1024);
      const out: string[] = [];
      for (const part of [STREAM.subarray(0, split), STREAM.subarray(split)]) {
        reader.push(part);
        for (let m = reader.next(); m; m = reader.next())
          out.push(`${String.fromCharCode(m.code)}:${m.body.byteLength}`);
      }
      assert.deepEqual(out, ['R:19', 'S:21', 'K:8', 'Z:1'], `split at ${split}`);
      assert.equal(reader.bufferedBytes, 0);
    }
  });

  test('byte-at-a-time delivery works and drain returns the rest', () => {
    const reader = new BackendReader(1024);
    let count = 0;
    const extra = Buffer.from('N\0\0\0\x05x');
    for (const byte of Buffer.concat([STREAM, extra])) {
      reader.push(Buffer.from([byte]));
      while (reader.next()) count++;
    }
    assert.equal(count, 5);
    const reader2 = new BackendReader(1024);
    reader2.push(Buffer.concat([STREAM, extra.subarray(0, 3)]));
    for (let i = 0; i < 4; i++) assert.ok(reader2.next());
    assert.equal(reader2.next(), undefined);
    assert.deepEqual(reader2.drain(), extra.subarray(0, 3));
  });

  test('lengths above the limit or below 4 throw ERR_PG_BACKEND_PROTOCOL from the header alone', () => {
    const big = new BackendReader(1024);
    big.push(Buffer.from([0x52, 0, 0, 4, 1]));
    assert.throws(() => big.next(), isCode('ERR_PG_BACKEND_PROTOCOL'));
    const small = new BackendReader(1024);
    small.push(Buffer.from([0x52, 0, 0, 0, 3]));
    assert.throws(() => small.next(), isCode('ERR_PG_BACKEND_PROTOCOL'));
  });
});

describe('decoders', () => {
  test('authentication requests', () => {
    assert.deepEqual(decodeAuthentication(int32(0)), { type: 'ok' });
    assert.deepEqual(decodeAuthentication(int32(3)), { type: 'cleartext' });
    assert.deepEqual(decodeAuthentication(Buffer.concat([int32(5), Buffer.from([1, 2, 3, 4])])), {
      type: 'md5',
      salt: Buffer.from([1, 2, 3, 4]),
    });
    assert.deepEqual(decodeAuthentication(Buffer.from('\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0', 'latin1')), {
      type: 'sasl',
      mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
    });
    assert.deepEqual(decodeAuthentication(Buffer.concat([int32(11), Buffer.from('r=x')])), {
      type: 'sasl-continue',
      data: 'r=x',
    });
    assert.equal(decodeAuthentication(int32(7)).type, 'unsupported');
    assert.throws(() => decodeAuthentication(Buffer.from([0, 0])), isCode('ERR_PG_BACKEND_PROTOCOL'));
    assert.throws(
      () => decodeAuthentication(Buffer.concat([int32(10), Buffer.from('SCRAM')])),
      isCode('ERR_PG_BACKEND_PROTOCOL'),
    );
  });

  test('ParameterStatus, BackendKeyData, ErrorResponse', () => {
    assert.deepEqual(decodeParameterStatus(Buffer.from('TimeZone\0UTC\0')), { name: 'TimeZone', value: 'UTC' });
    assert.throws(() => decodeParameterStatus(Buffer.from('TimeZone\0UTC')), isCode('ERR_PG_BACKEND_PROTOCOL'));
    const key = decodeBackendKeyData(Buffer.concat([int32(-5), Buffer.from([9, 8, 7, 6])]));
    assert.equal(key.processId, -5);
    assert.deepEqual(key.secret, Buffer.from([9, 8, 7, 6]));
    const fields = decodeErrorFields(Buffer.from('SFATAL\0C28P01\0Mbad\0\0'));
    assert.equal(fields.get('C'), '28P01');
    assert.equal(fields.get('M'), 'bad');
  });
});

describe('encoders', () => {
  test('StartupMessage: protocol 3.0, agent user/database, reserved names dropped, NUL refused', () => {
    const b = encodeStartupMessage('u', 'd', [
      { name: 'application_name', value: 'psql' },
      { name: 'USER', value: 'root' },
      { name: 'replication', value: 'true' },
      { name: 'application_name', value: 'dup' },
    ]);
    assert.equal(b.readInt32BE(0), b.byteLength);
    assert.equal(b.readInt32BE(4), 3 << 16);
    assert.equal(b.subarray(8).toString('latin1'), 'user\0u\0database\0d\0application_name\0psql\0\0');
    assert.throws(() => encodeStartupMessage('u', 'd', [{ name: 'x', value: 'a\0b' }]), isCode('ERR_PG_ENCODE'));
  });

  test('CancelRequest echoes the secret bytes exactly', () => {
    const b = encodeCancelRequest({ processId: 123, secret: Buffer.from([0x80, 0, 0, 1]) });
    assert.deepEqual(b, Buffer.concat([int32(16), int32(80877102), int32(123), Buffer.from([0x80, 0, 0, 1])]));
  });
});

describe('ScramClient', () => {
  // RFC 7677 §3 test vector.
  const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

  test('RFC 7677 vector: client-first, client-final proof and server signature', async () => {
    const scram = new ScramClient({ nonce: clientNonce, user: 'user' });
    assert.equal(scram.clientFirst(), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    assert.equal(
      await scram.clientFinal(serverFirst, 'pencil', 4096),
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    scram.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });

  test('a wrong server signature or a server error throws ERR_PG_BACKEND_AUTH', async () => {
    const scram = new ScramClient({ nonce: clientNonce, user: 'user' });
    await scram.clientFinal(serverFirst, 'pencil', 4096);
    assert.throws(
      () => scram.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
      isCode('ERR_PG_BACKEND_AUTH'),
    );
    assert.throws(() => scram.verifyServerFinal('e=invalid-proof'), isCode('ERR_PG_BACKEND_AUTH'));
    assert.throws(() => scram.verifyServerFinal('x=1'), isCode('ERR_PG_BACKEND_PROTOCOL'));
  });

  test('malformed server-first messages are refused; the iteration cap is checked first', () => {
    const scram = new ScramClient({ nonce: 'abc' });
    const cases = [
      'r=abc,s=c2FsdA==,i=4096',
      'r=xyzd,s=c2FsdA==,i=4096',
      'r=abcd,s=***,i=4096',
      'r=abcd,s=c2FsdA==,i=0',
      'm=ext,r=abcd',
      'r=abcd,s=c2FsdA==',
    ];
    for (const c of cases)
      assert.throws(() => scram.parseServerFirst(c, 100_000), isCode('ERR_PG_BACKEND_PROTOCOL'), c);
    assert.throws(
      () => scram.parseServerFirst('r=abcd,s=c2FsdA==,i=100001', 100_000),
      isCode('ERR_PG_SCRAM_ITERATIONS'),
    );
    assert.equal(scram.parseServerFirst('r=abcd,s=c2FsdA==,i=100000', 100_000).iterations, 100_000);
  });
});

describe('saslprep', () => {
  test('ASCII is unchanged, non-ASCII spaces map to space, NFKC applies, prohibited input stays raw', () => {
    assert.equal(saslprep('pencil'), 'pencil');
    assert.equal(saslprep('a\u00A0b'), 'a b');
    assert.equal(saslprep('I\u00ADX'), 'IX');
    assert.equal(saslprep('\u2168'), 'IX');
    assert.equal(saslprep('\u00AA'), 'a');
    assert.equal(saslprep('a\u0007\u00e9'), 'a\u0007\u00e9');
    assert.equal(saslprep('\u0627\u0031'), '\u0627\u0031');
  });
});

describe('FrontendScanner', () => {
  const query = msg('Q', Buffer.from('select 1\0'));
  const terminate = msg('X', Buffer.alloc(0));

  test('notices a whole Terminate at every split, and only as the last message', () => {
    const stream = Buffer.concat([query, terminate]);
    for (let split = 0; split <= stream.byteLength; split++) {
      const s = new FrontendScanner();
      s.feed(stream.subarray(0, split));
      if (split < stream.byteLength) assert.equal(s.terminated, false, `split ${split}`);
      s.feed(stream.subarray(split));
      assert.equal(s.terminated, true, `split ${split}`);
    }
    const s = new FrontendScanner();
    s.feed(Buffer.concat([terminate, query]));
    assert.equal(s.terminated, false);
  });
});
