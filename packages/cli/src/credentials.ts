import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { WardError } from '@ward/protocol';

/** What `ward login` (or `ward demo`) leaves for later commands. */
export interface SavedCredentials {
  gateway: string;
  /** The access token sent to the gateway (the IdP's after `ward login`, a gateway token after `ward demo`). */
  token: string;
  subject: string;
  /** When `token` expires (ISO 8601). */
  expiresAt: string;
  /** Set by `ward login`: the IdP that issued `token` and can refresh it. */
  issuer?: string;
  /** The public client `ward login` used at the IdP (needed to refresh and revoke). */
  clientId?: string;
  /** The resource indicator the token was requested for (the gateway's audience). */
  resource?: string;
  refreshToken?: string;
}

/** Refresh this long before expiry, so a token never expires between the check and its use. */
export const REFRESH_MARGIN_MS = 60_000;

/** `$WARD_CONFIG_DIR`, else `$XDG_CONFIG_HOME/ward`, else `~/.config/ward`. */
export function configDir(): string {
  const explicit = process.env['WARD_CONFIG_DIR'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CONFIG_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.config'), 'ward');
}

export function credentialsPath(): string {
  return join(configDir(), 'credentials.json');
}

/**
 * Writes the token cache readable by its owner only (0600 file in a 0700 directory). The
 * file is written under a unique temporary name and renamed over the old one, so a reader in
 * another process (or a second `ward` refreshing at the same moment) sees either the old or
 * the new cache, never a torn one; no lock is needed.
 */
export function saveCredentials(creds: SavedCredentials): string {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return path;
}

export function loadCredentials(): SavedCredentials | undefined {
  const path = credentialsPath();
  if (!existsSync(path)) return undefined;
  let parsed: Partial<SavedCredentials>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<SavedCredentials>;
  } catch {
    return undefined;
  }
  if (typeof parsed.gateway !== 'string' || typeof parsed.token !== 'string') return undefined;
  return parsed as SavedCredentials;
}

/** Deletes the token cache; true when there was one. */
export function deleteCredentials(): boolean {
  const path = credentialsPath();
  if (!existsSync(path)) return false;
  rmSync(path, { force: true });
  return true;
}

/** True when `creds.token` expires within `REFRESH_MARGIN_MS` of `now` (or has no readable expiry). */
export function needsRefresh(creds: SavedCredentials, now = Date.now()): boolean {
  const exp = Date.parse(creds.expiresAt);
  return !Number.isFinite(exp) || exp - now < REFRESH_MARGIN_MS;
}

/** The same sign-in (gateway, issuer, subject), so one process may adopt another's refresh. */
function sameLogin(a: SavedCredentials, b: SavedCredentials): boolean {
  return a.gateway === b.gateway && a.issuer === b.issuer && a.subject === b.subject;
}

/** What a refresh at the IdP returns. */
export interface RefreshedTokens {
  token: string;
  expiresAt: string;
  /** A rotated refresh token; absent when the IdP keeps the old one. */
  refreshToken?: string;
}

export type Refresher = (creds: SavedCredentials) => Promise<RefreshedTokens>;

function refreshFailed(creds: SavedCredentials, reason: string, cause?: unknown): WardError {
  return new WardError(
    'ERR_CLI_LOGIN_REFRESH_FAILED',
    'unauthenticated',
    `your sign-in${creds.issuer ? ` at ${creds.issuer}` : ''} has expired and could not be refreshed (${reason}): run \`ward login\``,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Returns credentials whose token is good for at least another minute, refreshing them at the
 * IdP (and saving the result) when they are closer to expiry. Lock-free across processes:
 * before refreshing it re-reads the cache (another `ward` may just have refreshed), and when
 * the refresh is refused it re-reads once more, because an IdP that rotates refresh tokens
 * refuses the old one to whoever comes second.
 */
export async function ensureFresh(
  creds: SavedCredentials,
  refresh: Refresher,
  now: () => number = Date.now,
): Promise<SavedCredentials> {
  if (!needsRefresh(creds, now())) return creds;
  if (!creds.refreshToken || !creds.issuer || !creds.clientId) {
    // A token nobody can refresh: use it while it lasts. Past its expiry, an IdP sign-in
    // without a refresh token needs `ward login`; any other token (ward demo's) goes to the
    // gateway, which says what is wrong with it.
    if (!creds.issuer || Date.parse(creds.expiresAt) > now()) return creds;
    throw refreshFailed(creds, 'no refresh token');
  }
  const current = loadCredentials();
  const base = current && sameLogin(current, creds) && current.refreshToken ? current : creds;
  if (base !== creds && !needsRefresh(base, now())) return base;
  let next: RefreshedTokens;
  try {
    next = await refresh(base);
  } catch (err) {
    const after = loadCredentials();
    if (after && sameLogin(after, base) && after.refreshToken !== base.refreshToken && !needsRefresh(after, now()))
      return after;
    const code = (err as { error?: unknown; code?: unknown }).error ?? (err as { code?: unknown }).code;
    throw refreshFailed(base, typeof code === 'string' ? code : 'the IdP refused', err);
  }
  const updated: SavedCredentials = {
    ...base,
    token: next.token,
    expiresAt: next.expiresAt,
    ...(next.refreshToken ? { refreshToken: next.refreshToken } : {}),
  };
  saveCredentials(updated);
  return updated;
}
