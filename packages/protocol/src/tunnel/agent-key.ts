import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** A new agent key: `wak_` + 32 random bytes. Shown once; the gateway keeps only its hash. */
export function generateAgentKey(): string {
  return `wak_${randomBytes(32).toString('base64url')}`;
}

/** The form the gateway's config stores: `sha256:<hex>` of the UTF-8 key. */
export function hashAgentKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

/** Compares two key hashes in constant time. */
export function agentKeyHashEquals(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** True for 127.0.0.0/8, ::1 and localhost: the only places plaintext tunnels may use. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return h.slice(7).startsWith('127.');
  return false;
}

/** Splits `host:port` / `[v6]:port`. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`"${address}" is not host:port`);
  return { host: m[1] ?? '', port: Number(m[2]) };
}
