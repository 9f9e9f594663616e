import { createReadStream } from 'node:fs';
import { type ChainFields, canonicalJson } from './canonical.js';
import { type AuditSource, EXPORT_FORMAT, EXPORT_VERSION } from './export.js';
import type { VerifyResult } from './types.js';
import { ChainVerifier } from './verifier.js';

export interface VerifyOptions {
  /**
   * The gateway's public key, obtained out of band (SPKI PEM). Without it the key in the
   * export's header is used, which proves the log is internally consistent but not who wrote
   * it: someone who rewrites the whole log and signs it with their own key would pass.
   */
  publicKeyPem?: string | undefined;
}

const RECORD_KEYS = new Set([
  'type',
  'seq',
  'ts',
  'kind',
  'session_id',
  'identity',
  'source',
  'connection',
  'rule',
  'decision',
  'data',
  'prev_hash',
  'hash',
]);
const CHECKPOINT_KEYS = new Set(['type', 'seq', 'hash', 'ts', 'key_id', 'signature']);
const HEADER_KEYS = new Set(['type', 'format', 'version', 'gateway_id', 'public_key']);

/**
 * Verifies an export offline (no database): recomputes every record's hash and chain link and
 * every checkpoint signature, and requires the final signed checkpoint over the last record.
 * Stops at, and names, the first bad record.
 *
 * @param input a file path, or the export's lines (without their newline).
 * @example
 * const r = await verifyAuditExport('audit.jsonl', { publicKeyPem });
 * if (!r.ok) console.error(`record ${r.firstBad.seq} (line ${r.firstBad.line}): ${r.firstBad.reason}`);
 */
export async function verifyAuditExport(
  input: string | AsyncIterable<string> | Iterable<string>,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  const v = new ChainVerifier(opts.publicKeyPem);
  const lines = typeof input === 'string' ? readLines(input) : input;
  let n = 0;
  for await (const text of lines) {
    n++;
    if (!verifyLine(v, text, n)) break;
  }
  return v.finish(true, n + 1);
}

/**
 * Verifies the live database the same way, plus what only the running gateway knows: the
 * newest record must be the one it last committed (so deleting the tail, checkpoints and
 * all, is caught) and every record must be covered by a signed checkpoint. Synchronous: it
 * holds the event loop for the length of the scan (about 1 s per few hundred thousand records).
 */
export function verifyStore(source: AuditSource): VerifyResult {
  const audit = source.audit;
  const v = new ChainVerifier(audit.publicKeyPem);
  v.header(audit.gatewayId, audit.publicKeyPem, 0);
  for (const item of audit.iterateAll()) {
    const ok =
      'record' in item
        ? v.record(item.record, item.record.data, item.record.hash, 0)
        : v.checkpoint(
            {
              seq: item.checkpoint.seq,
              hash: item.checkpoint.hash,
              ts: item.checkpoint.ts,
              keyId: item.checkpoint.key_id,
              signature: item.checkpoint.signature,
            },
            false,
            0,
          );
    if (!ok) break;
  }
  const result = v.finish(false, 0);
  if (!result.ok) return result;
  const last = v.lastRecord;
  const head = audit.head();
  if (v.lastCheckpoint < last.seq) {
    v.fail('unsigned_tail', v.lastCheckpoint + 1, 0, `records after ${v.lastCheckpoint} carry no signed checkpoint`);
  } else if (last.seq < head.seq) {
    v.fail('truncated', last.seq + 1, 0, `this gateway committed up to seq ${head.seq}; the store ends at ${last.seq}`);
  } else if (last.seq === head.seq && last.hash !== head.hash) {
    v.fail('hash_mismatch', head.seq, 0, `record ${head.seq} is not the one this gateway committed`);
  }
  return v.result();
}

function verifyLine(v: ChainVerifier, text: string, line: number): boolean {
  const nextSeq = v.lastRecord.seq + 1;
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return v.fail('malformed', nextSeq, line, 'not a JSON line');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return v.fail('malformed', nextSeq, line, 'not a JSON object');
  }
  const o = obj as Record<string, unknown>;
  switch (o['type']) {
    case 'record': {
      if (!exactKeys(o, RECORD_KEYS) || !isInt(o['seq']) || !isStr(o['ts']) || !isStr(o['kind'])) break;
      if (!isStr(o['prev_hash']) || !isStr(o['hash']) || !isPlainObject(o['data'])) break;
      const f: ChainFields = {
        seq: o['seq'],
        ts: o['ts'],
        kind: o['kind'],
        session_id: null,
        identity: null,
        source: null,
        connection: null,
        rule: null,
        decision: null,
        prev_hash: o['prev_hash'],
      };
      for (const k of ['session_id', 'identity', 'source', 'connection', 'rule', 'decision'] as const) {
        const value = o[k];
        if (value !== null && !isStr(value)) return v.fail('malformed', nextSeq, line, `${k} is not a string or null`);
        f[k] = value;
      }
      let dataJson: string;
      try {
        dataJson = canonicalJson(o['data']);
      } catch {
        break;
      }
      return v.record(f, dataJson, o['hash'], line);
    }
    case 'checkpoint':
    case 'final': {
      if (!exactKeys(o, CHECKPOINT_KEYS) || !isInt(o['seq']) || !isStr(o['hash']) || !isStr(o['ts'])) break;
      if (!isStr(o['key_id']) || !isStr(o['signature'])) break;
      return v.checkpoint(
        { seq: o['seq'], hash: o['hash'], ts: o['ts'], keyId: o['key_id'], signature: o['signature'] },
        o['type'] === 'final',
        line,
      );
    }
    case 'header': {
      if (!exactKeys(o, HEADER_KEYS) || o['format'] !== EXPORT_FORMAT || o['version'] !== EXPORT_VERSION) break;
      if (!isStr(o['gateway_id']) || !isStr(o['public_key'])) break;
      return v.header(o['gateway_id'], o['public_key'], line);
    }
  }
  return v.fail('malformed', nextSeq, line, `not a well-formed ${String(o['type'])} line`);
}

function exactKeys(o: Record<string, unknown>, keys: ReadonlySet<string>): boolean {
  let n = 0;
  for (const k in o) {
    if (!keys.has(k)) return false;
    n++;
  }
  return n === keys.size;
}

function isStr(v: unknown): v is string {
  return typeof v === 'string';
}

function isInt(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Lines of a file without their newline; a missing newline at the very end is tolerated. */
async function* readLines(path: string): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let rest = '';
  try {
    for await (const chunk of stream) {
      const text = rest + (chunk as string);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        yield text.slice(start, nl);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
    if (rest.length > 0) yield rest;
  } finally {
    stream.destroy();
  }
}
