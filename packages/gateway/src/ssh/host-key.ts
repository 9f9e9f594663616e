import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { WardError } from '@ward/protocol';
import ssh2 from 'ssh2';

const { utils } = ssh2;

import { sshFingerprint } from './public-key.js';

export interface HostKey {
  /** OpenSSH private key text, for ssh2's `hostKeys`. */
  privateKey: string;
  /** `ssh-ed25519 AAAA…`, the line a known_hosts entry needs after the host name. */
  publicKey: string;
  /** `SHA256:…`, what `ssh` shows on first connect and `ward gateway` prints. */
  fingerprint: string;
}

/**
 * Loads the gateway's SSH host key, creating an Ed25519 key (mode 0600, never overwritten) on
 * first start. The same key on every start is what lets clients pin the gateway in known_hosts.
 *
 * @throws WardError ERR_SSH_HOST_KEY_INSECURE when group or others can read the file,
 *   ERR_SSH_HOST_KEY_INVALID when it is not a private key ssh2 can use.
 */
export function loadOrCreateHostKey(path: string): HostKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'ward gateway' });
    try {
      writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process created it first: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw new WardError(
      'ERR_SSH_HOST_KEY_INSECURE',
      'permission_denied',
      `${path} is readable by others: chmod 600 it`,
    );
  }
  const text = readFileSync(path, 'utf8');
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    throw new WardError(
      'ERR_SSH_HOST_KEY_INVALID',
      'internal',
      `${path} is not an unencrypted OpenSSH private key; restore it or delete it to generate a new one (clients will see a new host key)`,
    );
  }
  const blob = key.getPublicSSH();
  return { privateKey: text, publicKey: `${key.type} ${blob.toString('base64')}`, fingerprint: sshFingerprint(blob) };
}
