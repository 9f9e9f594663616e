import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WardError } from '@ward/protocol';
import type Database from 'better-sqlite3';

/** A non-human identity (an AI agent, a job) that gets short-lived tokens from its secret. */
export interface ServiceAccount {
  name: string;
  description: string;
  roles: string[];
  groups: string[];
  /** A token from this issuer and subject may be exchanged for this account's token. */
  federated: { issuer: string; subject: string } | null;
  disabled: boolean;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

export interface NewServiceAccount {
  name: string;
  description: string;
  roles: string[];
  groups: string[];
  federated?: { issuer: string; subject: string } | undefined;
  createdBy: string;
}

export interface ServiceAccountRepository {
  /** Creates the account and returns its secret, which is shown once and never stored. ERR_SERVICE_ACCOUNT_EXISTS. */
  create(account: NewServiceAccount): { account: ServiceAccount; secret: string };
  get(name: string): ServiceAccount | undefined;
  list(): ServiceAccount[];
  /** ERR_SERVICE_ACCOUNT_NOT_FOUND. */
  setDisabled(name: string, disabled: boolean): ServiceAccount;
  /** A new secret; the old one stops working at once. ERR_SERVICE_ACCOUNT_NOT_FOUND. */
  rotateSecret(name: string): { account: ServiceAccount; secret: string };
  /** The account whose secret this is, enabled or not; undefined for an unknown name or a wrong secret. */
  checkSecret(name: string, secret: string): ServiceAccount | undefined;
  findByFederated(issuer: string, subject: string): ServiceAccount | undefined;
}

interface Row {
  name: string;
  description: string;
  roles: string;
  groups: string;
  secret_hash: string;
  federated_issuer: string | null;
  federated_subject: string | null;
  disabled: number;
  created_at: string;
  created_by: string;
  updated_at: string;
}

const SECRET_PREFIX = 'wsa_';

/**
 * A new secret: 256 random bits. Kept as a plain SHA-256, not scrypt: a slow hash only helps
 * against guessing low-entropy passwords, and nobody guesses 256 random bits; scrypt would cost
 * tens of milliseconds of CPU per token request (an easy denial of service on the event loop)
 * for no gain. Agent keys are kept the same way.
 */
export function newServiceAccountSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function hashServiceAccountSecret(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex')}`;
}

/** A hash compared against when the account does not exist, so both cases cost the same. */
const DUMMY_HASH = hashServiceAccountSecret(newServiceAccountSecret());

function strings(json: string): string[] {
  const v = JSON.parse(json) as unknown;
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function toAccount(r: Row): ServiceAccount {
  return {
    name: r.name,
    description: r.description,
    roles: strings(r.roles),
    groups: strings(r.groups),
    federated:
      r.federated_issuer !== null && r.federated_subject !== null
        ? { issuer: r.federated_issuer, subject: r.federated_subject }
        : null,
    disabled: r.disabled === 1,
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
  };
}

/**
 * The `service_accounts` table (migration 4).
 *
 * @example
 * const accounts = createServiceAccountRepository(db);
 * const { secret } = accounts.create({ name: 'support-bot', description: '', roles: ['user'], groups: [], createdBy: 'user:alice' });
 * accounts.checkSecret('support-bot', secret)?.name; // 'support-bot'
 */
export function createServiceAccountRepository(db: Database.Database): ServiceAccountRepository {
  const select = db.prepare<[string], Row>('SELECT * FROM service_accounts WHERE name = ?');
  const all = db.prepare<[], Row>('SELECT * FROM service_accounts ORDER BY name');
  const insert = db.prepare(
    `INSERT INTO service_accounts (name, description, roles, groups, secret_hash, federated_issuer, federated_subject,
       disabled, created_at, created_by, updated_at)
     VALUES (@name, @description, @roles, @groups, @secret_hash, @federated_issuer, @federated_subject, 0,
       @created_at, @created_by, @created_at)`,
  );
  const setDisabled = db.prepare('UPDATE service_accounts SET disabled = ?, updated_at = ? WHERE name = ?');
  const setSecret = db.prepare('UPDATE service_accounts SET secret_hash = ?, updated_at = ? WHERE name = ?');
  const byFederated = db.prepare<[string, string], Row>(
    'SELECT * FROM service_accounts WHERE federated_issuer = ? AND federated_subject = ?',
  );

  const mustGet = (name: string): Row => {
    const row = select.get(name);
    if (!row) throw new WardError('ERR_SERVICE_ACCOUNT_NOT_FOUND', 'not_found', `no service account "${name}"`);
    return row;
  };

  const create = db.transaction((a: NewServiceAccount) => {
    if (select.get(a.name)) {
      throw new WardError('ERR_SERVICE_ACCOUNT_EXISTS', 'invalid_argument', `service account "${a.name}" exists`);
    }
    if (a.federated && byFederated.get(a.federated.issuer, a.federated.subject)) {
      throw new WardError(
        'ERR_SERVICE_ACCOUNT_EXISTS',
        'invalid_argument',
        'another service account already has this federated identity',
      );
    }
    const secret = newServiceAccountSecret();
    insert.run({
      name: a.name,
      description: a.description,
      roles: JSON.stringify(a.roles),
      groups: JSON.stringify(a.groups),
      secret_hash: hashServiceAccountSecret(secret),
      federated_issuer: a.federated?.issuer ?? null,
      federated_subject: a.federated?.subject ?? null,
      created_at: new Date().toISOString(),
      created_by: a.createdBy,
    });
    return { account: toAccount(mustGet(a.name)), secret };
  });

  return {
    create: (a) => create.immediate(a),
    get(name) {
      const row = select.get(name);
      return row ? toAccount(row) : undefined;
    },
    list: () => all.all().map(toAccount),
    setDisabled(name, disabled) {
      mustGet(name);
      setDisabled.run(disabled ? 1 : 0, new Date().toISOString(), name);
      return toAccount(mustGet(name));
    },
    rotateSecret(name) {
      mustGet(name);
      const secret = newServiceAccountSecret();
      setSecret.run(hashServiceAccountSecret(secret), new Date().toISOString(), name);
      return { account: toAccount(mustGet(name)), secret };
    },
    checkSecret(name, secret) {
      const row = typeof name === 'string' && name.length <= 200 ? select.get(name) : undefined;
      const expected = Buffer.from(row?.secret_hash ?? DUMMY_HASH, 'utf8');
      const actual = Buffer.from(hashServiceAccountSecret(String(secret)), 'utf8');
      const same = expected.length === actual.length && timingSafeEqual(expected, actual);
      return row && same ? toAccount(row) : undefined;
    },
    findByFederated(issuer, subject) {
      const row = byFederated.get(issuer, subject);
      return row ? toAccount(row) : undefined;
    },
  };
}
