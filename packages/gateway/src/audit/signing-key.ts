import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { WardError } from '@ward/protocol';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SPKI PEM of the public key: what an auditor needs to verify an export offline. */
  publicKeyPem: string;
  keyId: string;
}

/** Hex SHA-256 of the key's SPKI DER encoding. */
export function publicKeyId(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/**
 * Loads the gateway's Ed25519 audit signing key from a PKCS#8 PEM file, creating it (mode
 * 0600, exclusive create so two processes never both write one) when it does not exist.
 * A key file that group or others may read is refused, as OpenSSH refuses one.
 * With `create` false a missing file is an error (read-only opens).
 */
export function loadOrCreateSigningKey(path: string, create = true): SigningKey {
  let pem: string;
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) {
      throw new WardError(
        'ERR_AUDIT_KEY_INSECURE',
        'permission_denied',
        `audit signing key ${path} has mode ${(mode & 0o777).toString(8)}; run chmod 600 on it`,
      );
    }
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof WardError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw keyError(path, 'cannot be read', err);
    pem = createKeyFile(path);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw keyError(path, 'is not a PEM private key', err);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw keyError(path, `holds a ${privateKey.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
  }
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: publicKeyId(publicKey),
  };
}

function createKeyFile(path: string): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    // Another process created it between our stat and open: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(path, 'utf8');
    throw keyError(path, 'cannot be created', err);
  }
  try {
    writeSync(fd, pem);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return pem;
}

function keyError(path: string, what: string, cause?: unknown): WardError {
  return new WardError(
    'ERR_AUDIT_KEY_INVALID',
    'internal',
    `audit signing key ${path} ${what}`,
    cause === undefined ? {} : { cause },
  );
}
