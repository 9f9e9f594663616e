import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Duplex, PassThrough, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { WardError } from '../errors.js';
import { type SessionFrame, SessionFrameSchema } from '../gen/ward/tunnel/v1/tunnel_pb.js';
import { fromGrpcError, payloadBytes, SessionChannel } from './session-channel.js';

/**
 * Two object-mode duplexes wired back to back, standing in for the two ends of a gRPC stream.
 * Like grpc-js, `write` returns false once `highWaterMark` frames wait for the peer to read.
 */
function framePair(highWaterMark = 16): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      objectMode: true,
      highWaterMark,
      read() {},
      write(frame: SessionFrame, _enc, cb) {
        peer().push(frame);
        // Yield so the peer's 'data' handlers run between frames, as they would over a socket.
        setImmediate(cb);
      },
      final(cb) {
        peer().push(null);
        cb();
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

const WINDOW = 64 * 1024;
const MAX_FRAME = 16 * 1024;
const opts = { windowBytes: WINDOW, maxFrameBytes: MAX_FRAME };
const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >>> 16;
  }
  return b;
}

describe('SessionChannel over an in-memory duplex pair', () => {
  test('payloadBytes counts data frames only', () => {
    assert.equal(payloadBytes(data(new Uint8Array(7))), 7);
    assert.equal(
      payloadBytes(
        create(SessionFrameSchema, { frame: { case: 'pgBackend', value: { messages: new Uint8Array(3) } } }),
      ),
      3,
    );
    assert.equal(
      payloadBytes(create(SessionFrameSchema, { frame: { case: 'body', value: { data: new Uint8Array(5) } } })),
      5,
    );
    assert.equal(payloadBytes(create(SessionFrameSchema, { frame: { case: 'windowUpdate', value: { bytes: 9 } } })), 0);
  });

  test('a large payload is split at maxFrameBytes and arrives intact', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    const sizes: number[] = [];
    const parts: Buffer[] = [];
    const payload = pattern(5 * WINDOW + 123, 1);
    const got = new Promise<void>((resolve) => {
      let n = 0;
      rx.onFrame((frame) => {
        const bytes = payloadBytes(frame);
        sizes.push(bytes);
        if (frame.frame.case === 'sshData') parts.push(Buffer.from(frame.frame.value.data));
        n += bytes;
        rx.delivered(bytes);
        if (n === payload.length) resolve();
      });
    });
    await tx.sendData(payload, data);
    await got;
    assert.ok(sizes.every((s) => s <= MAX_FRAME));
    assert.equal(sizes.length, Math.ceil(payload.length / MAX_FRAME));
    assert.deepEqual(Buffer.concat(parts), payload);
    tx.close();
    rx.close();
  });

  test('a receiver that never delivers holds the sender at exactly the window', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    let frames = 0;
    rx.onFrame(() => frames++);
    let sent = 0;
    const chunk = new Uint8Array(4096);
    const pump = (async () => {
      for (let i = 0; i < 64; i++) {
        await tx.sendData(chunk, data);
        sent += chunk.byteLength;
      }
    })();
    // Let every frame the sender may send arrive.
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sent, WINDOW);
    assert.equal(rx.bufferedBytes, WINDOW);
    assert.equal(frames, WINDOW / 4096);
    // Delivering returns credit in batches and the rest follows.
    rx.onFrame((frame) => rx.delivered(payloadBytes(frame)));
    rx.delivered(WINDOW);
    await pump;
    assert.equal(sent, 64 * 4096);
    tx.close();
  });

  test('frames that arrive before a consumer is set are queued, in order', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    rx.onFrame(undefined);
    for (let i = 0; i < 5; i++) await tx.sendData(new Uint8Array([i]), data);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    const seen: number[] = [];
    rx.onFrame((f) => {
      if (f.frame.case === 'sshData') seen.push(f.frame.value.data[0] ?? -1);
    });
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  });

  test('deliverTo returns credit when the writable has taken the bytes, not before', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    const pending: Array<() => void> = [];
    let written = 0;
    // A writable that accepts bytes only when the test says so: a stuck client socket.
    const sink = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length;
        pending.push(cb);
      },
    });
    rx.onFrame((f) => {
      if (f.frame.case === 'sshData') rx.deliverTo(sink, f.frame.value.data);
    });
    let sent = 0;
    const pump = (async () => {
      const chunk = new Uint8Array(MAX_FRAME);
      for (let i = 0; i < (3 * WINDOW) / MAX_FRAME; i++) {
        await tx.sendData(chunk, data);
        sent += chunk.byteLength;
      }
    })();
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    assert.equal(sent, WINDOW);
    assert.equal(rx.bufferedBytes, WINDOW);
    while (sent < 3 * WINDOW || pending.length > 0) {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await pump;
    assert.equal(written, 3 * WINDOW);
    tx.close();
  });

  test('pipeFrom pauses its source while credit is short', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    rx.onFrame(() => {});
    const source = new PassThrough({ highWaterMark: 1024 });
    tx.pipeFrom(source, data);
    let accepted = 0;
    for (let i = 0; i < 64 && source.write(Buffer.alloc(4096)); i++) {
      accepted++;
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    // The peer holds one window; the source then fills its own small buffer and says stop.
    assert.equal(rx.bufferedBytes, WINDOW);
    assert.ok(accepted < 64, `source accepted ${accepted} chunks without back-pressure`);
    source.destroy();
    tx.close();
  });

  test('a peer sending beyond its credit gets ERR_TUNNEL_FLOW_VIOLATION, and so does the receiver', async () => {
    const [x, y] = framePair();
    const rx = new SessionChannel(y, opts);
    rx.onFrame(() => {});
    const fromRx: SessionFrame[] = [];
    x.on('data', (f: SessionFrame) => fromRx.push(f));
    const closed = new Promise<WardError | undefined>((resolve) => rx.onClose(resolve));
    // A raw peer ignoring credit: one window plus one byte.
    x.write(data(new Uint8Array(WINDOW)));
    x.write(data(new Uint8Array(1)));
    const reason = await closed;
    assert.equal(reason?.code, 'ERR_TUNNEL_FLOW_VIOLATION');
    assert.equal(rx.closeReason?.code, 'ERR_TUNNEL_FLOW_VIOLATION');
    await new Promise((r) => setImmediate(r));
    const close = fromRx.find((f) => f.frame.case === 'close');
    assert.ok(close && close.frame.case === 'close');
    assert.equal(close.frame.value.error?.code, 'ERR_TUNNEL_FLOW_VIOLATION');
  });

  test('close with an error reaches the peer as its close reason; sendData then rejects', async () => {
    const [x, y] = framePair();
    const a = new SessionChannel(x, opts);
    const b = new SessionChannel(y, opts);
    const reasons: Array<string | undefined> = [];
    const closed = new Promise<void>((resolve) =>
      b.onClose((r) => {
        reasons.push(r?.code);
        resolve();
      }),
    );
    a.close(new WardError('ERR_GATEWAY_SHUTDOWN', 'unavailable', 'bye'));
    a.close(new WardError('ERR_OTHER', 'internal', 'ignored: close is idempotent'));
    await closed;
    assert.deepEqual(reasons, ['ERR_GATEWAY_SHUTDOWN']);
    assert.equal(b.closeReason?.kind, 'unavailable');
    assert.equal(a.closeReason?.code, 'ERR_GATEWAY_SHUTDOWN');
    await assert.rejects(a.sendData(new Uint8Array(1), data), { code: 'ERR_GATEWAY_SHUTDOWN' });
    // A listener added after the end still hears about it, once.
    let late = 0;
    b.onClose(() => late++);
    assert.equal(late, 1);
  });

  test('a normal close has no reason; an end without a close frame is ERR_TUNNEL_CLOSED', async () => {
    const [x, y] = framePair();
    const a = new SessionChannel(x, opts);
    const b = new SessionChannel(y, opts);
    const normal = new Promise<WardError | undefined>((resolve) => b.onClose(resolve));
    a.close();
    assert.equal(await normal, undefined);

    const [p, q] = framePair();
    const c = new SessionChannel(q, opts);
    const cut = new Promise<WardError | undefined>((resolve) => c.onClose(resolve));
    p.end();
    assert.equal((await cut)?.code, 'ERR_TUNNEL_CLOSED');
  });

  test('a sender waiting for credit is released with the close reason', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    rx.onFrame(() => {});
    const pending = tx.sendData(new Uint8Array(2 * WINDOW), data);
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    rx.close(new WardError('ERR_CLIENT_GONE', 'unavailable', 'client left'));
    await assert.rejects(pending, { code: 'ERR_CLIENT_GONE' });
  });

  test('send and a normal close wait for data still waiting for credit (end never overtakes the body)', async () => {
    const [x, y] = framePair();
    const tx = new SessionChannel(x, opts);
    const rx = new SessionChannel(y, opts);
    const order: string[] = [];
    let bytes = 0;
    let release: (() => void) | undefined;
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        release = cb;
      },
    });
    rx.onFrame((f) => {
      if (f.frame.case === 'sshData') rx.deliverTo(slow, f.frame.value.data);
      else order.push(f.frame.case ?? 'none');
    });
    const rxClosed = new Promise<WardError | undefined>((resolve) => rx.onClose(resolve));
    const source = new PassThrough();
    tx.pipeFrom(source, data);
    // What a protocol session does: on the source's end, mark the end and close normally.
    source.on('end', () => {
      tx.send(create(SessionFrameSchema, { frame: { case: 'sshEof', value: {} } }));
      tx.close();
    });
    source.end(Buffer.alloc(3 * WINDOW));
    for (let i = 0; i < 5000 && !rx.closed; i++) {
      const r = release;
      release = undefined;
      r?.();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await rxClosed, undefined);
    assert.equal(bytes, 3 * WINDOW);
    assert.deepEqual(order, ['sshEof']);
  });

  test('credit and close-with-error are not queued behind stuck data', async () => {
    const [x, y] = framePair();
    const a = new SessionChannel(x, opts);
    const b = new SessionChannel(y, opts);
    b.onFrame(() => {});
    a.onFrame((f) => a.delivered(payloadBytes(f)));
    // a → b is stuck (b never delivers); b → a must still flow, so a's credit goes out at once.
    const stuck = a.sendData(new Uint8Array(2 * WINDOW), data);
    await b.sendData(new Uint8Array(3 * WINDOW), data);
    a.close(new WardError('ERR_CLIENT_GONE', 'unavailable', 'client left'));
    assert.equal(a.closeReason?.code, 'ERR_CLIENT_GONE');
    await assert.rejects(stuck, { code: 'ERR_CLIENT_GONE' });
    const reason = await new Promise<WardError | undefined>((resolve) => b.onClose(resolve));
    assert.equal(reason?.code, 'ERR_CLIENT_GONE');
  });

  test('fromGrpcError maps statuses to stable codes', () => {
    const codes = [
      [GrpcStatus.RESOURCE_EXHAUSTED, 'ERR_TUNNEL_FRAME_TOO_LARGE'],
      [GrpcStatus.UNAUTHENTICATED, 'ERR_TUNNEL_AGENT_KEY_INVALID'],
      [GrpcStatus.UNAVAILABLE, 'ERR_TUNNEL_UNAVAILABLE'],
      [GrpcStatus.CANCELLED, 'ERR_TUNNEL_UNAVAILABLE'],
      [GrpcStatus.INTERNAL, 'ERR_TUNNEL_MALFORMED_FRAME'],
    ] as const;
    for (const [code, expected] of codes) {
      const err = Object.assign(new Error('x'), { code, details: 'd' });
      const ward = fromGrpcError(err);
      assert.equal(ward.code, expected);
      assert.equal(ward.cause, err);
    }
  });

  test('checksum of a bulk transfer both ways at once', async () => {
    const [x, y] = framePair();
    const a = new SessionChannel(x, opts);
    const b = new SessionChannel(y, opts);
    const aOut = pattern(300_000, 7);
    const bOut = pattern(200_000, 9);
    const sink = (ch: SessionChannel, total: number) =>
      new Promise<string>((resolve) => {
        const h = createHash('sha256');
        let n = 0;
        ch.onFrame((f) => {
          if (f.frame.case !== 'sshData') return;
          h.update(f.frame.value.data);
          n += f.frame.value.data.byteLength;
          ch.delivered(f.frame.value.data.byteLength);
          if (n === total) resolve(h.digest('hex'));
        });
      });
    const atB = sink(b, aOut.length);
    const atA = sink(a, bOut.length);
    await Promise.all([a.sendData(aOut, data), b.sendData(bOut, data)]);
    assert.equal(await atB, createHash('sha256').update(aOut).digest('hex'));
    assert.equal(await atA, createHash('sha256').update(bOut).digest('hex'));
  });
});
