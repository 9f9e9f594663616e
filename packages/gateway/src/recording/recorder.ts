import type { WardError } from '@ward/protocol';
import type { Identity } from '../identity/index.js';
import type { StagedBlob } from '../store/blobs.js';

export type Protocol = 'postgres' | 'ssh' | 'http';

export interface SessionInfo {
  id: string;
  connection: string;
  protocol: Protocol;
  identity: Identity;
  /** Client address as `ip:port`. */
  source: string;
}

export interface RecordFields {
  identity?: Identity | undefined;
  source?: string | undefined;
  connection?: string | undefined;
  /** The rule that decided, e.g. `auth.token`, `grant:ops-admins`, `guardrail:drop-table`. */
  rule?: string | undefined;
  decision?: 'allow' | 'deny' | 'mask' | 'hold' | undefined;
  data?: Record<string, unknown>;
  /**
   * Blobs the record names (from `stageBlob`): written in the record's own audit transaction,
   * so the record and the bytes it names commit together or not at all.
   */
  blobs?: readonly StagedBlob[] | undefined;
}

export interface SessionOutcome {
  status: 'ok' | 'error' | 'cut';
  error?: WardError | undefined;
  summary?: Record<string, unknown>;
}

/**
 * What every protocol session records through. Each call resolves once the record is durable
 * (invariant 3: nothing runs unrecorded); when the store cannot write, `healthy` turns false
 * and the gateway refuses new work.
 */
export interface Recorder {
  readonly healthy: boolean;
  sessionStarted(session: SessionInfo): Promise<void>;
  record(sessionId: string | undefined, kind: string, fields: RecordFields): Promise<void>;
  sessionEnded(sessionId: string, outcome: SessionOutcome): Promise<void>;
  /**
   * Checks and hashes a body or transcript (its SHA-256, hex, is what the audit record names)
   * without writing it: pass it in the `blobs` of the record that names it, which stores it.
   * Throws ERR_STORE_BLOB_TOO_LARGE, or ERR_AUDIT_UNAVAILABLE (and the like) when the store
   * cannot write. Holds the caller's bytes until that record commits; they must not change.
   */
  stageBlob(bytes: Uint8Array): StagedBlob;
}
