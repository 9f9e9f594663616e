import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ApiTarget, apiJson } from '../api-client.js';
import { configDir } from '../credentials.js';

/** The gateway's SSH host key as `GET /api/v1/ssh/host-key` gives it. */
export interface GatewayHostKey {
  /** `ssh-ed25519 AAAA…` */
  publicKey: string;
  /** `SHA256:…` */
  fingerprint: string;
}

export interface PinnedHostKey extends GatewayHostKey {
  /** The known_hosts file ward keeps (`<config dir>/known_hosts`). */
  file: string;
  /** The name the key is filed under; OpenSSH looks it up with `-o HostKeyAlias=<alias>`. */
  alias: string;
  /** True when the file held a different key for this gateway (the gateway's key changed). */
  replaced: boolean;
}

/** `ward-gateway-<host>-<port>`: one alias per gateway, whatever local port a tunnel uses. */
export function hostKeyAlias(gateway: string): string {
  const url = new URL(gateway);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `ward-gateway-${url.hostname.replace(/^\[|\]$/g, '').replace(/[^A-Za-z0-9.-]/g, '-')}-${port}`;
}

export function fetchHostKey(target: ApiTarget): Promise<GatewayHostKey> {
  return apiJson<GatewayHostKey>(target, '/api/v1/ssh/host-key');
}

/**
 * Files the gateway's host key, fetched over the authenticated API, in ward's own known_hosts
 * under an alias, so OpenSSH checks it strictly (`-o UserKnownHostsFile=… -o HostKeyAlias=…`)
 * without trusting whatever answers on the first connect. The user's ~/.ssh is not touched.
 */
export function pinHostKey(target: ApiTarget, key: GatewayHostKey): PinnedHostKey {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'known_hosts');
  const alias = hostKeyAlias(target.gateway);
  const lines = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
    : [];
  const mine = `${alias} ${key.publicKey}`;
  const others = lines.filter((l) => l.split(' ')[0] !== alias);
  const previous = lines.filter((l) => l.split(' ')[0] === alias);
  const replaced = previous.length > 0 && !previous.includes(mine);
  if (previous.length !== 1 || replaced) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${[...others, mine].join('\n')}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
  return { ...key, file, alias, replaced };
}

/** The `-o` options that make OpenSSH check the gateway's key from ward's known_hosts. */
export function hostKeyOptions(pinned: Pick<PinnedHostKey, 'file' | 'alias'>): string[] {
  return ['-o', `UserKnownHostsFile=${pinned.file}`, '-o', `HostKeyAlias=${pinned.alias}`];
}
