import type { CheckpointInput } from './checkpoint-signature.js';
import { type ChainFields, encodeJcs, recordHash, recordText, sha256Hex } from './jcs.js';

// One parser for the lines of an export (format in docs/audit-log.md), used on the main thread
// and in the verification workers alike, so both report exactly the same thing for a line.

export const EXPORT_FORMAT = 'ward-audit-export';
export const EXPORT_VERSION = 1;

/** What one export line says, with the record hash already recomputed. Stateless. */
export type ParsedLine =
  | { t: 'malformed'; reason: string }
  | { t: 'header'; gatewayId: string; publicKeyPem: string }
  | { t: 'record'; seq: number; prevHash: string; hash: string; hashOk: boolean }
  | { t: 'checkpoint'; c: CheckpointInput; final: boolean };

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
const OPTIONAL_FIELDS = ['session_id', 'identity', 'source', 'connection', 'rule', 'decision'] as const;

/**
 * The lines of a chunk of whole lines (each ending with '\n', except a last line the file does
 * not end), as reading the file line by line yields them: empty lines included, nothing after
 * the final '\n'. UTF-8 never has a 0x0A byte inside a character, so cutting at them is safe.
 */
export function chunkLines(bytes: Uint8Array): string[] {
  const lines = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function parseExportLine(text: string): ParsedLine {
  return parseRecordFast(text) ?? parseExportLineSlow(text);
}

/** @internal The general parser (JSON.parse, then every check); the reference for the fast one. */
export function parseExportLineSlow(text: string): ParsedLine {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { t: 'malformed', reason: 'not a JSON line' };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return { t: 'malformed', reason: 'not a JSON object' };
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
      for (const k of OPTIONAL_FIELDS) {
        const value = o[k];
        if (value !== null && !isStr(value)) return { t: 'malformed', reason: `${k} is not a string or null` };
        f[k] = value;
      }
      let dataJson: string;
      try {
        dataJson = encodeJcs(o['data']);
      } catch {
        break;
      }
      const hash = o['hash'];
      return { t: 'record', seq: f.seq, prevHash: f.prev_hash, hash, hashOk: recordHash(f, dataJson) === hash };
    }
    case 'checkpoint':
    case 'final': {
      if (!exactKeys(o, CHECKPOINT_KEYS) || !isInt(o['seq']) || !isStr(o['hash']) || !isStr(o['ts'])) break;
      if (!isStr(o['key_id']) || !isStr(o['signature'])) break;
      return {
        t: 'checkpoint',
        c: { seq: o['seq'], hash: o['hash'], ts: o['ts'], keyId: o['key_id'], signature: o['signature'] },
        final: o['type'] === 'final',
      };
    }
    case 'header': {
      if (!exactKeys(o, HEADER_KEYS) || o['format'] !== EXPORT_FORMAT || o['version'] !== EXPORT_VERSION) break;
      if (!isStr(o['gateway_id']) || !isStr(o['public_key'])) break;
      return { t: 'header', gatewayId: o['gateway_id'], publicKeyPem: o['public_key'] };
    }
  }
  return { t: 'malformed', reason: `not a well-formed ${String(o['type'])} line` };
}

// The fast path. A record line exactly as exportAuditLog writes it (keys in its order, no
// whitespace, strings that need no escape, data already canonical) is read with a few
// indexOf/startsWith calls and one scan of `data`, without JSON.parse and without re-encoding
// `data` (its text is hashed as it stands). Anything else, down to one escaped character,
// returns undefined and takes the general path. It returns only what the general path would
// return for the same line (see the equivalence property test in export-line.test.ts): on a
// line it accepts, JSON.parse yields these exact keys and values, and re-encoding the data
// yields the text it hashes.

const RECORD_START = '{"type":"record","seq":';
// A line holding none of these has only strings that need no escape: each string token is
// then exactly JSON.stringify of its text. One scan of the line instead of one per string.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the C0 controls are what it looks for.
const ESCAPE_OR_SURROGATE = /[\\\u0000-\u001f\ud800-\udfff]/;
// Containers nested deeper than this are left to the general path, which enforces the limit
// of 64 levels (encodeJcs) with its own error.
const FAST_MAX_DEPTH = 60;
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

// Position after the last token read; -1 once a token did not match.
let at = 0;

