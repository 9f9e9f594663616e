import { WardError } from '@ward/protocol';

/** The value a caller writes in place of a secret. The guard accepts it under any key. */
export const AUDIT_REDACTED = '[redacted]';

// Normalised key (lower case, letters and digits only) ending with one of these names a secret:
// password, db_password, token, access_token, secret, client_secret, authorization,
// proxy-authorization, api_key, x-api-key, apiKey.
const SECRET_KEY = /(?:password|passwd|token|secret|authorization|apikey)$/;
// A JWS/JWE compact serialisation starts with a base64url JSON header: `eyJ` is `{"`.
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/;
const BEARER = /\bbearer\s+[A-Za-z0-9._~+/-]{8,}/i;
// Regular expressions over huge strings cost more than they catch: recorded bodies go to blobs.
const MAX_SCANNED_STRING = 16 * 1024;

/**
 * Refuses data that looks like it carries a credential: a value under a key that names one
 * (unless it is null, a boolean or `AUDIT_REDACTED`), or a string holding a JWT or a
 * `Bearer …` header value. Cheap by design: key names, plus two regular expressions on
 * strings under 16 KiB. The caller redacts; the audit log never stores a secret.
 *
 * @throws WardError ERR_AUDIT_SECRET (invalid_argument), naming the JSON path only.
 */
export function assertNoSecrets(data: unknown, path = 'data'): void {
  if (typeof data === 'string') {
    if (data.length < MAX_SCANNED_STRING && (JWT_SHAPE.test(data) || BEARER.test(data))) {
      throw secret(path, 'holds a bearer token or JWT');
    }
    return;
  }
  if (typeof data !== 'object' || data === null) return;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) assertNoSecrets(data[i], `${path}[${i}]`);
    return;
  }
  for (const [key, value] of Object.entries(data)) {
    const childPath = `${path}.${key}`;
    if (isSecretKey(key) && !isRedacted(value)) throw secret(childPath, 'is named like a secret');
    assertNoSecrets(value, childPath);
  }
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[^a-z0-9]/g, ''));
}

function isRedacted(value: unknown): boolean {
  return value === null || value === undefined || typeof value === 'boolean' || value === AUDIT_REDACTED;
}

function secret(path: string, what: string): WardError {
  // The message names the path, never the value: it may end up in a log.
  return new WardError(
    'ERR_AUDIT_SECRET',
    'invalid_argument',
    `audit record refused: ${path} ${what}; redact it (use AUDIT_REDACTED) before appending`,
  );
}
