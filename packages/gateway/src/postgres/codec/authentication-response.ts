import { BufferReader } from './buffer-reader.js';
import { protocolError } from './codec-errors.js';
import type { AuthenticationResponse } from './frontend-messages.js';

/** The body of a PasswordMessage: the password as a C string (ward: the user's token). */
export function decodePasswordMessage(msg: AuthenticationResponse): string {
  const r = new BufferReader(msg.body, 0, msg.body.byteLength, 'PasswordMessage');
  const password = r.cstring();
  r.done();
  return password;
}

export interface SASLInitialResponse {
  readonly mechanism: string;
  /** The mechanism's initial response; null when the client sent none (length -1). */
  readonly data: Buffer | null;
}

/** The body of a SASLInitialResponse: mechanism name, then Int32 length and data. */
export function decodeSASLInitialResponse(msg: AuthenticationResponse): SASLInitialResponse {
  const r = new BufferReader(msg.body, 0, msg.body.byteLength, 'SASLInitialResponse');
  const mechanism = r.cstring();
  if (mechanism === '') throw protocolError('SASLInitialResponse: empty mechanism name');
  const data = r.nullableBytes();
  r.done();
  return { mechanism, data };
}

/** The body of a SASLResponse is the mechanism's data, as is. */
export function decodeSASLResponse(msg: AuthenticationResponse): Buffer {
  return msg.body;
}
