/**
 * A fast path for the tunnel's hot message: a SessionFrame carrying payload bytes.
 *
 * protobuf-es serialises through a growable BinaryWriter: for a 64 KiB payload that is a
 * zero-filled buffer grown by doubling, the payload copied in, shifted twice when the two
 * length prefixes are filled in, and sliced out again, before grpc-js copies it once more to
 * add its 5-byte header. That was a quarter of the tunnel's CPU in the benchmark. Here a data
 * frame is written straight into one buffer of the exact size (one copy of the payload);
 * every other frame still goes through protobuf-es. The output is byte-for-byte what `toBinary`
 * produces (a property test checks it), so the peer decodes it with the ordinary code.
 */
import { toBinary } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { type SessionFrame, SessionFrameSchema, Tunnel } from '../gen/ward/tunnel/v1/tunnel_pb.js';
import { grpcServiceDefinition } from '../grpc-service.js';

// Wire type 2 (length-delimited) tags, from the field numbers in tunnel.proto.
const TAG_BODY = [(12 << 3) | 2]; // SessionFrame.body = 12
const TAG_PG_FRONTEND = [0xa2, 0x01]; // SessionFrame.pg_frontend = 20
const TAG_PG_BACKEND = [0xaa, 0x01]; // SessionFrame.pg_backend = 21
const TAG_SSH_DATA = [0xfa, 0x01]; // SessionFrame.ssh_data = 31
const TAG_INNER_BYTES = 0x0a; // field 1, length-delimited, in all four messages
const TAG_INNER_VARINT2 = 0x10; // field 2, varint: BodyChunk.end, SshData.stream

function varintSize(n: number): number {
  let size = 1;
  while (n > 0x7f) {
    n >>>= 7;
    size++;
  }
  return size;
}

function putVarint(out: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  return pos;
}

function hasUnknown(message: { $unknown?: unknown[] | undefined }): boolean {
  return message.$unknown !== undefined && message.$unknown.length > 0;
}

/** Serialises a SessionFrame; data frames take the one-copy path. */
export function encodeSessionFrame(frame: SessionFrame): Buffer {
  let tag: number[];
  let data: Uint8Array;
  let field2 = 0;
  const f = frame.frame;
  switch (f.case) {
    case 'sshData':
      tag = TAG_SSH_DATA;
      data = f.value.data;
      field2 = f.value.stream;
      break;
    case 'body':
      tag = TAG_BODY;
      data = f.value.data;
      field2 = f.value.end ? 1 : 0;
      break;
    case 'pgFrontend':
      tag = TAG_PG_FRONTEND;
      data = f.value.messages;
      break;
    case 'pgBackend':
      tag = TAG_PG_BACKEND;
      data = f.value.messages;
      break;
    default:
      return slowEncode(frame);
  }
  if (hasUnknown(frame) || hasUnknown(f.value)) return slowEncode(frame);
  // proto3: empty bytes and zero scalars are not written.
  const len = data.byteLength;
  const inner = (len > 0 ? 1 + varintSize(len) + len : 0) + (field2 !== 0 ? 1 + varintSize(field2) : 0);
  const out = Buffer.allocUnsafe(tag.length + varintSize(inner) + inner);
  let pos = 0;
  for (const b of tag) out[pos++] = b;
  pos = putVarint(out, pos, inner);
  if (len > 0) {
    out[pos++] = TAG_INNER_BYTES;
    pos = putVarint(out, pos, len);
    out.set(data, pos);
    pos += len;
  }
  if (field2 !== 0) {
    out[pos++] = TAG_INNER_VARINT2;
    pos = putVarint(out, pos, field2);
  }
  return out;
}

function slowEncode(frame: SessionFrame): Buffer {
  const bytes = toBinary(SessionFrameSchema, frame);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

let cached: ServiceDefinition | undefined;

/** The Tunnel service for grpc-js, with the fast serialiser on the Session stream's frames. */
export function tunnelServiceDefinition(): ServiceDefinition {
  if (cached) return cached;
  const definition = { ...grpcServiceDefinition(Tunnel) } as Record<string, MethodDefinition<unknown, unknown>>;
  const session = definition['session'];
  if (!session) throw new Error('tunnel.proto has no Session method');
  const encode = (message: unknown) => encodeSessionFrame(message as SessionFrame);
  definition['session'] = { ...session, requestSerialize: encode, responseSerialize: encode };
  cached = definition as ServiceDefinition;
  return cached;
}
