// The audit API is part of the store's surface (one import for the gateway and the CLI).
export {
  AUDIT_REDACTED,
  type AuditInput,
  type AuditLog,
  type AuditRecord,
  exportAuditLog,
  type VerifyResult,
  verifyAuditExport,
  verifyStore,
} from '../audit/index.js';
export type { BlobStore, StagedBlob } from './blobs.js';
export { MIGRATIONS, type Migration, SCHEMA_VERSION } from './migrations.js';
export { openStore, type Store, type StoreOptions } from './open-store.js';
export type {
  Session,
  SessionEnd,
  SessionQuery,
  SessionRepository,
  SessionStart,
  SessionStatus,
} from './sessions.js';
