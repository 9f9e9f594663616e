import { WardError } from '@ward/protocol';

/** The value a caller writes in place of a secret. The guard accepts it under any key. */
export const AUDIT_REDACTED = '[redacted]';

// Normalised key (lower case, letters and digits only) ending with one of these names a secret:
// password, db_password, token, access_token, secret, client_secret, authorization,
// proxy-authorization, api_key, x-api-key, apiKey.
// Tested on the raw key, case-insensitively, with separators allowed inside "api key".
const SECRET_KEY = /(?:password|passwd|token|secret|authorization|api[^a-z0-9]?key)$/i;
// A JWS/JWE compact serialisation starts with a base64url JSON header: `eyJ` is `{"`.
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/;
const BEARER = /\bbearer\s+[A-Za-z0-9._~+/-]{8,}/i;
// Regular expressions over huge strings cost more than they catch: recorded bodies go to blobs.
const MAX_SCANNED_STRING = 16 * 1024;

/**
 * Refuses data that looks like it carries a credential: a value under a key that names one
 * (unless it is null, a boolean or `AUDIT_REDACTED`), or a string holding a JWT or a
 * `Bearer …` header value. Cheap by design: key names, plus two regular expressions on
 * strings under 16 KiB; the JSON path is only built when something is found. The caller
 * redacts; the audit log never stores a secret.
 *
 * @throws WardError ERR_AUDIT_SECRET (invalid_argument), naming the JSON path only.
 */
export function assertNoSecrets(data: unknown, root = 'data'): void {
  const found = find(data);
  if (found) throw secret(root + found.path.reverse().join(''), found.what);
}

interface Found {
  path: string[];
  what: string;
}

function find(data: unknown): Found | undefined {
  if (typeof data === 'string') {
    if (data.length < MAX_SCANNED_STRING && (JWT_SHAPE.test(data) || BEARER.test(data))) {
      return { path: [], what: 'holds a bearer token or JWT' };
    }
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const found = find(data[i]);
      if (found) {
        found.path.push(`[${i}]`);
        return found;
      }
    }
    return undefined;
  }
  for (const key in data) {
    if (!Object.hasOwn(data, key)) continue;
    const value = (data as Record<string, unknown>)[key];
    let found: Found | undefined;
    if (SECRET_KEY.test(key) && !isRedacted(value)) found = { path: [], what: 'is named like a secret' };
    else found = find(value);
    if (found) {
      found.path.push(`.${key}`);
      return found;
    }
  }
  return undefined;
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
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
