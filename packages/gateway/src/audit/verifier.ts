import { createPublicKey, type KeyObject } from 'node:crypto';
import { type CheckpointInput, verifyCheckpointSignature } from './checkpoint-signature.js';
import { type ChainFields, GENESIS_HASH, recordHash } from './jcs.js';
import { publicKeyId } from './signing-key.js';
import type { VerifyFailure, VerifyFailureCode, VerifyResult } from './types.js';

export type { CheckpointInput };

/** A checkpoint signature checked ahead of the state machine, assuming `prevSeq`. */
export interface PresignedCheck {
  prevSeq: number;
  ok: boolean;
}

/**
 * The one verification state machine, fed in order by the export verifier (lines of a file)
 * and by the live-store verifier (rows). It holds O(1) state, so a log of any length verifies
 * in one pass: records must come in seq order, and each checkpoint right after the record it
 * vouches for (the order `exportAuditLog` writes). It stops at the first failure.
 */
export class ChainVerifier {
  private readonly trustedKey: KeyObject | undefined;
  private key: KeyObject | undefined;
  private keyId: string | null = null;
  private gatewayId = '';
  private headerSeen = false;
  private headerLine = 0;
  private headerKeyId: string | null = null;
  private lastSeq = 0;
  private lastHash = GENESIS_HASH;
  private lastCheckpointSeq = -1;
  private lastGoodCheckpoint = 0;
  private records = 0;
  private checkpoints = 0;
  private finalSeen = false;
  private ahead: { line: number; seq: number } | undefined;
  private failure: VerifyFailure | undefined;