/** @internal */
export function parseRecordFast(text: string): ParsedLine | undefined {
  if (!text.startsWith(RECORD_START) || ESCAPE_OR_SURROGATE.test(text)) return undefined;
  const seqEnd = text.indexOf(',', RECORD_START.length);
  if (seqEnd === -1) return undefined;
  const seqText = text.slice(RECORD_START.length, seqEnd);
  const seq = Number(seqText);
  // Digits only, no leading zero, a safe integer: what JSON.parse + isInt accept, written the
  // one way String() writes it.
  if (!Number.isSafeInteger(seq) || seq < 0 || String(seq) !== seqText) return undefined;
  at = seqEnd;
  const ts = token(text, ',"ts":', false);
  const kind = token(text, ',"kind":', false);
  const session_id = token(text, ',"session_id":', true);
  const identity = token(text, ',"identity":', true);
  const source = token(text, ',"source":', true);
  const connection = token(text, ',"connection":', true);
  const rule = token(text, ',"rule":', true);
  const decision = token(text, ',"decision":', true);
  if (at < 0 || !text.startsWith(',"data":', at) || text.charCodeAt(at + 8) !== 0x7b) return undefined;
  const dataStart = at + 8;
  const dataEnd = scanCanonical(text, dataStart, 0);
  if (dataEnd < 0) return undefined;
  at = dataEnd;
  const prevHash = token(text, ',"prev_hash":', false);
  const hash = token(text, ',"hash":', false);
  if (at < 0 || at !== text.length - 1 || text.charCodeAt(at) !== 0x7d) return undefined;
  // Every token is canonical JSON text already: hash the record from them as they stand.
  const canonical = recordText(
    connection!,
    text.slice(dataStart, dataEnd),
    decision!,
    identity!,
    kind!,
    prevHash!,
    rule!,
    seqText,
    session_id!,
    source!,
    ts!,
  );
  const hashValue = hash!.slice(1, -1);
  return {
    t: 'record',
    seq,
    prevHash: prevHash!.slice(1, -1),
    hash: hashValue,
    hashOk: sha256Hex(canonical) === hashValue,
  };
}

/** `key`, then a string token (or `null` when `nullable`): the token's text, quotes included. */
function token(text: string, key: string, nullable: boolean): string | undefined {
  if (at < 0 || !text.startsWith(key, at)) {
    at = -1;
    return undefined;
  }
  const start = at + key.length;
  if (nullable && text.startsWith('null', start)) {
    at = start + 4;
    return 'null';
  }
  const close = text.charCodeAt(start) === 0x22 ? text.indexOf('"', start + 1) : -1;
  if (close === -1) {
    at = -1;
    return undefined;
  }
  at = close + 1;
  return text.slice(start, at);
}

/**
 * End of the JSON value at `i` if its text is already canonical (RFC 8785: no whitespace,
 * keys strictly increasing by UTF-16 code units, numbers as String(Number(text)) writes them;
 * the caller has checked the line holds no escape, so strings are canonical); -1 otherwise,
 * including anything merely unusual.
 */
function scanCanonical(t: string, i: number, depth: number): number {
  const c = t.charCodeAt(i);
  if (c === 0x7b) {
    if (depth >= FAST_MAX_DEPTH) return -1;
    i++;
    if (t.charCodeAt(i) === 0x7d) return i + 1;
    let prevKey: string | undefined;
    for (;;) {
      if (t.charCodeAt(i) !== 0x22) return -1;
      const close = t.indexOf('"', i + 1);
      if (close === -1) return -1;
      const key = t.slice(i + 1, close);
      if (prevKey !== undefined && !(prevKey < key)) return -1;
      prevKey = key;
      if (t.charCodeAt(close + 1) !== 0x3a) return -1;
      i = scanCanonical(t, close + 2, depth + 1);
      if (i < 0) return -1;
      const d = t.charCodeAt(i);
      if (d === 0x7d) return i + 1;
      if (d !== 0x2c) return -1;
      i++;
    }
  }
  if (c === 0x5b) {
    if (depth >= FAST_MAX_DEPTH) return -1;
    i++;
    if (t.charCodeAt(i) === 0x5d) return i + 1;
    for (;;) {
      i = scanCanonical(t, i, depth + 1);
      if (i < 0) return -1;
      const d = t.charCodeAt(i);
      if (d === 0x5d) return i + 1;
      if (d !== 0x2c) return -1;
      i++;
    }
  }
  if (c === 0x22) {
    const close = t.indexOf('"', i + 1);
    return close === -1 ? -1 : close + 1;
  }
  if (t.startsWith('null', i) || t.startsWith('true', i)) return i + 4;
  if (t.startsWith('false', i)) return i + 5;
  let j = i;
  for (
    let d = t.charCodeAt(j);
    (d >= 0x30 && d <= 0x39) || d === 0x2d || d === 0x2b || d === 0x2e || d === 0x65 || d === 0x45;
    d = t.charCodeAt(++j)
  ) {}
  const num = t.slice(i, j);
  return j > i && JSON_NUMBER.test(num) && String(Number(num)) === num ? j : -1;
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

// Messages between verifyAuditExport and its workers (verify-worker.ts).

export interface WorkerInit {
  /** SPKI DER of the key the main thread's verifier checks signatures against. */
  keyDer: Uint8Array;
  gatewayId: string;
}

export interface ChunkRequest {
  id: number;
  /** Whole lines, each ending with '\n', except a last line the file does not end. */
  bytes: Uint8Array;
}

export const LineKind = { Malformed: 0, Header: 1, Record: 2, Checkpoint: 3, Final: 4 } as const;

export const SignatureCheck = { NotChecked: 0, Good: 1, Bad: 2 } as const;

/**
 * Per line: `kinds`, `seqs`, `flags` (record: 1 when the hash recomputes; checkpoint: a
 * SignatureCheck), `prevSeqs` (the previous checkpoint seq a signature check assumed), and the
 * line's strings, concatenated in `text` and cut at `ends`: malformed [reason], header
 * [gateway id, public key], record [prev_hash, hash], checkpoint [hash, ts, key_id, signature].
 */
export interface ChunkResult {
  id: number;
  lines: number;
  kinds: Uint8Array;
  seqs: Float64Array;
  flags: Uint8Array;
  prevSeqs: Float64Array;
  text: string;
  ends: Uint32Array;
}
