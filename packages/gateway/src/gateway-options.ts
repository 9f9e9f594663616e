import type { Logger } from 'pino';
import type { AccessGrantConfig } from './config/access-config.js';
import type { OidcIssuerOptions, OidcVerifier } from './identity/index.js';
import type { AgentEntry, ConnectionKind } from './tunnel/index.js';

export interface GatewayConnection {
  name: string;
  type: ConnectionKind;
  /** The agent allowed to serve it (any authenticated agent when absent). */
  agent?: string | undefined;
  description?: string | undefined;
  /** Which LLM API an http connection speaks: ward parses, records and rate-limits those shapes. */
  llm?: 'openai' | 'anthropic' | 'none' | undefined;
  /** Rate limits per identity (token buckets) and the response body cap, for http connections. */
  limits?:
    | {
        requestsPerMinute?: number | undefined;
        tokensPerMinute?: number | undefined;
        embeddingInputsPerMinute?: number | undefined;
        /** Bytes. */
        maxResponseBody?: number | undefined;
      }
    | undefined;
}

/** Everything a running gateway needs, already validated (see config/ for the YAML form). */
export interface GatewayOptions {
  dataDir: string;
  /** `host:port` for each listener; `postgres` is optional (no direct Postgres listener without it). */
  listen: { http: string; tunnel: string; postgres?: string | undefined; ssh?: string | undefined };
  tunnel: {
    tls?: { cert: Buffer; key: Buffer } | undefined;
    insecure?: boolean | undefined;
    sessionWindowBytes?: number | undefined;
    keepaliveIntervalMs?: number | undefined;
    maxFrameBytes?: number | undefined;
  };
  /** TLS for Postgres clients that ask for it; without it SSLRequest is answered 'N'. */
  postgres?: { tls?: { cert: Buffer; key: Buffer } | undefined } | undefined;
  store: { path: string; durability: 'group' | 'strict' };
  agents: readonly AgentEntry[];
  connections: readonly GatewayConnection[];
  /** `iss` of gateway-issued tokens. */
  tokenIssuer?: string | undefined;
  /** OIDC issuers whose access tokens are accepted besides the gateway's own tokens. */
  identity?: { oidc?: readonly (OidcIssuerOptions | OidcVerifier)[] | undefined } | undefined;
  http?: { maxRequestBodyBytes?: number | undefined; recordBodyBytes?: number | undefined } | undefined;
  logger?: Logger | undefined;
  version?: string | undefined;
  /**
   * Who may open which connection (config `access:`). Without grants only admins open
   * sessions; auditors never do.
   */
  access?:
    | {
        grants?: readonly AccessGrantConfig[] | undefined;
        /** Longest just-in-time grant (default 8 h). */
        maxJitDurationMs?: number | undefined;
        /** Service-account token lifetime (default 10 min). */
        serviceTokenTtlMs?: number | undefined;
        /** Longest lifetime of a token exchanged for a person's token (default 1 h). */
        exchangeTokenTtlMs?: number | undefined;
      }
    | undefined;
}
