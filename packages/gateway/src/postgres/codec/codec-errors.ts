import { WardError } from '@ward/protocol';

/** Malformed bytes from the peer. SQLSTATE 08P01 (protocol_violation) comes from the kind. */
export const ERR_PG_PROTOCOL = 'ERR_PG_PROTOCOL';
/** A length prefix above the configured cap. SQLSTATE 54000 (program_limit_exceeded). */
export const ERR_PG_MESSAGE_TOO_LARGE = 'ERR_PG_MESSAGE_TOO_LARGE';
/** A startup packet asking for a protocol other than 3.x. SQLSTATE 0A000, as Postgres answers. */
export const ERR_PG_UNSUPPORTED_PROTOCOL = 'ERR_PG_UNSUPPORTED_PROTOCOL';
/** A value the serializers cannot put on the wire (NUL inside a C string, out-of-range integer). */
export const ERR_PG_ENCODE = 'ERR_PG_ENCODE';

export function protocolError(message: string): WardError {
  return new WardError(ERR_PG_PROTOCOL, 'invalid_argument', message);
}

export function tooLargeError(what: string, length: number, limit: number): WardError {
  return new WardError(
    ERR_PG_MESSAGE_TOO_LARGE,
    'resource_exhausted',
    `${what} of ${length} bytes exceeds the limit of ${limit} bytes`,
    { sqlState: '54000' },
  );
}

export function unsupportedProtocolError(major: number, minor: number): WardError {
  return new WardError(
    ERR_PG_UNSUPPORTED_PROTOCOL,
    'invalid_argument',
    `unsupported frontend protocol ${major}.${minor}: server supports 3.0`,
    { sqlState: '0A000' },
  );
}

export function encodeError(message: string): WardError {
  return new WardError(ERR_PG_ENCODE, 'invalid_argument', message);
}
