import type { WardError } from '@ward/protocol';
import type { ErrorFields, NoticeFields, TransactionStatus } from './backend-messages.js';
import { NOTICE_FIELD_CODES } from './backend-messages.js';
import { BufferWriter } from './buffer-writer.js';
import { encodeError } from './codec-errors.js';
import { AuthenticationCode, BackendCode } from './codes.js';

type Bytes = Uint8Array;

/** A RowDescription column; the table/attribute/typmod/format parts default to "none"/text. */
export interface FieldInput {
  name: string;
  dataTypeOid: number;
  dataTypeSize: number;
  tableOid?: number;
  columnAttributeNumber?: number;
  typeModifier?: number;
  format?: number;
}

export interface CopyResponseInput {
  /** 0 = text (every column format must then be 0), 1 = binary. */
  format: number;
  columnFormats: readonly number[];
}

const authentication = (code: AuthenticationCode): BufferWriter => new BufferWriter().int32(code);

function noticeBody(fields: NoticeFields): BufferWriter {
  const w = new BufferWriter();
  for (const [key, letter] of NOTICE_FIELD_CODES) {
    const value = fields[key];
    if (value !== undefined) w.int8(letter.charCodeAt(0)).cstring(value);
  }
  return w.int8(0);
}

function copyResponse(input: CopyResponseInput, tag: BackendCode): Buffer {
  return new BufferWriter().int8(input.format).int16Array(input.columnFormats, 'column formats').finish(tag);
}

/**
 * Builds what a Postgres server sends; ward plays the server towards psql. Each function
 * returns one whole message (tag, length, body) ready to write.
 *
 * @example
 * socket.write(Buffer.concat([
 *   BackendSerializer.authenticationOk(),
 *   BackendSerializer.parameterStatus('server_version', '15.20'),
 *   BackendSerializer.backendKeyData(wardPid, wardSecret),
 *   BackendSerializer.readyForQuery('I'),
 * ]));
 */
