/** A JSON value as stored in an audit record's `data`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * What a caller hands to `AuditLog.append`. `kind` names the event (`session.start`,
 * `auth.denied`, `pg.query`, `http.exchange`, `agent.refused`, …); the optional fields tie it to
 * who, where and which rule. `data` must already be redacted: see `AUDIT_REDACTED`.
 */
export interface AuditInput {
  kind: string;
  sessionId?: string | undefined;
  identity?: string | undefined;
  source?: string | undefined;
  connection?: string | undefined;
  rule?: string | undefined;
  /** `allow`, `deny`, `mask`, `approve`, `pending`, … */
  decision?: string | undefined;
  data?: Readonly<Record<string, unknown>> | undefined;
}

/** One committed, hash-chained record. Absent optional fields are `null`. */
export interface AuditRecord {
  seq: number;
  /** ISO-8601 UTC with milliseconds, taken when `append` was called. */
  ts: string;
  kind: string;
  sessionId: string | null;
  identity: string | null;
  source: string | null;
  connection: string | null;
  rule: string | null;
  decision: string | null;
  data: JsonObject;
  /** Hex SHA-256 of the previous record (64 zeros for seq 1). */
  prevHash: string;
  /** Hex SHA-256 of this record's canonical encoding (docs/audit-log.md). */
  hash: string;
}

/** A signed statement "the log had `seq` records and the last one hashed to `hash`". */
export interface AuditCheckpoint {
  seq: number;
  hash: string;
  ts: string;
  /** Hex SHA-256 of the signing public key's SPKI DER encoding. */
  keyId: string;
  /** Base64 Ed25519 signature over the checkpoint payload (docs/audit-log.md). */
  signature: string;
}

export interface ListRecordsQuery {
  afterSeq?: number | undefined;
  /** Default 100, at most 10,000. */
  limit?: number | undefined;
  sessionId?: string | undefined;
  kind?: string | undefined;
}

/** Stable codes for what a verification found wrong (assert on these, not on `reason`). */
export type VerifyFailureCode =
  | 'malformed'
  | 'seq_mismatch'
  | 'prev_hash_mismatch'
  | 'hash_mismatch'
  | 'checkpoint_mismatch'
  | 'checkpoint_misplaced'
  | 'bad_signature'
  | 'unknown_key'
  | 'truncated'
  | 'after_final'
  | 'unsigned_tail';

export interface VerifyFailure {
  /**
   * The first record whose integrity cannot be established. For a broken chain this is the
   * record itself; for a bad checkpoint (signature, key, hash) it is the first record after
   * the last checkpoint that did verify, since anything from there on may have been rewritten.
   */
  seq: number;
  /** 1-based line in the export (0 when verifying the live store). */
  line: number;
  code: VerifyFailureCode;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Records whose chain link verified before the first failure (all of them when ok). */
  records: number;
  /** Checkpoints whose signature verified. */
  checkpoints: number;
  /** Key the signatures were checked against. */
  keyId: string | null;
  firstBad?: VerifyFailure;
}
