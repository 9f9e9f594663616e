import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { type SessionFrame, SessionFrameSchema } from '../gen/ward/tunnel/v1/tunnel_pb.js';
import { encodeSessionFrame, tunnelServiceDefinition } from './frame-codec.js';

const bytes = fc.uint8Array({ maxLength: 300 }).chain((small) =>
  fc.oneof(
    fc.constant(small),
    fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
  ),
);

const dataFrame: fc.Arbitrary<SessionFrame> = fc.oneof(
  fc
    .record({ data: bytes, stream: fc.oneof(fc.constant(0), fc.constant(1), fc.nat({ max: 0xffffffff })) })
    .map((value) => create(SessionFrameSchema, { frame: { case: 'sshData', value } })),
  fc
    .record({ data: bytes, end: fc.boolean() })
    .map((value) => create(SessionFrameSchema, { frame: { case: 'body', value } })),
  bytes.map((messages) => create(SessionFrameSchema, { frame: { case: 'pgFrontend', value: { messages } } })),
  bytes.map((messages) => create(SessionFrameSchema, { frame: { case: 'pgBackend', value: { messages } } })),
);

test('data frames encode byte for byte as protobuf-es does, and decode back', () => {
  fc.assert(
    fc.property(dataFrame, (frame) => {
      const fast = encodeSessionFrame(frame);
      assert.deepEqual(new Uint8Array(fast), toBinary(SessionFrameSchema, frame));
      assert.deepEqual(fromBinary(SessionFrameSchema, new Uint8Array(fast)), frame);
    }),
    { numRuns: 300 },
  );
});

test('other frames and frames with unknown fields take the protobuf-es path', () => {
  const frames = [
    create(SessionFrameSchema, { frame: { case: 'windowUpdate', value: { bytes: 12345 } } }),
    create(SessionFrameSchema, {
      frame: { case: 'close', value: { error: { code: 'ERR_X', message: 'm', kind: 5 } } },
    }),
    create(SessionFrameSchema, { frame: { case: 'start', value: { sessionId: 's', connection: 'c' } } }),
    create(SessionFrameSchema, {}),
  ];
  const withUnknown = create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: new Uint8Array([1]) } } });
  withUnknown.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([7]) }];
  frames.push(withUnknown);
  for (const frame of frames)
    assert.deepEqual(new Uint8Array(encodeSessionFrame(frame)), toBinary(SessionFrameSchema, frame));
});

test('the service definition uses the fast serialiser on Session only', () => {
  const def = tunnelServiceDefinition() as unknown as Record<string, { requestSerialize: unknown; path: string }>;
  assert.equal(def['session']?.path, '/ward.tunnel.v1.Tunnel/Session');
  assert.equal(def['control']?.path, '/ward.tunnel.v1.Tunnel/Control');
  const frame = create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: new Uint8Array(5) } } });
  const serialize = def['session']?.requestSerialize as (m: unknown) => Buffer;
  assert.deepEqual(new Uint8Array(serialize(frame)), toBinary(SessionFrameSchema, frame));
});
