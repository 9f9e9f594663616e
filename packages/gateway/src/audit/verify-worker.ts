// Worker thread of verifyAuditExport: parses a chunk of export lines, recomputes each record's
// hash and checks the checkpoint signatures it can (see verify.ts), and sends back a compact
// result: typed arrays plus one string, since structured-cloning an array of small strings
// costs about 0.5 us per string, as much as the rest of the main thread's work per record.
import { createPublicKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { verifyCheckpointSignature } from './checkpoint-signature.js';
import {
  type ChunkRequest,
  type ChunkResult,
  chunkLines,
  LineKind,
  parseExportLine,
  SignatureCheck,
  type WorkerInit,
} from './export-line.js';

const init = workerData as WorkerInit;
const key = createPublicKey({ key: Buffer.from(init.keyDer), format: 'der', type: 'spki' });

parentPort?.on('message', (req: ChunkRequest) => {
  const result = parseChunk(req);
  const { kinds, seqs, flags, prevSeqs, ends } = result;
  const buffers = [kinds.buffer, seqs.buffer, flags.buffer, prevSeqs.buffer, ends.buffer] as ArrayBuffer[];
  parentPort?.postMessage(result, buffers);
});

function parseChunk(req: ChunkRequest): ChunkResult {
  const lines = chunkLines(req.bytes);
  const n = lines.length;
  const kinds = new Uint8Array(n);
  const seqs = new Float64Array(n);
  const flags = new Uint8Array(n);
  const prevSeqs = new Float64Array(n);
  const ends = new Uint32Array(n * 4);
  const parts: string[] = [];
  let length = 0;
  let e = 0;
  const push = (s: string) => {
    parts.push(s);
    length += s.length;
    ends[e++] = length;
  };
  // The previous checkpoint line in this chunk: in a well-formed export, the prev_seq the
  // next signature covers. The main thread uses the check only if its state agrees.
  let prevCheckpoint: number | undefined;
  for (let i = 0; i < n; i++) {
    const p = parseExportLine(lines[i]!);
    switch (p.t) {
      case 'malformed':
        kinds[i] = LineKind.Malformed;
        push(p.reason);
        break;
      case 'header':
        kinds[i] = LineKind.Header;
        push(p.gatewayId);
        push(p.publicKeyPem);
        break;
      case 'record':
        kinds[i] = LineKind.Record;
        seqs[i] = p.seq;
        flags[i] = p.hashOk ? 1 : 0;
        push(p.prevHash);
        push(p.hash);
        break;
      case 'checkpoint':
        kinds[i] = p.final ? LineKind.Final : LineKind.Checkpoint;
        seqs[i] = p.c.seq;
        if (prevCheckpoint !== undefined) {
          prevSeqs[i] = prevCheckpoint;
          flags[i] = verifyCheckpointSignature(key, init.gatewayId, p.c, prevCheckpoint, p.final)
            ? SignatureCheck.Good
            : SignatureCheck.Bad;
        }
        prevCheckpoint = p.c.seq;
        push(p.c.hash);
        push(p.c.ts);
        push(p.c.keyId);
        push(p.c.signature);
        break;
    }
  }
  return { id: req.id, lines: n, kinds, seqs, flags, prevSeqs, text: parts.join(''), ends: ends.slice(0, e) };
}
