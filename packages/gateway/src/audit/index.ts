export {
  AuditLog,
  type AuditLogOptions,
  type AuditStats,
  type Durability,
  type UnhealthyListener,
} from './audit-log.js';
export { canonicalJson, GENESIS_HASH } from './canonical.js';
export { type AuditSource, EXPORT_FORMAT, EXPORT_VERSION, type ExportResult, exportAuditLog } from './export.js';
export { AUDIT_REDACTED, assertNoSecrets } from './secret-guard.js';
export { loadOrCreateSigningKey, type SigningKey } from './signing-key.js';
export type {
  AuditCheckpoint,
  AuditInput,
  AuditRecord,
  JsonObject,
  JsonValue,
  ListRecordsQuery,
  VerifyFailure,
  VerifyFailureCode,
  VerifyResult,
} from './types.js';
export { type VerifyOptions, verifyAuditExport, verifyStore } from './verify.js';
