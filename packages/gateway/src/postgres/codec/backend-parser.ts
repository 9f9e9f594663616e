import type { BackendMessage, NoticeFields, TransactionStatus } from './backend-messages.js';
import { NOTICE_FIELD_CODES } from './backend-messages.js';
import { BufferReader } from './buffer-reader.js';
import { protocolError } from './codec-errors.js';
import { AuthenticationCode, BackendCode } from './codes.js';

const FIELD_BY_LETTER = new Map<number, keyof NoticeFields>(
  NOTICE_FIELD_CODES.map(([key, letter]) => [letter.charCodeAt(0), key]),
);

/**
 * Parses one whole backend message, as cut by BackendMessageSplitter (tag and length
 * included). Bodies are bounds-checked: a malformed one throws ERR_PG_PROTOCOL. DataRow
 * values, CopyData and SASL data are zero-copy views of `raw`.
 *
 * @example
 * const msg = parseBackendMessage(packet.raw);
 * if (msg.type === 'CommandComplete') record(msg.tag);
 */
export function parseBackendMessage(raw: Buffer): BackendMessage {
  if (raw.byteLength < 5) throw protocolError(`backend message of ${raw.byteLength} bytes is shorter than its header`);
  const byteLength = raw.byteLength;
  const tag = raw[0]!;
  const length = raw.readInt32BE(1);
  if (length !== byteLength - 1) {
    throw protocolError(`backend message length ${length} does not match its ${byteLength - 1} bytes`);
  }
  const r = new BufferReader(raw, 5, byteLength, `backend message 0x${tag.toString(16)}`);
  const w = { raw, byteLength };
  let msg: BackendMessage;
  switch (tag) {
    case BackendCode.Authentication:
      msg = parseAuthentication(r, w);
      break;
    case BackendCode.BackendKeyData:
      msg = { type: 'BackendKeyData', processId: r.int32(), secretKey: r.int32(), ...w };
      break;
    case BackendCode.BindComplete:
      msg = { type: 'BindComplete', ...w };
      break;
    case BackendCode.CloseComplete:
      msg = { type: 'CloseComplete', ...w };
      break;
    case BackendCode.CommandComplete:
      msg = { type: 'CommandComplete', tag: r.cstring(), ...w };
      break;
    case BackendCode.CopyData:
      msg = { type: 'CopyData', data: r.rest(), ...w };
      break;
    case BackendCode.CopyDone:
      msg = { type: 'CopyDone', ...w };
      break;
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.CopyBothResponse: {
      const type =
        tag === BackendCode.CopyInResponse
          ? 'CopyInResponse'
          : tag === BackendCode.CopyOutResponse
            ? 'CopyOutResponse'
            : 'CopyBothResponse';
      const format = r.byte();
      const columnFormats: number[] = new Array(r.count16('column'));
      for (let i = 0; i < columnFormats.length; i++) columnFormats[i] = r.int16();
      msg = { type, format, columnFormats, ...w };
      break;
    }
    case BackendCode.DataRow: {
      const values: (Buffer | null)[] = new Array(r.count16('column'));
      for (let i = 0; i < values.length; i++) values[i] = r.nullableBytes();
      msg = { type: 'DataRow', values, ...w };
      break;
    }
    case BackendCode.EmptyQueryResponse:
      msg = { type: 'EmptyQueryResponse', ...w };
      break;
    case BackendCode.ErrorResponse:
      msg = { type: 'ErrorResponse', fields: parseNoticeFields(r), ...w };
      break;
    case BackendCode.NoticeResponse:
      msg = { type: 'NoticeResponse', fields: parseNoticeFields(r), ...w };
      break;
    case BackendCode.FunctionCallResponse:
      msg = { type: 'FunctionCallResponse', result: r.nullableBytes(), ...w };
      break;
    case BackendCode.NegotiateProtocolVersion: {
      const newestMinorVersion = r.int32();
      const count = r.int32();
      if (count < 0) throw protocolError(`NegotiateProtocolVersion: negative option count ${count}`);
      const unrecognizedOptions: string[] = [];
      // Each option takes at least one byte, so a count beyond the bytes left is a lie.
      if (count > r.remaining) throw protocolError('NegotiateProtocolVersion: insufficient data left in message');
      for (let i = 0; i < count; i++) unrecognizedOptions.push(r.cstring());
      msg = { type: 'NegotiateProtocolVersion', newestMinorVersion, unrecognizedOptions, ...w };
      break;
    }
    case BackendCode.NoData:
      msg = { type: 'NoData', ...w };
      break;
    case BackendCode.NotificationResponse:
      msg = { type: 'NotificationResponse', processId: r.int32(), channel: r.cstring(), payload: r.cstring(), ...w };
      break;
    case BackendCode.ParameterDescription: {
      const paramTypes: number[] = new Array(r.count16('parameter'));
      for (let i = 0; i < paramTypes.length; i++) paramTypes[i] = r.uint32();
      msg = { type: 'ParameterDescription', paramTypes, ...w };
      break;
    }
    case BackendCode.ParameterStatus:
      msg = { type: 'ParameterStatus', name: r.cstring(), value: r.cstring(), ...w };
      break;
    case BackendCode.ParseComplete:
      msg = { type: 'ParseComplete', ...w };
      break;
    case BackendCode.PortalSuspended:
      msg = { type: 'PortalSuspended', ...w };
      break;
    case BackendCode.ReadyForQuery: {
      const status = String.fromCharCode(r.byte());
      if (status !== 'I' && status !== 'T' && status !== 'E') {
        throw protocolError(`ReadyForQuery: invalid transaction status ${JSON.stringify(status)}`);
      }
      msg = { type: 'ReadyForQuery', status: status as TransactionStatus, ...w };
      break;
    }
    case BackendCode.RowDescription: {
      const count = r.count16('column');
      const fields = [];
      for (let i = 0; i < count; i++) {
        fields.push({
          name: r.cstring(),
          tableOid: r.uint32(),
          columnAttributeNumber: r.int16(),
          dataTypeOid: r.uint32(),
          dataTypeSize: r.int16(),
          typeModifier: r.int32(),
          format: r.int16(),
        });
      }
      msg = { type: 'RowDescription', fields, ...w };
      break;
    }
    default:
      throw protocolError(`invalid backend message type 0x${tag.toString(16)}`);
  }
  r.done();
  return msg;
}

