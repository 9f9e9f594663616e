import { AUDIT_REDACTED } from '../store/index.js';

// The audit log refuses JWTs and bearer values (secret-guard.ts); a command line that carries
// one (`curl -H "Authorization: Bearer …"`) is recorded with that part redacted instead.
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}/gi;

/** Longest command line recorded in full; the rest is cut with a note. */
export const MAX_RECORDED_COMMAND = 8 * 1024;

export function redactCommand(command: string): string {
  const cut =
    command.length > MAX_RECORDED_COMMAND
      ? `${command.slice(0, MAX_RECORDED_COMMAND)}… [${command.length - MAX_RECORDED_COMMAND} more characters]`
      : command;
  return cut.replace(JWT_SHAPE, AUDIT_REDACTED).replace(BEARER, `$1${AUDIT_REDACTED}`);
}
