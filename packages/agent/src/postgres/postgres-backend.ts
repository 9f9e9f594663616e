/** A Postgres connection as the agent knows it: where it is and the credentials it logs in with. */
export interface PostgresBackend {
  /** Connection name, used in messages. */
  name: string;
  host: string;
  port: number;
  /** Used when the client did not name a database. */
  database: string;
  user: string;
  /** Already resolved by the caller. Never logged, never in an error message. */
  password?: string;
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: Buffer };
  /** A server asking for more SCRAM iterations is refused before any key derivation (default 100000). */
  maxScramIterations: number;
  /** Covers TCP connect, TLS and authentication, up to ReadyForQuery. Default 10000. */
  connectTimeoutMs?: number;
}

export const DEFAULT_MAX_SCRAM_ITERATIONS = 100_000;
