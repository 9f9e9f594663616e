import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

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

// Address helpers live with the config loader (one parser, one loopback test); the tunnel
// keeps its historical names for them.
export { isLoopbackHost, parseHostPort as splitHostPort } from '../config/host-port.js';