  constructor(trustedPublicKey?: KeyObject | string) {
    if (trustedPublicKey !== undefined) {
      this.trustedKey = typeof trustedPublicKey === 'string' ? createPublicKey(trustedPublicKey) : trustedPublicKey;
      this.key = this.trustedKey;
      this.keyId = publicKeyId(this.trustedKey);
    }
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  get lastRecord(): { seq: number; hash: string } {
    return { seq: this.lastSeq, hash: this.lastHash };
  }

  get lastCheckpoint(): number {
    return this.lastGoodCheckpoint;
  }

  /** Export header: which gateway and (unless the caller supplied a trusted one) which key. */
  header(gatewayId: string, publicKeyPem: string, line: number): boolean {
    if (this.failure) return false;
    if (this.headerSeen) return this.fail('malformed', 0, line, 'a second header line');
    this.headerSeen = true;
    this.headerLine = line;
    this.gatewayId = gatewayId;
    let headerKey: KeyObject;
    try {
      headerKey = createPublicKey(publicKeyPem);
    } catch {
      return this.fail('unknown_key', 0, line, 'the header public key is not a PEM public key');
    }
    if (headerKey.asymmetricKeyType !== 'ed25519') {
      return this.fail('unknown_key', 0, line, 'the header public key is not Ed25519');
    }
    this.headerKeyId = publicKeyId(headerKey);
    if (!this.trustedKey) {
      this.key = headerKey;
      this.keyId = this.headerKeyId;
    }
    return true;
  }

  /** The key and gateway id checkpoint signatures are checked against (set by the header). */
  get signatureContext(): { key: KeyObject; gatewayId: string } | undefined {
    return this.key && this.headerSeen ? { key: this.key, gatewayId: this.gatewayId } : undefined;
  }

  record(f: ChainFields, dataJson: string, hash: string, line: number): boolean {
    if (this.failure) return false;
    return this.recordHashed(f.seq, f.prev_hash, hash, recordHash(f, dataJson) === hash, line);
  }

  /**
   * `record`, with the hash already recomputed (`hashOk`: the record's fields hash to `hash`),
   * e.g. by a worker thread. The checks and their order are the same.
   */
  recordHashed(seq: number, prevHash: string, hash: string, hashOk: boolean, line: number): boolean {
    if (this.failure) return false;
    const expected = this.lastSeq + 1;
    if (!this.headerSeen) return this.fail('malformed', expected, line, 'record before the header');
    if (this.finalSeen) return this.fail('after_final', expected, line, 'a record after the final checkpoint');
    if (seq !== expected) return this.fail('seq_mismatch', expected, line, `expected seq ${expected}, found ${seq}`);
    if (this.ahead) {
      return this.fail(
        'checkpoint_misplaced',
        expected,
        this.ahead.line,
        `checkpoint for seq ${this.ahead.seq} comes before record ${expected}`,
      );
    }
    if (prevHash !== this.lastHash) {
      return this.fail('prev_hash_mismatch', expected, line, `prev_hash does not match the hash of record ${seq - 1}`);
    }
    if (!hashOk) return this.fail('hash_mismatch', expected, line, 'the record does not hash to its hash field');
    this.lastSeq = expected;
    this.lastHash = hash;
    this.records++;
    return true;
  }

  /**
   * @param presigned a signature check already made elsewhere (a worker thread), valid only
   *   for the previous-checkpoint seq it assumed; with another one it is checked here again.
   */
  checkpoint(c: CheckpointInput, final: boolean, line: number, presigned?: PresignedCheck): boolean {
    if (this.failure) return false;
    const suspect = this.lastGoodCheckpoint + 1;
    if (!this.headerSeen) return this.fail('malformed', suspect, line, 'checkpoint before the header');
    if (this.finalSeen) return this.fail('after_final', this.lastSeq + 1, line, 'a checkpoint after the final one');
    const repeats = c.seq <= this.lastCheckpointSeq && !(final && c.seq === this.lastCheckpointSeq);
    if (repeats || (c.seq === 0 && !final)) {
      return this.fail('checkpoint_misplaced', suspect, line, `checkpoint for seq ${c.seq} repeats or goes back`);
    }
    this.lastCheckpointSeq = c.seq;
    if (c.seq > this.lastSeq) {
      // Vouches for records not seen yet: a truncated tail if nothing follows, else misplaced.
      this.ahead ??= { line, seq: c.seq };
      return true;
    }
    if (c.seq < this.lastSeq) {
      return this.fail(
        'checkpoint_misplaced',
        suspect,
        line,
        `checkpoint for seq ${c.seq} after record ${this.lastSeq}`,
      );
    }
    if (c.keyId !== this.keyId || !this.key) {
      return this.fail('unknown_key', suspect, line, `checkpoint ${c.seq} is signed by key ${c.keyId.slice(0, 16)}…`);
    }
    if (c.hash !== this.lastHash) {
      return this.fail('checkpoint_mismatch', suspect, line, `checkpoint ${c.seq} vouches for another hash`);
    }
    const good =
      presigned !== undefined && presigned.prevSeq === this.lastGoodCheckpoint
        ? presigned.ok
        : verifyCheckpointSignature(this.key, this.gatewayId, c, this.lastGoodCheckpoint, final);
    if (!good) return this.fail('bad_signature', suspect, line, `checkpoint ${c.seq} signature does not verify`);
    this.lastGoodCheckpoint = c.seq;
    this.checkpoints++;
    if (final) this.finalSeen = true;
    return true;
  }

  /**
   * @param requireFinal an export must end with a final checkpoint over its last record
   *   (that is what makes a truncated tail detectable); the live store has none.
   * @param endLine the line after the last one, for "the export ends here" failures.
   */
  finish(requireFinal: boolean, endLine: number): VerifyResult {
    if (!this.failure) {
      if (!this.headerSeen) this.fail('malformed', 0, endLine, 'no header line');
      else if (this.ahead) {
        this.fail(
          'truncated',
          this.lastSeq + 1,
          this.ahead.line,
          `a checkpoint vouches for seq ${this.ahead.seq} but the log ends at ${this.lastSeq}`,
        );
      } else if (requireFinal && !this.finalSeen) {
        this.fail('truncated', this.lastSeq + 1, endLine, 'the export ends without its final signed checkpoint');
      } else if (this.trustedKey && this.headerKeyId !== this.keyId) {
        this.fail('unknown_key', 0, this.headerLine, 'the header names a key other than the trusted one');
      }
    }
    return this.result();
  }

  /** Fails from outside the machine (a malformed line, a live-store check). */
  fail(code: VerifyFailureCode, seq: number, line: number, reason: string): false {
    this.failure ??= { seq, line, code, reason };
    return false;
  }

  result(): VerifyResult {
    const base = {
      ok: this.failure === undefined,
      records: this.records,
      checkpoints: this.checkpoints,
      keyId: this.keyId,
    };
    return this.failure ? { ...base, firstBad: this.failure } : base;
  }
}
