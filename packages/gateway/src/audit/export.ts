import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { AuditLog, CheckpointRow, RecordRow } from './audit-log.js';
import { EXPORT_FORMAT, EXPORT_VERSION } from './export-line.js';

/** Anything that holds an audit log: a `Store` does. */
export interface AuditSource {
  readonly audit: AuditLog;
}

export { EXPORT_FORMAT, EXPORT_VERSION };

export interface ExportResult {
  records: number;
  checkpoints: number;
  /** What the final checkpoint vouches for. */
  lastSeq: number;
  lastHash: string;
}

const PAGE = 2000;
const CHUNK = 256 * 1024;

/**
 * Writes the audit log as JSON Lines (format in docs/audit-log.md): a header (format version,
 * gateway id, public key PEM), every record in seq order, each stored checkpoint right after
 * the record it vouches for, and a final checkpoint signed now over the last record this
 * gateway committed. Reads in pages, so appends keep committing while it runs.
 * A path is written with mode 0600 and fsynced; a stream is written with backpressure and
 * left open for the caller to end.
 *
 * @example
 * const { records } = await exportAuditLog(store, '/var/lib/ward/audit-2025-06.jsonl');
 * // then, anywhere, with only the file and the public key:
 * const result = await verifyAuditExport('/var/lib/ward/audit-2025-06.jsonl', { publicKeyPem });
 */
export async function exportAuditLog(source: AuditSource, out: string | NodeJS.WritableStream): Promise<ExportResult> {
  const audit = source.audit;
  if (audit.healthy) await audit.flush();
  // The final checkpoint signs what this process knows it committed and synced, not whatever
  // the table holds now: rows forged under the head would otherwise be vouched for, and rows
  // committed while flush() waited may still be lost to a power cut.
  const head = audit.durableHead();
  const sink = typeof out === 'string' ? await fileSink(out) : streamSink(out);
  let ok = false;
  try {
    let buffered = '';
    const emit = async (line: string) => {
      buffered += line + '\n';
      if (buffered.length >= CHUNK) {
        const chunk = buffered;
        buffered = '';
        await sink.write(chunk);
      }
    };
    await emit(
      JSON.stringify({
        type: 'header',
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        gateway_id: audit.gatewayId,
        public_key: audit.publicKeyPem,
      }),
    );
    let records = 0;
    let checkpoints = 0;
    let after = 0;
    let cpAfter = 0;
    for (;;) {
      const rows = audit.readRecordRows(after, head.seq, PAGE);
      const upTo = rows.length < PAGE ? head.seq : rows[rows.length - 1]!.seq;
      const cps = audit.readCheckpoints(cpAfter, upTo, Number.MAX_SAFE_INTEGER);
      let c = 0;
      for (const row of rows) {
        while (c < cps.length && cps[c]!.seq < row.seq) {
          await emit(checkpointLine('checkpoint', cps[c++]!));
          checkpoints++;
        }
        await emit(recordLine(row));
        records++;
        while (c < cps.length && cps[c]!.seq === row.seq) {
          await emit(checkpointLine('checkpoint', cps[c++]!));
          checkpoints++;
        }
      }
      while (c < cps.length) {
        await emit(checkpointLine('checkpoint', cps[c++]!));
        checkpoints++;
      }
      cpAfter = upTo;
      if (rows.length < PAGE) break;
      after = upTo;
    }
    const final = audit.signCheckpoint(head.seq, head.hash, head.seq, true);
    await emit(
      checkpointLine('final', {
        seq: final.seq,
        hash: final.hash,
        ts: final.ts,
        key_id: final.keyId,
        signature: final.signature,
      }),
    );
    if (buffered.length > 0) await sink.write(buffered);
    ok = true;
    return { records, checkpoints, lastSeq: head.seq, lastHash: head.hash };
  } finally {
    await sink.end(ok);
  }
}

/** @internal One record line, exactly as an export writes it. */
export function recordLine(r: RecordRow): string {
  // r.data is stored as canonical JSON text: embed it rather than parse and re-encode it.
  return (
    '{"type":"record","seq":' +
    r.seq +
    ',"ts":' +
    JSON.stringify(r.ts) +
    ',"kind":' +
    JSON.stringify(r.kind) +
    ',"session_id":' +
    JSON.stringify(r.session_id) +
    ',"identity":' +
    JSON.stringify(r.identity) +
    ',"source":' +
    JSON.stringify(r.source) +
    ',"connection":' +
    JSON.stringify(r.connection) +
    ',"rule":' +
    JSON.stringify(r.rule) +
    ',"decision":' +
    JSON.stringify(r.decision) +
    ',"data":' +
    r.data +
    ',"prev_hash":' +
    JSON.stringify(r.prev_hash) +
    ',"hash":' +
    JSON.stringify(r.hash) +
    '}'
  );
}

function checkpointLine(type: 'checkpoint' | 'final', c: CheckpointRow): string {
  return JSON.stringify({ type, seq: c.seq, hash: c.hash, ts: c.ts, key_id: c.key_id, signature: c.signature });
}

interface Sink {
  write(chunk: string): Promise<void>;
  end(ok: boolean): Promise<void>;
}

async function fileSink(path: string): Promise<Sink> {
  const fh = await open(path, 'w', 0o600);
  return {
    async write(chunk) {
      await fh.write(chunk);
    },
    async end(ok) {
      try {
        if (ok) await fh.sync();
      } finally {
        await fh.close();
      }
    },
  };
}

function streamSink(out: NodeJS.WritableStream): Sink {
  return {
    async write(chunk) {
      if (!out.write(chunk)) await once(out, 'drain');
    },
    async end() {},
  };
}
