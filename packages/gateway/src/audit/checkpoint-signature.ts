import { type KeyObject, verify } from 'node:crypto';
import { checkpointPayload } from './jcs.js';

/** The fields of a checkpoint line or row that its signature covers. */
export interface CheckpointInput {
  seq: number;
  hash: string;
  ts: string;
  keyId: string;
  signature: string;
}

/** Whether `c.signature` is the key's Ed25519 signature over the checkpoint payload. */
export function verifyCheckpointSignature(
  key: KeyObject,
  gatewayId: string,
  c: CheckpointInput,
  prevSeq: number,
  final: boolean,
): boolean {
  const payload = checkpointPayload({ seq: c.seq, hash: c.hash, ts: c.ts, gatewayId, prevSeq, final });
  try {
    return verify(null, payload, key, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}
