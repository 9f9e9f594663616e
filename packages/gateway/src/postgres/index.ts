export { type Cancellable, CancelRegistry } from './cancel-registry.js';
export * as PgCodec from './codec/index.js';
export { startPostgresListener } from './postgres-listener.js';
export { DEFAULT_POSTGRES_POLICY, type PolicyDecision, type PostgresPolicy } from './postgres-policy.js';
export { type PostgresContext, PostgresSession, type PostgresSessionOptions } from './postgres-session.js';
export { type StatementRecord, StatementTracker } from './statement-tracker.js';
