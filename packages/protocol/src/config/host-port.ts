import { BlockList, isIP } from 'node:net';
import { WardError } from '../errors.js';

/** A listen or dial address. `host` never has IPv6 brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
const ADDRESS_FIX = 'Fix: write host:port, e.g. 127.0.0.1:7401, 0.0.0.0:7401 (all interfaces) or [::1]:7401 (IPv6)';

/**
 * Splits `host:port` (IPv6 as `[addr]:port`). Port 0 is accepted: a listener on port 0 gets
 * an ephemeral port, which tests rely on.
 *
 * @example
 * parseHostPort('127.0.0.1:7401'); // { host: '127.0.0.1', port: 7401 }
 * parseHostPort('[::1]:7401'); // { host: '::1', port: 7401 }
 * @throws WardError ERR_CONFIG_BAD_ADDRESS
 */
export function parseHostPort(input: string): HostPort {
  const text = typeof input === 'string' ? input.trim() : '';
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = bracketed ? null : /^([^:[\]]*):(\d{1,5})$/.exec(text);
  const host = bracketed?.[1] ?? plain?.[1] ?? '';
  const port = Number(bracketed?.[2] ?? plain?.[2] ?? Number.NaN);
  let problem: string | undefined;
  if (!bracketed && !plain) {
    if (isIP(text) === 6) problem = 'is an IPv6 address without a port (put the address in brackets: [addr]:port)';
    else if (/^[^:]+$/.test(text)) problem = 'has no port';
    else if (text.split(':').length > 2 && !text.startsWith('[')) problem = 'looks like IPv6 without brackets';
    else problem = 'is not host:port';
  } else if (host === '') {
    problem = 'has no host (write 127.0.0.1 for loopback only, 0.0.0.0 for all interfaces)';
  } else if (bracketed && isIP(host) !== 6) {
    problem = 'has brackets around something that is not an IPv6 address';
  } else if (!bracketed && isIP(host) === 0 && !HOSTNAME.test(host)) {
    problem = `has an invalid host name "${host}"`;
  } else if (!(port >= 0 && port <= 65535)) {
    problem = `has port ${port}, outside 0-65535`;
  }
  if (problem) {
    const shown = typeof input === 'string' ? JSON.stringify(input) : String(input);
    throw new WardError('ERR_CONFIG_BAD_ADDRESS', 'invalid_argument', `${shown} ${problem}. ${ADDRESS_FIX}.`);
  }
  return { host, port };
}

/** Formats a HostPort back to `host:port`, bracketing IPv6 (what net/gRPC targets expect). */
export function formatHostPort(address: HostPort): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * True only for addresses that cannot leave the machine: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x) and `localhost`. 0.0.0.0 and :: are NOT loopback: they listen everywhere.
 *
 * @example
 * isLoopback(parseHostPort('127.0.0.1:7401')); // true
 * isLoopback(parseHostPort('0.0.0.0:7401')); // false
 */
export function isLoopback(address: HostPort): boolean {
  return isLoopbackHost(address.host);
}

// BlockList parses every spelling of an address (`0:0:0:0:0:0:0:1`, `::ffff:7f00:1`) and
// matches IPv4-mapped IPv6 against the IPv4 subnet, which prefix tests on the text miss.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The same test on a bare host name or address (brackets allowed), in any IPv6 spelling. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  const family = isIP(h);
  if (family === 4) return LOOPBACK.check(h, 'ipv4');
  if (family === 6) return LOOPBACK.check(h, 'ipv6');
  return false;
}
