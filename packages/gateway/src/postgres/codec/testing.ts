// Helpers shared by this folder's tests (not exported from the codec's index): rebuild a
// parsed message with the serializers, drive the parser's startup phase, cut byte streams.
import type { BackendMessage, ErrorFields } from './backend-messages.js';
import { BackendSerializer } from './backend-serializer.js';
import type { FrontendMessage } from './frontend-messages.js';
import type { FrontendParser } from './frontend-parser.js';
import { FrontendSerializer } from './frontend-serializer.js';

/** Rebuilds a parsed frontend message from its fields alone; equal bytes prove a lossless parse. */
export function reserializeFrontend(m: FrontendMessage): Buffer {
  switch (m.type) {
    case 'SSLRequest':
      return FrontendSerializer.sslRequest();
    case 'GSSENCRequest':
      return FrontendSerializer.gssEncRequest();
    case 'CancelRequest':
      return FrontendSerializer.cancelRequest(m.processId, m.secretKey);
    case 'StartupMessage':
      return FrontendSerializer.startupMessage(m.parameters, m.minorVersion);
    case 'Query':
      return FrontendSerializer.query(m.query);
    case 'Parse':
      return FrontendSerializer.parse(m);
    case 'Bind':
      return FrontendSerializer.bind(m);
    case 'Describe':
      return FrontendSerializer.describe(m.target, m.name);
    case 'Execute':
      return FrontendSerializer.execute(m.portal, m.maxRows);
    case 'Close':
      return FrontendSerializer.close(m.target, m.name);
    case 'Sync':
      return FrontendSerializer.sync();
    case 'Flush':
      return FrontendSerializer.flush();
    case 'Terminate':
      return FrontendSerializer.terminate();
    case 'CopyData':
      return FrontendSerializer.copyData(m.data);
    case 'CopyDone':
      return FrontendSerializer.copyDone();
    case 'CopyFail':
      return FrontendSerializer.copyFail(m.message);
    case 'FunctionCall':
      return FrontendSerializer.functionCall(m);
    case 'AuthenticationResponse':
      return FrontendSerializer.saslResponse(m.body);
  }
}

/** Rebuilds a parsed backend message from its fields alone. */
export function reserializeBackend(m: BackendMessage): Buffer {
  const S = BackendSerializer;
  switch (m.type) {
    case 'AuthenticationOk':
      return S.authenticationOk();
    case 'AuthenticationKerberosV5':
      return S.authenticationKerberosV5();
    case 'AuthenticationCleartextPassword':
      return S.authenticationCleartextPassword();
    case 'AuthenticationMD5Password':
      return S.authenticationMD5Password(m.salt);
    case 'AuthenticationGSS':
      return S.authenticationGSS();
    case 'AuthenticationGSSContinue':
      return S.authenticationGSSContinue(m.data);
    case 'AuthenticationSSPI':
      return S.authenticationSSPI();
    case 'AuthenticationSASL':
      return S.authenticationSASL(m.mechanisms);
    case 'AuthenticationSASLContinue':
      return S.authenticationSASLContinue(m.data);
    case 'AuthenticationSASLFinal':
      return S.authenticationSASLFinal(m.data);
    case 'BackendKeyData':
      return S.backendKeyData(m.processId, m.secretKey);
    case 'BindComplete':
      return S.bindComplete();
    case 'CloseComplete':
      return S.closeComplete();
    case 'CommandComplete':
      return S.commandComplete(m.tag);
    case 'CopyData':
      return S.copyData(m.data);
    case 'CopyDone':
      return S.copyDone();
    case 'CopyInResponse':
      return S.copyInResponse(m);
    case 'CopyOutResponse':
      return S.copyOutResponse(m);
    case 'CopyBothResponse':
      return S.copyBothResponse(m);
    case 'DataRow':
      return S.dataRow(m.values);
    case 'EmptyQueryResponse':
      return S.emptyQueryResponse();
    case 'ErrorResponse':
      // The serializer writes only the fields present, so a partial set round-trips as is.
      return S.errorResponse(m.fields as ErrorFields);
    case 'NoticeResponse':
      return S.noticeResponse(m.fields);
    case 'FunctionCallResponse':
      return S.functionCallResponse(m.result);
    case 'NegotiateProtocolVersion':
      return S.negotiateProtocolVersion(m.newestMinorVersion, m.unrecognizedOptions);
    case 'NoData':
      return S.noData();
    case 'NotificationResponse':
      return S.notificationResponse(m.processId, m.channel, m.payload);
    case 'ParameterDescription':
      return S.parameterDescription(m.paramTypes);
    case 'ParameterStatus':
      return S.parameterStatus(m.name, m.value);
    case 'ParseComplete':
      return S.parseComplete();
    case 'PortalSuspended':
      return S.portalSuspended();
    case 'ReadyForQuery':
      return S.readyForQuery(m.status);
    case 'RowDescription':
      return S.rowDescription(m.fields);
  }
}

/**
 * Feeds chunks and plays the caller's part in the startup phase the way a plaintext server
 * does: 'N' to SSLRequest/GSSENCRequest (resume), tagged messages after StartupMessage.
 */
export function feedFrontend(parser: FrontendParser, chunks: Iterable<Uint8Array>): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  const take = (msgs: FrontendMessage[]): void => {
    for (const m of msgs) {
      out.push(m);
      if (m.type === 'SSLRequest' || m.type === 'GSSENCRequest') take(parser.resume());
      else if (m.type === 'StartupMessage') take(parser.startupDone());
    }
  };
  for (const c of chunks) take(parser.push(c));
  return out;
}

/** Every way of cutting `bytes` in two, then one byte at a time: "packets can be divided anywhere". */
export function* everySplit(bytes: Buffer): Generator<Buffer[]> {
  yield [bytes];
  for (let i = 1; i < bytes.byteLength; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
  const single: Buffer[] = [];
  for (let i = 0; i < bytes.byteLength; i++) single.push(bytes.subarray(i, i + 1));
  yield single;
}

/** Cuts `bytes` into chunks whose sizes cycle through `sizes` (all ≥ 1). */
export function chunkBy(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < bytes.byteLength; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(bytes.subarray(off, off + size));
    off += size;
  }
  return out;
}

/** A parsed message without its wire bytes, for comparing fields. */
export function fieldsOf<T extends { raw: Buffer; byteLength: number }>(m: T): Omit<T, 'raw' | 'byteLength'> {
  const { raw: _raw, byteLength: _len, ...rest } = m;
  return rest;
}
