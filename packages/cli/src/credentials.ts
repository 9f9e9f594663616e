import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What `ward login` (or `ward demo`) leaves for later commands. */
export interface SavedCredentials {
  gateway: string;
  token: string;
  subject: string;
  expiresAt: string;
}

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

/** Writes the token cache readable by its owner only (0600 file in a 0700 directory). */
export function saveCredentials(creds: SavedCredentials): string {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath();
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return path;
}

export function loadCredentials(): SavedCredentials | undefined {
  const path = credentialsPath();
  if (!existsSync(path)) return undefined;
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<SavedCredentials>;
  if (typeof parsed.gateway !== 'string' || typeof parsed.token !== 'string') return undefined;
  return parsed as SavedCredentials;
}
