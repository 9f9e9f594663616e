/** An SSH host as the agent knows it: where it is, how the agent logs in, and how it knows the host. */
export interface SshBackend {
  /** Connection name, used in messages. */
  name: string;
  host: string;
  port: number;
  /** Default login when the session's `SshStart.user` is empty. */
  user: string;
  /** PEM or OpenSSH private key text, already resolved by the caller. Never logged, never in a message. */
  privateKey?: string;
  /** Already resolved by the caller. Never logged, never in a message. */
  password?: string;
  /**
   * How the host is recognised, before authentication: a pinned `SHA256:…` fingerprint
   * (`ssh-keygen -l -E sha256 -f key.pub`), or an OpenSSH known_hosts file read at each
   * connection (plain, `[host]:port` and hashed `|1|…` entries, `@revoked` honoured).
   */
  hostKey: { fingerprint: string } | { knownHosts: string };
  /** Covers TCP connect, key exchange and authentication. Default 10000. */
  connectTimeoutMs?: number;
  /** SSH-level keepalive to the host; three unanswered ones end the session. Default 15000. */
  keepaliveIntervalMs?: number;
}

export const DEFAULT_SSH_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_SSH_KEEPALIVE_INTERVAL_MS = 15_000;
