export { createSshKeyRepository, type SshKey, type SshKeyRepository } from '../store/ssh-keys.js';
export { AsciicastWriter, DEFAULT_MAX_RECORDING_BYTES, parseAsciicast } from './asciicast.js';
export { isAllowedEnv } from './env-allow.js';
export { type HostKey, loadOrCreateHostKey } from './host-key.js';
export { decodeTerminalModes, encodeTerminalModes } from './pty-modes.js';
export { type PublicKeyInfo, parsePublicKeyLine, sshFingerprint } from './public-key.js';
export { type SftpEvent, SftpScanner } from './sftp-scanner.js';
export type { SshContext } from './ssh-context.js';
export { createSshApi, type SshApiContext } from './ssh-keys-api.js';
export {
  acceptSshStream,
  type SshListener,
  type SshPreauthenticated,
  sshHostKey,
  startSshListener,
} from './ssh-listener.js';
export {
  DEFAULT_SSH_POLICY,
  type SshPolicy,
  type SshPolicyDecision,
  type SshPolicySubject,
  type SshRequest,
} from './ssh-policy.js';
export { type SshConnectionInfo, SshSession } from './ssh-session.js';
export { connectTarget, parseSshUsername, type SshTarget } from './username.js';
