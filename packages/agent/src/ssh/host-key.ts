/**
 * Host key checks, I/O-free: the OpenSSH `SHA256:` fingerprint of a key blob, a constant-time
 * comparison with a pinned one, and a known_hosts parser/matcher (sshd(8) "SSH_KNOWN_HOSTS
 * FILE FORMAT": plain and `[host]:port` patterns, `*`/`?` wildcards, `!` negation, hashed
 * `|1|salt|hash` names, `@revoked` lines; `@cert-authority` lines are skipped because ssh2
 * does not verify host certificates).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const FINGERPRINT_PREFIX = 'SHA256:';

/** `SHA256:<base64 without padding>`, as `ssh-keygen -l -E sha256` prints it. */
export function sha256Fingerprint(keyBlob: Uint8Array): string {
  return FINGERPRINT_PREFIX + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The 32 digest bytes of a `SHA256:…` fingerprint, or undefined if it is not one. */
export function parseFingerprint(fingerprint: string): Buffer | undefined {
  const trimmed = fingerprint.trim();
  if (!trimmed.startsWith(FINGERPRINT_PREFIX)) return undefined;
  const body = trimmed.slice(FINGERPRINT_PREFIX.length).replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(body)) return undefined;
  const digest = Buffer.from(body, 'base64');
  return digest.byteLength === 32 ? digest : undefined;
}

/** True when the key's SHA-256 equals the pinned fingerprint; compared in constant time. */
export function fingerprintMatches(pinned: string, keyBlob: Uint8Array): boolean {
  const expected = parseFingerprint(pinned);
  if (!expected) return false;
  return timingSafeEqual(expected, createHash('sha256').update(keyBlob).digest());
}

/** The key type named inside an SSH public key blob (RFC 4253 §6.6), e.g. `ssh-ed25519`. */
export function keyTypeOf(keyBlob: Uint8Array): string | undefined {
  if (keyBlob.byteLength < 4) return undefined;
  const view = Buffer.from(keyBlob.buffer, keyBlob.byteOffset, keyBlob.byteLength);
  const length = view.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > view.byteLength) return undefined;
  return view.toString('latin1', 4, 4 + length);
}

export type KnownHostsMarker = 'revoked' | 'cert-authority';

export type HostMatcher = { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownHostsEntry {
  /** 1-based line number in the file, for messages. */
  line: number;
  marker?: KnownHostsMarker;
  hosts: HostMatcher;
  keyType: string;
  key: Buffer;
}

/** Parses known_hosts text; lines it cannot read are skipped, as ssh(1) does. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostsMarker | undefined;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    const [hostField, keyType, keyBase64] = fields;
    if (!hostField || !keyType || !keyBase64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(keyBase64)) continue;
    const hosts = parseHostField(hostField);
    if (!hosts) continue;
    const key = Buffer.from(keyBase64, 'base64');
    // A blob that names another type than its line is corrupt; ssh(1) skips it too.
    if (keyTypeOf(key) !== keyType) continue;
    entries.push({ line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return entries;
}

function parseHostField(field: string): HostMatcher | undefined {
  if (field.startsWith('|1|')) {
    const [salt, hash] = field.slice(3).split('|');
    if (!salt || !hash) return undefined;
    const saltBytes = Buffer.from(salt, 'base64');
    const hashBytes = Buffer.from(hash, 'base64');
    // HMAC-SHA1: a 20-byte salt (the key) and a 20-byte digest.
    if (saltBytes.byteLength !== 20 || hashBytes.byteLength !== 20) return undefined;
    return { kind: 'hashed', salt: saltBytes, hash: hashBytes };
  }
  const patterns = field.split(',').filter((p) => p !== '');
  return patterns.length > 0 ? { kind: 'patterns', patterns } : undefined;
}

/** The name ssh(1) looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/** `*` and `?` wildcards, case-insensitive (OpenSSH match_pattern on a lower-cased name). */
function wildcardMatch(name: string, pattern: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${source}$`).test(name);
}

function hostMatches(hosts: HostMatcher, name: string): boolean {
  if (hosts.kind === 'hashed') {
    const digest = createHmac('sha1', hosts.salt).update(name).digest();
    return timingSafeEqual(digest, hosts.hash);
  }
  let matched = false;
  for (const pattern of hosts.patterns) {
    const negated = pattern.startsWith('!');
    if (wildcardMatch(name, negated ? pattern.slice(1) : pattern)) {
      // A matching negation vetoes the whole line (OpenSSH match_hostname returns -1).
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export type KnownHostsVerdict =
  | { result: 'match'; line: number }
  | { result: 'revoked'; line: number }
  /** The host is listed, with other keys only. */
  | { result: 'mismatch'; knownTypes: string[] }
  | { result: 'unknown' };

/** The key types listed for a host, in file order (to prefer them in key exchange, as ssh(1) does). */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  const types: string[] = [];
  for (const entry of entries) {
    if (entry.marker) continue;
    if (hostMatches(entry.hosts, name) && !types.includes(entry.keyType)) types.push(entry.keyType);
  }
  return types;
}

/** Decides whether `keyBlob` is a known key of `host:port`. A revoked key loses whatever else matches. */
export function checkKnownHosts(
  entries: readonly KnownHostsEntry[],
  host: string,
  port: number,
  keyBlob: Uint8Array,
): KnownHostsVerdict {
  const name = knownHostsName(host, port);
  const blob = Buffer.from(keyBlob.buffer, keyBlob.byteOffset, keyBlob.byteLength);
  for (const entry of entries) {
    // @revoked applies to the key wherever it appears, whatever the host field says.
    if (entry.marker === 'revoked' && entry.key.equals(blob)) return { result: 'revoked', line: entry.line };
  }
  const knownTypes: string[] = [];
  for (const entry of entries) {
    if (entry.marker || !hostMatches(entry.hosts, name)) continue;
    if (entry.key.equals(blob)) return { result: 'match', line: entry.line };
    if (!knownTypes.includes(entry.keyType)) knownTypes.push(entry.keyType);
  }
  return knownTypes.length > 0 ? { result: 'mismatch', knownTypes } : { result: 'unknown' };
}

/** Host key algorithms for key exchange that can yield a key of the given types. */
export function hostKeyAlgorithmsFor(keyTypes: readonly string[]): string[] {
  const algorithms: string[] = [];
  for (const type of keyTypes) {
    // An RSA key signs with SHA-2 (RFC 8332) or, for old servers, SHA-1.
    const names = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
    for (const n of names) if (!algorithms.includes(n)) algorithms.push(n);
  }
  return algorithms;
}
