import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

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

// BlockList parses every spelling of an address (`0:0:0:0:0:0:0:1`, `::ffff:7f00:1`) and
// matches IPv4-mapped IPv6 against the IPv4 subnet, which prefix tests on the text miss.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 (any spelling, IPv4-mapped included) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  const family = isIP(h);
  if (family === 4) return LOOPBACK.check(h, 'ipv4');
  if (family === 6) return LOOPBACK.check(h, 'ipv6');
  return false;
}

/** Splits `host:port` / `[v6]:port`. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`"${address}" is not host:port`);
  return { host: m[1] ?? '', port: Number(m[2]) };
}
