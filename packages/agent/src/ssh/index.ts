export {
  checkKnownHosts,
  fingerprintMatches,
  type KnownHostsEntry,
  type KnownHostsVerdict,
  parseKnownHosts,
  sha256Fingerprint,
} from './host-key.js';
export {
  DEFAULT_SSH_CONNECT_TIMEOUT_MS,
  DEFAULT_SSH_KEEPALIVE_INTERVAL_MS,
  type SshBackend,
} from './ssh-backend.js';
export { MAX_SSH_ENV_REQUESTS, serveSshSession } from './ssh-session.js';
