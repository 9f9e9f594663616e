import type { WardError } from '@ward/protocol';
import type { Identity } from '../identity/index.js';

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
  /** Keeps a body or transcript; returns its SHA-256 (hex) for the audit record. */
  putBlob(bytes: Uint8Array): string;
}
