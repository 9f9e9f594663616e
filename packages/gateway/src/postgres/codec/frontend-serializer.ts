import { BufferWriter } from './buffer-writer.js';
import { FrontendCode, StartupCode } from './codes.js';

type Bytes = Uint8Array;

export interface ParseInput {
  name?: string;
  query: string;
  paramTypes?: readonly number[];
}

export interface BindInput {
  portal?: string;
  statement?: string;
  paramFormats?: readonly number[];
  params?: readonly (Bytes | null)[];
  resultFormats?: readonly number[];
}

export interface FunctionCallInput {
  functionOid: number;
  argFormats?: readonly number[];
  args?: readonly (Bytes | null)[];
  resultFormat?: number;
}

/**
 * Builds what a client sends: the exact inverse of FrontendParser, so that a parsed message
 * can be rebuilt and so tests can produce every frontend message, including the ones
 * `pg-protocol`'s serializer cannot (FunctionCall, GSSENCRequest, explicit format codes).
 *
 * @example
 * const bytes = Buffer.concat([FrontendSerializer.parse({ query: 'select $1' }), FrontendSerializer.sync()]);
 */
export const FrontendSerializer = Object.freeze({
  sslRequest: (): Buffer => new BufferWriter().int32(StartupCode.SSLRequest).finishUntagged(),
  gssEncRequest: (): Buffer => new BufferWriter().int32(StartupCode.GSSENCRequest).finishUntagged(),
  cancelRequest: (processId: number, secretKey: number): Buffer =>
    new BufferWriter().int32(StartupCode.CancelRequest).int32(processId).int32(secretKey).finishUntagged(),
  startupMessage(parameters: Iterable<readonly [string, string]> | Record<string, string>, minorVersion = 0): Buffer {
    const w = new BufferWriter().int32((3 << 16) | minorVersion);
    const pairs = Symbol.iterator in parameters ? parameters : Object.entries(parameters);
    for (const [name, value] of pairs as Iterable<readonly [string, string]>) w.cstring(name).cstring(value);
    return w.int8(0).finishUntagged();
  },
  query: (query: string): Buffer => new BufferWriter().cstring(query).finish(FrontendCode.Query),
  parse(input: ParseInput): Buffer {
    const types = input.paramTypes ?? [];
    const w = new BufferWriter()
      .cstring(input.name ?? '')
      .cstring(input.query)
      .count16(types.length, 'parameter types');
    for (const oid of types) w.uint32(oid);
    return w.finish(FrontendCode.Parse);
  },
  bind(input: BindInput = {}): Buffer {
    const params = input.params ?? [];
    const w = new BufferWriter()
      .cstring(input.portal ?? '')
      .cstring(input.statement ?? '')
      .int16Array(input.paramFormats ?? [], 'parameter formats')
      .count16(params.length, 'parameters');
    for (const p of params) w.nullableBytes(p);
    return w.int16Array(input.resultFormats ?? [], 'result formats').finish(FrontendCode.Bind);
  },
  describe: (target: 'S' | 'P', name = ''): Buffer =>
    new BufferWriter().int8(target.charCodeAt(0)).cstring(name).finish(FrontendCode.Describe),
  execute: (portal = '', maxRows = 0): Buffer =>
    new BufferWriter().cstring(portal).int32(maxRows).finish(FrontendCode.Execute),
  close: (target: 'S' | 'P', name = ''): Buffer =>
    new BufferWriter().int8(target.charCodeAt(0)).cstring(name).finish(FrontendCode.Close),
  sync: (): Buffer => new BufferWriter().finish(FrontendCode.Sync),
  flush: (): Buffer => new BufferWriter().finish(FrontendCode.Flush),
  terminate: (): Buffer => new BufferWriter().finish(FrontendCode.Terminate),
  copyData: (data: Bytes): Buffer => new BufferWriter().bytes(data).finish(FrontendCode.CopyData),
  copyDone: (): Buffer => new BufferWriter().finish(FrontendCode.CopyDone),
  copyFail: (message: string): Buffer => new BufferWriter().cstring(message).finish(FrontendCode.CopyFail),
  functionCall(input: FunctionCallInput): Buffer {
    const args = input.args ?? [];
    const w = new BufferWriter()
      .uint32(input.functionOid)
      .int16Array(input.argFormats ?? [], 'argument formats')
      .count16(args.length, 'arguments');
    for (const a of args) w.nullableBytes(a);
    return w.int16(input.resultFormat ?? 0).finish(FrontendCode.FunctionCall);
  },
  passwordMessage: (password: string): Buffer =>
    new BufferWriter().cstring(password).finish(FrontendCode.AuthenticationResponse),
  saslInitialResponse: (mechanism: string, data: Bytes | null): Buffer =>
    new BufferWriter().cstring(mechanism).nullableBytes(data).finish(FrontendCode.AuthenticationResponse),
  saslResponse: (data: Bytes): Buffer => new BufferWriter().bytes(data).finish(FrontendCode.AuthenticationResponse),
});
