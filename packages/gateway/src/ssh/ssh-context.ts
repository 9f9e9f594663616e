import type { Logger } from 'pino';
import type { Authorizer } from '../access/index.js';
import type { Identity } from '../identity/index.js';
import type { Recorder } from '../recording/index.js';
import type { SessionRegistry } from '../sessions/index.js';
import type { SshKeyRepository } from '../store/ssh-keys.js';
import type { ConnectionKind, TunnelServer } from '../tunnel/index.js';
import type { SshPolicy } from './ssh-policy.js';

/** What the SSH listener needs from the gateway (built once in gateway.ts, like PostgresContext). */
export interface SshContext {
  tunnel: TunnelServer;
  recorder: Recorder;
  sessions: SessionRegistry;
  /** Public keys registered with `ward keys add`. */
  keys: Pick<SshKeyRepository, 'findByFingerprint' | 'touch'>;
  /** Verifies a ward token (the SSH password). */
  authenticate(token: string): Promise<Identity>;
  connectionType(name: string): ConnectionKind | undefined;
  /**
   * Who may open which connection. At login the identity needs some grant on the connection
   * (else a disconnect with the reason); each channel then needs `connect` (shell) or `exec`
   * (a command, scp, sftp).
   */
  access: Authorizer;
  /** Holds `ssh-host-key` (created on first start). */
  dataDir: string;
  policy?: SshPolicy;
  /** Cap of one asciicast recording (default 63 MiB, under the store's blob limit). */
  maxRecordingBytes?: number;
  /** Failed authentication attempts before the connection is cut (default 6, as sshd's MaxAuthTries). */
  maxAuthTries?: number;
  /** Time a client has to authenticate (default 60 s, as sshd's LoginGraceTime). */
  loginGraceMs?: number;
  logger: Logger;
}