export const BackendSerializer = Object.freeze({
  /** The single-byte answer to SSLRequest: 'S' to go on with TLS, 'N' to refuse. */
  sslResponse: (accept: boolean): Buffer => Buffer.from(accept ? 'S' : 'N', 'latin1'),
  /** The single-byte answer to GSSENCRequest: 'G' to go on with GSSAPI encryption, 'N' to refuse. */
  gssEncResponse: (accept: boolean): Buffer => Buffer.from(accept ? 'G' : 'N', 'latin1'),

  authenticationOk: (): Buffer => authentication(AuthenticationCode.Ok).finish(BackendCode.Authentication),
  authenticationKerberosV5: (): Buffer =>
    authentication(AuthenticationCode.KerberosV5).finish(BackendCode.Authentication),
  authenticationCleartextPassword: (): Buffer =>
    authentication(AuthenticationCode.CleartextPassword).finish(BackendCode.Authentication),
  authenticationMD5Password(salt: Bytes): Buffer {
    if (salt.byteLength !== 4) throw encodeError(`MD5 salt must be 4 bytes, got ${salt.byteLength}`);
    return authentication(AuthenticationCode.MD5Password).bytes(salt).finish(BackendCode.Authentication);
  },
  authenticationGSS: (): Buffer => authentication(AuthenticationCode.GSS).finish(BackendCode.Authentication),
  authenticationGSSContinue: (data: Bytes): Buffer =>
    authentication(AuthenticationCode.GSSContinue).bytes(data).finish(BackendCode.Authentication),
  authenticationSSPI: (): Buffer => authentication(AuthenticationCode.SSPI).finish(BackendCode.Authentication),
  authenticationSASL(mechanisms: readonly string[]): Buffer {
    const w = authentication(AuthenticationCode.SASL);
    for (const m of mechanisms) {
      if (m === '') throw encodeError('a SASL mechanism name cannot be empty');
      w.cstring(m);
    }
    return w.int8(0).finish(BackendCode.Authentication);
  },
  authenticationSASLContinue: (data: Bytes): Buffer =>
    authentication(AuthenticationCode.SASLContinue).bytes(data).finish(BackendCode.Authentication),
  authenticationSASLFinal: (data: Bytes): Buffer =>
    authentication(AuthenticationCode.SASLFinal).bytes(data).finish(BackendCode.Authentication),

  parameterStatus: (name: string, value: string): Buffer =>
    new BufferWriter().cstring(name).cstring(value).finish(BackendCode.ParameterStatus),
  backendKeyData: (processId: number, secretKey: number): Buffer =>
    new BufferWriter().int32(processId).int32(secretKey).finish(BackendCode.BackendKeyData),
  readyForQuery: (status: TransactionStatus): Buffer => {
    if (status !== 'I' && status !== 'T' && status !== 'E') throw encodeError(`invalid transaction status ${status}`);
    return new BufferWriter().int8(status.charCodeAt(0)).finish(BackendCode.ReadyForQuery);
  },

  errorResponse: (fields: ErrorFields): Buffer => noticeBody(fields).finish(BackendCode.ErrorResponse),
  noticeResponse: (fields: NoticeFields): Buffer => noticeBody(fields).finish(BackendCode.NoticeResponse),
  /**
   * ward's own error as a client sees it: SQLSTATE from the error's kind (or its override),
   * the code in front of the message so that users can look it up in docs/errors.md.
   * Use 'FATAL' before ReadyForQuery and when the connection is about to close.
   */
  wardError: (err: WardError, severity: 'ERROR' | 'FATAL' = 'ERROR'): Buffer =>
    noticeBody({
      severity,
      severityNonLocalized: severity,
      code: err.sqlState,
      // A NUL would end the C string early and desynchronise the client; messages may quote input.
      message: `${err.code}: ${err.message}`.replaceAll('\0', '\\0'),
    }).finish(BackendCode.ErrorResponse),

  rowDescription(fields: readonly FieldInput[]): Buffer {
    const w = new BufferWriter().count16(fields.length, 'columns');
    for (const f of fields) {
      w.cstring(f.name)
        .uint32(f.tableOid ?? 0)
        .int16(f.columnAttributeNumber ?? 0)
        .uint32(f.dataTypeOid)
        .int16(f.dataTypeSize)
        .int32(f.typeModifier ?? -1)
        .int16(f.format ?? 0);
    }
    return w.finish(BackendCode.RowDescription);
  },
  /** Values as bytes (or text, written as UTF-8); null is SQL NULL. */
  dataRow(values: readonly (Bytes | string | null)[]): Buffer {
    const w = new BufferWriter().count16(values.length, 'columns');
    for (const v of values) w.nullableBytes(typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
    return w.finish(BackendCode.DataRow);
  },
  commandComplete: (tag: string): Buffer => new BufferWriter().cstring(tag).finish(BackendCode.CommandComplete),
  emptyQueryResponse: (): Buffer => new BufferWriter().finish(BackendCode.EmptyQueryResponse),
  parseComplete: (): Buffer => new BufferWriter().finish(BackendCode.ParseComplete),
  bindComplete: (): Buffer => new BufferWriter().finish(BackendCode.BindComplete),
  closeComplete: (): Buffer => new BufferWriter().finish(BackendCode.CloseComplete),
  noData: (): Buffer => new BufferWriter().finish(BackendCode.NoData),
  portalSuspended: (): Buffer => new BufferWriter().finish(BackendCode.PortalSuspended),
  parameterDescription(paramTypes: readonly number[]): Buffer {
    const w = new BufferWriter().count16(paramTypes.length, 'parameters');
    for (const oid of paramTypes) w.uint32(oid);
    return w.finish(BackendCode.ParameterDescription);
  },

  copyInResponse: (input: CopyResponseInput): Buffer => copyResponse(input, BackendCode.CopyInResponse),
  copyOutResponse: (input: CopyResponseInput): Buffer => copyResponse(input, BackendCode.CopyOutResponse),
  copyBothResponse: (input: CopyResponseInput): Buffer => copyResponse(input, BackendCode.CopyBothResponse),
  copyData: (data: Bytes): Buffer => new BufferWriter().bytes(data).finish(BackendCode.CopyData),
  copyDone: (): Buffer => new BufferWriter().finish(BackendCode.CopyDone),

  functionCallResponse: (result: Bytes | null): Buffer =>
    new BufferWriter().nullableBytes(result).finish(BackendCode.FunctionCallResponse),
  notificationResponse: (processId: number, channel: string, payload: string): Buffer =>
    new BufferWriter().int32(processId).cstring(channel).cstring(payload).finish(BackendCode.NotificationResponse),
  /** Tells a client asking for 3.x (x > 0) or for `_pq_.` options what ward supports instead. */
  negotiateProtocolVersion(newestMinorVersion: number, unrecognizedOptions: readonly string[]): Buffer {
    const w = new BufferWriter().int32(newestMinorVersion).int32(unrecognizedOptions.length);
    for (const o of unrecognizedOptions) w.cstring(o);
    return w.finish(BackendCode.NegotiateProtocolVersion);
  },
});
