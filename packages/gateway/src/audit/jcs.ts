// RFC 8785 canonical JSON and the record and checkpoint encodings built on it
// (docs/audit-log.md). Free of @ward/protocol on purpose: the verification workers load this
// module, and loading the protocol package (grpc-js, protobuf, zod) costs each of them ~300 ms
// of CPU. canonical.ts wraps it with the WardError the rest of ward expects.
import * as crypto from 'node:crypto';

/** prev_hash of record 1. */
export const GENESIS_HASH = '0'.repeat(64);

/** Checkpoint signatures are over this context so they can never be replayed as another message. */
export const CHECKPOINT_CONTEXT = 'ward.audit.checkpoint.v1';

const MAX_DEPTH = 64;

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, no whitespace,
 * strings and numbers exactly as ECMAScript `JSON.stringify` writes them. Keys whose value is
 * `undefined` are dropped (as JSON does); anything that is not JSON (NaN, Infinity, bigint,
 * functions, class instances such as Buffer or Date) is refused so the encoding stays
 * unambiguous for a verifier written in another language.
 */
export function encodeJcs(value: unknown): string {
  return encode(value, 0);
}

/** What encodeJcs throws for a value that is not JSON. */
export class NotJsonError extends Error {}

function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`number ${value} is not JSON`);
      // For finite numbers String() is JSON.stringify's Number::toString, -0 as "0" included.
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) throw invalid(`data nests deeper than ${MAX_DEPTH} levels`);
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          // JSON.stringify writes holes and undefined in arrays as null; do the same.
          out += item === undefined ? 'null' : encode(item, depth + 1);
        }
        return out + ']';
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw invalid('data may hold only plain objects and arrays');
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const v = obj[key];
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += quote(key) + ':' + encode(v, depth + 1);
      }
      return out + '}';
    }
    default:
      throw invalid(`a ${typeof value} is not JSON`);
  }
}

// What JSON.stringify escapes: '"', '\\', C0 controls and lone surrogates (ES2019 well-formed
// stringify). Any surrogate sends the string to JSON.stringify, which tells lone from paired.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the C0 controls are what it looks for.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(s)` for a string, byte for byte. Most audit strings (ids, addresses, hashes,
 * timestamps, SQL) need no escaping: one native regex scan and a concatenation cost about a
 * third of the general serializer, which was about a quarter of an append's JavaScript time.
 */
export function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

function invalid(message: string): NotJsonError {
  return new NotJsonError(message);
}

/** The fields a record hash covers, in their canonical (snake_case) names. */
export interface ChainFields {
  seq: number;
  ts: string;
  kind: string;
  session_id: string | null;
  identity: string | null;
  source: string | null;
  connection: string | null;
  rule: string | null;
  decision: string | null;
  prev_hash: string;
}

/**
 * Canonical encoding of a record: the JCS form of the object holding every field of
 * `ChainFields` plus `data`. Keys are written in their sorted order directly, which is what
 * `canonicalJson` would produce, without sorting the same eleven keys for every record.
 * `dataJson` must already be canonical (`encodeJcs(data)`).
 */
export function canonicalRecord(f: ChainFields, dataJson: string): string {
  return recordText(
    str(f.connection),
    dataJson,
    str(f.decision),
    str(f.identity),
    quote(f.kind),
    quote(f.prev_hash),
    str(f.rule),
    String(f.seq),
    str(f.session_id),
    str(f.source),
    quote(f.ts),
  );
}

/**
 * The one template of the canonical record encoding, from each field's canonical JSON text,
 * in key order. Positional: an options object per record cost ~5% of an append's CPU.
 */
export function recordText(
  connection: string,
  data: string,
  decision: string,
  identity: string,
  kind: string,
  prevHash: string,
  rule: string,
  seq: string,
  sessionId: string,
  source: string,
  ts: string,
): string {
  return (
    '{"connection":' +
    connection +
    ',"data":' +
    data +
    ',"decision":' +
    decision +
    ',"identity":' +
    identity +
    ',"kind":' +
    kind +
    ',"prev_hash":' +
    prevHash +
    ',"rule":' +
    rule +
    ',"seq":' +
    seq +
    ',"session_id":' +
    sessionId +
    ',"source":' +
    source +
    ',"ts":' +
    ts +
    '}'
  );
}

function str(v: string | null): string {
  return v === null ? 'null' : quote(v);
}

// crypto.hash (node >= 20.12) hashes in one call, without a Hash object: about half the cost
// of createHash().update().digest() for a record-sized input. Same bytes in, same digest out.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

export function recordHash(f: ChainFields, dataJson: string): string {
  return sha256Hex(canonicalRecord(f, dataJson));
}

/**
 * The bytes a checkpoint signature covers. `prevSeq` is the seq of the checkpoint before it
 * (0 for the first), which chains the checkpoints so that deleting one is detected too;
 * `final` marks the checkpoint an export ends with (its `prevSeq` is the last stored one).
 */
export function checkpointPayload(p: {
  seq: number;
  hash: string;
  ts: string;
  gatewayId: string;
  prevSeq: number;
  final: boolean;
}): Buffer {
  return Buffer.from(
    encodeJcs({
      ctx: CHECKPOINT_CONTEXT,
      final: p.final,
      gateway_id: p.gatewayId,
      hash: p.hash,
      prev_seq: p.prevSeq,
      seq: p.seq,
      ts: p.ts,
    }),
    'utf8',
  );
}
