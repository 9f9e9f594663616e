import { createHash } from 'node:crypto';
import { WardError } from '@ward/protocol';
import ssh2 from 'ssh2';

const { utils } = ssh2;

/** Key types accepted for `ward keys add` (what ssh2 can verify; DSA is long deprecated). */
const ALGORITHMS = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
]);

/** Longest public key line accepted (an RSA 16384-bit key is about 2.8 KB). */
const MAX_LINE = 8 * 1024;

export interface PublicKeyInfo {
  algorithm: string;
  /** The SSH wire blob of the key. */
  blob: Buffer;
  /** `<algorithm> <base64 blob>` */
  publicKey: string;
  comment: string;
  fingerprint: string;
}

/** OpenSSH's fingerprint of a key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses one OpenSSH public key line (`ssh-ed25519 AAAA… comment`, as in `id_ed25519.pub` or
 * authorized_keys without options). Refuses private keys, certificates, options and unknown
 * types, so only a plain public key is ever stored.
 *
 * @throws WardError ERR_SSH_KEY_INVALID (invalid_argument)
 */
export function parsePublicKeyLine(text: string): PublicKeyInfo {
  const line = text.trim();
  const invalid = (why: string) =>
    new WardError('ERR_SSH_KEY_INVALID', 'invalid_argument', `not a usable SSH public key: ${why}`);
  if (line.length === 0) throw invalid('empty');
  if (line.length > MAX_LINE) throw invalid(`longer than ${MAX_LINE} bytes`);
  if (line.includes('PRIVATE KEY')) throw invalid('this is a private key; send the .pub file');
  if (/[\r\n]/.test(line)) throw invalid('one key per line, one line');
  const [algorithm = '', b64 = '', ...rest] = line.split(/\s+/);
  if (!ALGORITHMS.has(algorithm))
    throw invalid(`type "${algorithm.slice(0, 40)}" is not one of ${[...ALGORITHMS].join(', ')}`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw invalid('the key data is not base64');
  const parsed = utils.parseKey(`${algorithm} ${b64}`);
  if (parsed instanceof Error || Array.isArray(parsed)) throw invalid('ssh2 cannot parse it');
  if (parsed.isPrivateKey()) throw invalid('this is a private key; send the .pub file');
  const blob = parsed.getPublicSSH();
  if (!blob.equals(Buffer.from(b64, 'base64'))) throw invalid('the key data does not round-trip');
  return {
    algorithm,
    blob,
    publicKey: `${algorithm} ${blob.toString('base64')}`,
    comment: rest.join(' ').slice(0, 200),
    fingerprint: sshFingerprint(blob),
  };
}
