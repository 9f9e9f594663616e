export { connectBackend, DEFAULT_CONNECT_TIMEOUT_MS } from './backend-connect.js';
export { DEFAULT_MAX_SCRAM_ITERATIONS, type PostgresBackend } from './postgres-backend.js';
export { cancelQuery, MAX_STARTUP_MESSAGE_BYTES, servePostgresSession } from './postgres-session.js';
export type { BackendKey } from './startup-codec.js';
