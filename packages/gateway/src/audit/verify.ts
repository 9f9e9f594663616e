import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { AuditSource } from './export.js';
import {
  type ChunkResult,
  chunkLines,
  LineKind,
  type ParsedLine,
  parseExportLine,
  SignatureCheck,
  type WorkerInit,
} from './export-line.js';
import type { VerifyResult } from './types.js';
import { ChainVerifier } from './verifier.js';

export interface VerifyOptions {
  /**
   * The gateway's public key, obtained out of band (SPKI PEM). Without it the key in the
   * export's header is used, which proves the log is internally consistent but not who wrote
   * it: someone who rewrites the whole log and signs it with their own key would pass.
   */
  publicKeyPem?: string | undefined;
  /**
   * Worker threads that parse lines, recompute record hashes and check checkpoint signatures
   * while this thread reads the file and runs the chain checks in order (same checks, same
   * result). Default: one per CPU, at most 4, for a file of 8 MiB or more; none below, where
   * starting them costs more than they save. 0 verifies on the calling thread. Only a path
   * input uses workers.
   */
  workers?: number | undefined;
}

// Bytes read per chunk (about 2,000 records): large enough that the per-chunk costs (a
// message each way, one signature checked on this thread) vanish, small enough to keep a few
// in flight per worker within a few MiB.
const CHUNK = 1 << 20;
const WORKERS_FROM_BYTES = 8 << 20;
const MAX_DEFAULT_WORKERS = 4;

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
  if (typeof input === 'string') return verifyFile(v, input, opts.workers);
  let n = 0;
  for await (const text of input) {
    n++;
    if (!applyLine(v, parseExportLine(text), n)) break;
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

function applyLine(v: ChainVerifier, p: ParsedLine, line: number): boolean {
  switch (p.t) {
    case 'malformed':
      return v.fail('malformed', v.lastRecord.seq + 1, line, p.reason);
    case 'header':
      return v.header(p.gatewayId, p.publicKeyPem, line);
    case 'record':
      return v.recordHashed(p.seq, p.prevHash, p.hash, p.hashOk, line);
    case 'checkpoint':
      return v.checkpoint(p.c, p.final, line);
  }
}

async function verifyFile(v: ChainVerifier, path: string, workers: number | undefined): Promise<VerifyResult> {
  const fh = await open(path, 'r');
  try {
    const count =
      workers ??
      ((await fh.stat()).size >= WORKERS_FROM_BYTES ? Math.min(availableParallelism(), MAX_DEFAULT_WORKERS) : 0);
    const chunks = lineChunks(fh);
    let line = 0;
    if (count > 0) {
      // The header (line 1) is checked here first: it fixes the key and gateway id the workers
      // check signatures with.
      const first = await chunks.next();
      if (first.done) return v.finish(true, 1);
      const bytes = first.value;
      const nl = bytes.indexOf(0x0a);
      const head = nl === -1 ? bytes : bytes.subarray(0, nl + 1);
      for (const text of chunkLines(head)) {
        if (!applyLine(v, parseExportLine(text), ++line)) return v.finish(true, line + 1);
      }
      const context = v.signatureContext;
      if (context) {
        const rest = nl === -1 ? undefined : bytes.subarray(nl + 1);
        line = await verifyInWorkers(v, line, rest, chunks, count, {
          keyDer: context.key.export({ type: 'spki', format: 'der' }),
          gatewayId: context.gatewayId,
        });
        return v.finish(true, line + 1);
      }
      // No header key to hand out (the header was not line 1): finish on this thread.
      if (nl !== -1) {
        for (const text of chunkLines(bytes.subarray(nl + 1))) {
          if (!applyLine(v, parseExportLine(text), ++line)) return v.finish(true, line + 1);
        }
      }
    }
    for await (const bytes of chunks) {
      for (const text of chunkLines(bytes)) {
        if (!applyLine(v, parseExportLine(text), ++line)) return v.finish(true, line + 1);
      }
    }
    return v.finish(true, line + 1);
  } finally {
    await fh.close();
  }
}

/**
 * Chunks of whole lines (the last may lack its newline), each in its own ArrayBuffer so it can
 * be transferred to a worker. A line longer than a chunk grows the buffer until it fits.
 */
async function* lineChunks(fh: FileHandle): AsyncGenerator<Uint8Array> {
  let carry: Uint8Array = new Uint8Array(0);
  for (;;) {
    const buf = Buffer.allocUnsafeSlow(Math.max(CHUNK, carry.byteLength * 2));
    buf.set(carry, 0);
    let filled = carry.byteLength;
    const { bytesRead } = await fh.read(buf, filled, buf.byteLength - filled, null);
    filled += bytesRead;
    if (bytesRead === 0) {
      if (filled > 0) yield buf.subarray(0, filled);
      return;
    }
    const nl = buf.lastIndexOf(0x0a, filled - 1);
    if (nl === -1) {
      carry = buf.subarray(0, filled);
      continue;
    }
    carry = Uint8Array.prototype.slice.call(buf, nl + 1, filled);
    yield buf.subarray(0, nl + 1);
  }
}

/**
 * Hands chunks to the workers round-robin (at most two each in flight, so memory stays
 * bounded) and feeds their results to the state machine in file order. Stops reading at the
 * first failure. Returns the number of the last line fed.
 */
async function verifyInWorkers(
  v: ChainVerifier,
  line: number,
  first: Uint8Array | undefined,
  chunks: AsyncGenerator<Uint8Array>,
  count: number,
  init: WorkerInit,
): Promise<number> {
  const url = new URL('./verify-worker.js', import.meta.url);
  const pool = Array.from({ length: count }, () => new Worker(url, { workerData: init }));
  const done = new Map<number, ChunkResult>();
  let crashed: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (const w of pool) {
    w.on('message', (r: ChunkResult) => {
      done.set(r.id, r);
      notify();
    });
    w.on('error', (err) => {
      crashed ??= err;
      notify();
    });
  }
  let sent = 0;
  let applied = 0;
  let stopped = false;
  const send = (bytes: Uint8Array) => {
    pool[sent % count]!.postMessage({ id: sent, bytes }, [bytes.buffer as ArrayBuffer]);
    sent++;
  };
  // Applies every result that is next in order; waits for one when `mustWait` and none is.
  const drain = async (mustWait: boolean) => {
    for (;;) {
      if (crashed !== undefined) throw crashed;
      const r = done.get(applied);
      if (r === undefined) {
        if (!mustWait) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      done.delete(applied);
      applied++;
      line = applyChunk(v, r, line);
      if (v.failed) {
        stopped = true;
        return;
      }
      mustWait = false;
    }
  };
  try {
    if (first !== undefined && first.byteLength > 0) send(first);
    for await (const bytes of chunks) {
      send(bytes);
      await drain(sent - applied >= 2 * count);
      if (stopped) return line;
    }
    while (applied < sent && !stopped) await drain(true);
    return line;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

function applyChunk(v: ChainVerifier, r: ChunkResult, line: number): number {
  const { kinds, seqs, flags, prevSeqs, text, ends } = r;
  let e = 0;
  const next = () => text.slice(e === 0 ? 0 : ends[e - 1], ends[e++]);
  for (let i = 0; i < r.lines; i++) {
    line++;
    let ok: boolean;
    switch (kinds[i]) {
      case LineKind.Record: {
        const prevHash = next();
        ok = v.recordHashed(seqs[i]!, prevHash, next(), flags[i] === 1, line);
        break;
      }
      case LineKind.Checkpoint:
      case LineKind.Final: {
        const c = { seq: seqs[i]!, hash: next(), ts: next(), keyId: next(), signature: next() };
        const flag = flags[i];
        ok = v.checkpoint(
          c,
          kinds[i] === LineKind.Final,
          line,
          flag === SignatureCheck.NotChecked ? undefined : { prevSeq: prevSeqs[i]!, ok: flag === SignatureCheck.Good },
        );
        break;
      }
      case LineKind.Header: {
        const gatewayId = next();
        ok = v.header(gatewayId, next(), line);
        break;
      }
      default:
        ok = v.fail('malformed', v.lastRecord.seq + 1, line, next());
    }
    if (!ok) return line;
  }
  return line;
}
