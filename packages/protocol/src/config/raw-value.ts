import type { HostPort } from './host-port.js';

// Cross-field checks run even when other fields failed to parse (so every problem shows at
// once): they read the raw values defensively with these.

export function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function isHostPort(v: unknown): v is HostPort {
  return (
    v !== null &&
    typeof v === 'object' &&
    typeof (v as HostPort).host === 'string' &&
    typeof (v as HostPort).port === 'number'
  );
}
