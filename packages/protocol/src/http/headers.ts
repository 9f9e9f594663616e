import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific fields: never forwarded by a proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/**
 * Credentials a client may send that must never reach an upstream: the ward token arrives in
 * one of these, and a client-supplied upstream key is dropped so the agent's own key is the
 * only one the upstream sees.
 */
export const CLIENT_CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'x-api-key',
  'api-key',
  'cookie',
  'openai-organization',
  'openai-project',
]);

export interface HeaderPair {
  name: string;
  value: string;
}

/** Flattens node headers to pairs, dropping hop-by-hop fields and any named in `drop`. */
export function forwardableHeaders(headers: IncomingHttpHeaders, drop: ReadonlySet<string> = new Set()): HeaderPair[] {
  const connectionTokens = new Set(
    String(headers['connection'] ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: HeaderPair[] = [];
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(name) || connectionTokens.has(name) || drop.has(name)) continue;
    if (Array.isArray(value)) for (const v of value) out.push({ name, value: v });
    else out.push({ name, value: String(value) });
  }
  return out;
}

/** Pairs back to a node header object (repeated names become arrays). */
export function headersFromPairs(
  pairs: readonly HeaderPair[],
  drop: ReadonlySet<string> = new Set(),
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const { name, value } of pairs) {
    const key = name.toLowerCase();
    if (HOP_BY_HOP.has(key) || drop.has(key)) continue;
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[key] = [existing, value];
  }
  return out;
}
