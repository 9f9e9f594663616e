import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';

/** A public key registered with `ward keys add`, and the identity it logs in as. */
export interface SshKey {
  /** OpenSSH form, `SHA256:` + unpadded base64 of the SHA-256 of the key blob. */
  fingerprint: string;
  /** Audit label of the owner, e.g. `user:alice`. */
  identity: string;
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … */
  algorithm: string;
  /** `<algorithm> <base64 blob>`, without the comment. */
  publicKey: string;
  comment: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** The owner as they were when the key was added: a key logs in with these roles and groups. */
export interface SshKeyOwner {
  subject: string;
  kind: 'user' | 'service';
  roles: string[];
  groups: string[];
  issuer: string;
}

export interface SshKeyRecord extends SshKey {
  owner: SshKeyOwner;
}

export interface NewSshKey {
  fingerprint: string;
  algorithm: string;
  publicKey: string;
  comment: string;
  owner: SshKeyOwner;
}

export interface SshKeyRepository {
  /** Registers a key; a fingerprint belongs to one identity only (ERR_SSH_KEY_EXISTS). */
  add(key: NewSshKey): SshKey;
  /** Keys of one identity label (`user:alice`), oldest first. */
  list(identity: string): SshKey[];
  /** Removes one of the identity's keys; false when it has no such key. */
  remove(identity: string, fingerprint: string): boolean;
  findByFingerprint(fingerprint: string): SshKeyRecord | undefined;
  /** Notes a successful login with the key. */
  touch(fingerprint: string): void;
}

interface Row {
  fingerprint: string;
  identity: string;
  subject: string;
  kind: string;
  roles: string;
  groups: string;
  issuer: string;
  algorithm: string;
  public_key: string;
  comment: string;
  created_at: string;
  last_used_at: string | null;
}

/** Keys an identity may hold; more is a mistake or an attack on the store. */
export const MAX_SSH_KEYS_PER_IDENTITY = 100;

const COLUMNS =
  'fingerprint, identity, subject, kind, roles, groups, issuer, algorithm, public_key, comment, created_at, last_used_at';

function toKey(row: Row): SshKey {
  return {
    fingerprint: row.fingerprint,
    identity: row.identity,
    algorithm: row.algorithm,
    publicKey: row.public_key,
    comment: row.comment,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

function strings(json: string): string[] {
  const v = JSON.parse(json) as unknown;
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * The `ssh_keys` table (migration 2). Synchronous like every better-sqlite3 call: each method
 * is one statement or one transaction.
 *
 * @example
 * const keys = createSshKeyRepository(db);
 * keys.add({ fingerprint, algorithm: 'ssh-ed25519', publicKey, comment: 'laptop', owner });
 * keys.findByFingerprint(fingerprint)?.owner.subject; // 'alice'
 */
export function createSshKeyRepository(db: Database.Database): SshKeyRepository {
  const insert = db.prepare(
    `INSERT INTO ssh_keys (${COLUMNS}) VALUES (@fingerprint, @identity, @subject, @kind, @roles, @groups, @issuer, @algorithm, @public_key, @comment, @created_at, NULL)`,
  );
  const byFingerprint = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM ssh_keys WHERE fingerprint = ?`);
  const byIdentity = db.prepare<[string], Row>(
    `SELECT ${COLUMNS} FROM ssh_keys WHERE identity = ? ORDER BY created_at, fingerprint`,
  );
  const countFor = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM ssh_keys WHERE identity = ?');
  const del = db.prepare('DELETE FROM ssh_keys WHERE identity = ? AND fingerprint = ?');
  const used = db.prepare('UPDATE ssh_keys SET last_used_at = ? WHERE fingerprint = ?');

  const add = db.transaction((key: NewSshKey): SshKey => {
    const identity = `${key.owner.kind}:${key.owner.subject}`;
    const existing = byFingerprint.get(key.fingerprint);
    if (existing) {
      throw new WardError(
        'ERR_SSH_KEY_EXISTS',
        'invalid_argument',
        existing.identity === identity
          ? `key ${key.fingerprint} is already registered to you`
          : `key ${key.fingerprint} is already registered to another identity; generate a new key`,
      );
    }
    if ((countFor.get(identity)?.n ?? 0) >= MAX_SSH_KEYS_PER_IDENTITY) {
      throw new WardError(
        'ERR_SSH_KEY_LIMIT',
        'resource_exhausted',
        `an identity holds at most ${MAX_SSH_KEYS_PER_IDENTITY} SSH keys; remove unused ones with \`ward keys remove\``,
      );
    }
    const row: Row = {
      fingerprint: key.fingerprint,
      identity,
      subject: key.owner.subject,
      kind: key.owner.kind,
      roles: JSON.stringify(key.owner.roles),
      groups: JSON.stringify(key.owner.groups),
      issuer: key.owner.issuer,
      algorithm: key.algorithm,
      public_key: key.publicKey,
      comment: key.comment,
      created_at: new Date().toISOString(),
      last_used_at: null,
    };
    insert.run(row);
    return toKey(row);
  });

  return {
    add: (key) => add.immediate(key),
    list: (identity) => byIdentity.all(identity).map(toKey),
    remove: (identity, fingerprint) => del.run(identity, fingerprint).changes > 0,
    findByFingerprint(fingerprint) {
      const row = byFingerprint.get(fingerprint);
      if (!row) return undefined;
      return {
        ...toKey(row),
        owner: {
          subject: row.subject,
          kind: row.kind === 'service' ? 'service' : 'user',
          roles: strings(row.roles),
          groups: strings(row.groups),
          issuer: row.issuer,
        },
      };
    },
    touch(fingerprint) {
      used.run(new Date().toISOString(), fingerprint);
    },
  };
}