type WireParts = { raw: Buffer; byteLength: number };

function parseAuthentication(r: BufferReader, w: WireParts): BackendMessage {
  const code = r.int32();
  switch (code) {
    case AuthenticationCode.Ok:
      return { type: 'AuthenticationOk', ...w };
    case AuthenticationCode.KerberosV5:
      return { type: 'AuthenticationKerberosV5', ...w };
    case AuthenticationCode.CleartextPassword:
      return { type: 'AuthenticationCleartextPassword', ...w };
    case AuthenticationCode.MD5Password:
      return { type: 'AuthenticationMD5Password', salt: r.bytes(4), ...w };
    case AuthenticationCode.GSS:
      return { type: 'AuthenticationGSS', ...w };
    case AuthenticationCode.GSSContinue:
      return { type: 'AuthenticationGSSContinue', data: r.rest(), ...w };
    case AuthenticationCode.SSPI:
      return { type: 'AuthenticationSSPI', ...w };
    case AuthenticationCode.SASL: {
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
      return { type: 'AuthenticationSASL', mechanisms, ...w };
    }
    case AuthenticationCode.SASLContinue:
      return { type: 'AuthenticationSASLContinue', data: r.rest(), ...w };
    case AuthenticationCode.SASLFinal:
      return { type: 'AuthenticationSASLFinal', data: r.rest(), ...w };
    default:
      throw protocolError(`unknown authentication request code ${code}`);
  }
}

function parseNoticeFields(r: BufferReader): NoticeFields {
  const fields: NoticeFields = {};
  for (let letter = r.byte(); letter !== 0; letter = r.byte()) {
    const value = r.cstring();
    // The docs ask frontends to ignore field types they do not know.
    const key = FIELD_BY_LETTER.get(letter);
    if (key !== undefined) fields[key] = value;
  }
  return fields;
}
