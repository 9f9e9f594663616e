/**
 * What a real PostgreSQL never does but a broken or hostile one might: oversized and malformed
 * replies, unsupported methods, a SCRAM server that cannot prove itself, TLS downgrades. A
 * small scripted TCP server plays the backend; each case ends only its own session.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { create, PostgresStartSchema, type WardError } from '@ward/protocol';
import type { PostgresBackend } from './postgres-backend.js';
import { servePostgresSession } from './postgres-session.js';
import { createChannelPair } from './testing/channel-pair.js';
import { GatewaySide } from './testing/gateway-side.js';

const PASSWORD = 'hostile-test-password-42';

/** Reads what the agent sends: the untyped startup packet first, typed messages after. */
class FrontendReader {
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | undefined;
  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiter?.();
    });
  }
  async #need(n: number): Promise<void> {
    while (this.#buffer.byteLength < n) await new Promise<void>((resolve) => (this.#waiter = resolve));
  }
  async #take(n: number): Promise<Buffer> {
    await this.#need(n);
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }
  async packet(): Promise<Buffer> {
    await this.#need(4);
    const length = this.#buffer.readUInt32BE(0);
    return (await this.#take(length)).subarray(4);
  }
  async message(): Promise<{ code: string; body: Buffer }> {
    await this.#need(5);
    const length = this.#buffer.readUInt32BE(1);
    const all = await this.#take(length + 1);
    return { code: String.fromCharCode(all[0] as number), body: all.subarray(5) };
  }
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`);
const msg = (code: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(code), int32(body.byteLength + 4), body]);
};
const auth = (type: number, ...rest: Buffer[]) => msg('R', int32(type), ...rest);
const errorResponse = (code: string, text: string) =>
  msg('E', Buffer.from('SFATAL\0'), Buffer.from(`C${code}\0`), Buffer.from(`M${text}\0`), Buffer.from([0]));
const readyMessages = () =>
  Buffer.concat([
    auth(0),
    msg('S', cstr('server_version'), cstr('15.0-hostile')),
    msg('K', int32(4242), Buffer.from([0xde, 0xad, 0xbe, 0xef])),
    msg('Z', Buffer.from('I')),
  ]);

type Script = (socket: net.Socket, reader: FrontendReader, connection: number) => Promise<void> | void;

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function hostile(script: Script): Promise<number> {
  let connection = 0;
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const reader = new FrontendReader(socket);
    Promise.resolve(script(socket, reader, connection++)).catch(() => socket.destroy());
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

function backend(port: number, extra: Partial<PostgresBackend> = {}): PostgresBackend {
  return {
    name: 'hostile',
    host: '127.0.0.1',
    port,
    database: 'db',
    user: 'agent_user',
    password: PASSWORD,
    tls: { mode: 'disable' },
    maxScramIterations: 100_000,
    ...extra,
  };
}

function open(b: PostgresBackend, parameters: Array<{ name: string; value: string }> = []) {
  const pair = createChannelPair();
  const gateway = new GatewaySide(pair.gateway);
  servePostgresSession(pair.agent, create(PostgresStartSchema, { parameters, database: '' }), b);
  return gateway;
}

async function failure(script: Script, extra: Partial<PostgresBackend> = {}): Promise<WardError> {
  const port = await hostile(script);
  const gateway = open(backend(port, extra));
  await assert.rejects(gateway.ready);
  const reason = await gateway.closed;
  assert.ok(reason);
  assert.ok(!reason.message.includes(PASSWORD), `password leaked: ${reason.message}`);
  return reason;
}

/** Plays a SCRAM server up to the client-final message; `finish` decides what comes next. */
function scramServer(finish: (socket: net.Socket) => void, nonceOf = (client: string) => `${client}srv`): Script {
  return async (socket, reader) => {
    await reader.packet();
    socket.write(auth(10, cstr('SCRAM-SHA-256'), Buffer.from([0])));
    const first = await reader.message();
    const text = first.body.toString('utf8');
    const clientNonce = /r=([^,\0]+)/.exec(text)?.[1] ?? '';
    socket.write(auth(11, Buffer.from(`r=${nonceOf(clientNonce)},s=${randomBytes(16).toString('base64')},i=4096`)));
    await reader.message();
    finish(socket);
  };
}

describe('servePostgresSession against a hostile backend', () => {
  test('the startup packet carries the agent user and database, never the client-chosen ones', async () => {
    let startup: Buffer | undefined;
    const port = await hostile(async (socket, reader) => {
      startup = await reader.packet();
      socket.write(readyMessages());
    });
    const gateway = open(backend(port), [
      { name: 'application_name', value: 'psql' },
      { name: 'user', value: 'postgres' },
      { name: 'database', value: 'template1' },
      { name: 'replication', value: 'true' },
      { name: 'options', value: '-c search_path=x' },
    ]);
    const ready = await gateway.ready;
    assert.deepEqual(
      ready.parameters.map(({ name, value }) => ({ name, value })),
      [{ name: 'server_version', value: '15.0-hostile' }],
    );
    const body = startup as Buffer;
    assert.equal(body.readInt32BE(0), 196608);
    const pairs = body.subarray(4).toString('utf8').split('\0');
    assert.deepEqual(pairs.slice(0, -2), [
      'user',
      'agent_user',
      'database',
      'db',
      'application_name',
      'psql',
      'options',
      '-c search_path=x',
    ]);
    gateway.channel.close();
  });

  test('bytes after ReadyForQuery are relayed, and PgCancel sends the real key on a new connection', async () => {
    let cancelPacket: Buffer | undefined;
    let cancelled: () => void = () => {};
    const gotCancel = new Promise<void>((resolve) => (cancelled = resolve));
    const port = await hostile(async (socket, reader, connection) => {
      if (connection === 1) {
        cancelPacket = await reader.packet();
        socket.end();
        cancelled();
        return;
      }
      await reader.packet();
      // One write: the session must not lose what follows ReadyForQuery in the same read.
      socket.write(Buffer.concat([readyMessages(), msg('N', Buffer.from('SNOTICE\0C00000\0Mhello\0\0'))]));
    });
    const gateway = open(backend(port));
    await gateway.ready;
    for (let i = 0; i < 1000 && gateway.unsolicited.length === 0; i++) await new Promise(setImmediate);
    assert.deepEqual(
      gateway.unsolicited.map((m) => m.name),
      ['notice'],
    );
    gateway.cancel();
    await gotCancel;
    assert.deepEqual(
      cancelPacket,
      Buffer.concat([int32(80877102), int32(4242), Buffer.from([0xde, 0xad, 0xbe, 0xef])]),
    );
    assert.equal(gateway.channel.closed, false);
    gateway.channel.close();
  });

  test('a length prefix over the startup limit is refused before buffering', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(Buffer.from([0x52, 0x7f, 0xff, 0xff, 0xff]));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('a length prefix below 4 is refused', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(Buffer.from([0x52, 0, 0, 0, 3]));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('a truncated MD5 request is refused', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(auth(5, Buffer.from([1, 2])));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('an unexpected message before authentication is refused', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(msg('D', Buffer.from([0, 0])));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('endless ParameterStatus messages are cut off', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      const status = msg('S', cstr('x'), cstr('y'));
      socket.write(Buffer.concat([auth(0), ...Array.from({ length: 1001 }, () => status)]));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('GSSAPI, SSPI and Kerberos are refused clearly', async () => {
    for (const method of [7, 9, 2]) {
      const err = await failure(async (socket, reader) => {
        await reader.packet();
        socket.write(auth(method));
      });
      assert.equal(err.code, 'ERR_PG_BACKEND_AUTH_UNSUPPORTED');
    }
  });

  test('a server that offers only SCRAM-SHA-256-PLUS is refused (no channel binding yet)', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(auth(10, cstr('SCRAM-SHA-256-PLUS'), Buffer.from([0])));
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH_UNSUPPORTED');
  });

  test('a wrong SCRAM server signature is an error', async () => {
    const err = await failure(
      scramServer((socket) => socket.write(auth(12, Buffer.from(`v=${randomBytes(32).toString('base64')}`)))),
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH');
  });

  test('a SCRAM server that skips SASLFinal is refused', async () => {
    const err = await failure(scramServer((socket) => socket.write(readyMessages())));
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH');
  });

  test('a SCRAM nonce that does not extend the client nonce is refused', async () => {
    const err = await failure(
      scramServer(
        () => {},
        () => 'forged-nonce',
      ),
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_PROTOCOL');
  });

  test('a SCRAM iteration count over the cap is refused before any derivation', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(auth(10, cstr('SCRAM-SHA-256'), Buffer.from([0])));
      const first = (await reader.message()).body.toString('utf8');
      const nonce = /r=([^,\0]+)/.exec(first)?.[1] ?? '';
      socket.write(auth(11, Buffer.from(`r=${nonce}x,s=${randomBytes(16).toString('base64')},i=2000000000`)));
    });
    assert.equal(err.code, 'ERR_PG_SCRAM_ITERATIONS');
  });

  test('a server that echoes the password in its error never gets it into the message', async () => {
    let received = '';
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.write(auth(3));
      const p = await reader.message();
      received = p.body.toString('utf8').replace(/\0$/, '');
      socket.end(errorResponse('28P01', `password "${received}" is not right`));
    });
    assert.equal(received, PASSWORD);
    assert.equal(err.code, 'ERR_PG_BACKEND_AUTH');
    assert.ok(err.message.includes('[redacted]'));
  });

  test('a connection closed during startup: ERR_PG_BACKEND_CLOSED', async () => {
    const err = await failure(async (socket, reader) => {
      await reader.packet();
      socket.end();
    });
    assert.equal(err.code, 'ERR_PG_BACKEND_CLOSED');
  });

  test("tls require against a server that answers 'N': ERR_PG_BACKEND_TLS", async () => {
    const err = await failure(
      async (socket, reader) => {
        await reader.packet();
        socket.write('N');
      },
      { tls: { mode: 'require' } },
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_TLS');
  });

  test("bytes injected after the 'S' answer are refused (CVE-2021-23222)", async () => {
    const err = await failure(
      async (socket, reader) => {
        await reader.packet();
        socket.write(Buffer.concat([Buffer.from('S'), auth(0)]));
      },
      { tls: { mode: 'require' } },
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_TLS');
  });

  test('a server that never answers: ERR_PG_BACKEND_UNREACHABLE at the connect timeout', async () => {
    const err = await failure(
      async (_socket, reader) => {
        await reader.packet();
      },
      { connectTimeoutMs: 200 },
    );
    assert.equal(err.code, 'ERR_PG_BACKEND_UNREACHABLE');
  });
});
