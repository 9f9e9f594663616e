// What a client (frontend) sends, as typed messages. Names follow the Postgres docs,
// "Message Formats" (protocol 3.0). Strings are decoded as UTF-8 (ward requires
// client_encoding UTF8); `raw` always holds the exact bytes to forward unchanged.

interface Wire {
  /** The message exactly as received (tag and length included); a subarray when possible. */
  readonly raw: Buffer;
  /** Bytes the message took on the wire, tag included (= raw.byteLength). */
  readonly byteLength: number;
}

export interface SSLRequest extends Wire {
  readonly type: 'SSLRequest';
}

export interface GSSENCRequest extends Wire {
  readonly type: 'GSSENCRequest';
}

export interface CancelRequest extends Wire {
  readonly type: 'CancelRequest';
  readonly processId: number;
  readonly secretKey: number;
}

export interface StartupMessage extends Wire {
  readonly type: 'StartupMessage';
  /** Always 3. */
  readonly majorVersion: number;
  /** 0 for protocol 3.0; a newer minor must be answered with NegotiateProtocolVersion. */
  readonly minorVersion: number;
  /** In wire order; a repeated name keeps its last value, as Postgres does. */
  readonly parameters: ReadonlyMap<string, string>;
}

export interface Query extends Wire {
  readonly type: 'Query';
  readonly query: string;
}

export interface Parse extends Wire {
  readonly type: 'Parse';
  /** Prepared statement name; '' is the unnamed statement. */
  readonly name: string;
  readonly query: string;
  /** Parameter type OIDs; 0 leaves the type unspecified. */
  readonly paramTypes: readonly number[];
}

export interface Bind extends Wire {
  readonly type: 'Bind';
  readonly portal: string;
  readonly statement: string;
  /** 0 = text, 1 = binary; none means all text, one applies to all parameters. */
  readonly paramFormats: readonly number[];
  /** Parameter values as sent (null is SQL NULL). */
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
}

export interface Describe extends Wire {
  readonly type: 'Describe';
  /** 'S' = prepared statement, 'P' = portal. */
  readonly target: 'S' | 'P';
  readonly name: string;
}

export interface Execute extends Wire {
  readonly type: 'Execute';
  readonly portal: string;
  /** 0 = no limit. */
  readonly maxRows: number;
}

export interface Close extends Wire {
  readonly type: 'Close';
  readonly target: 'S' | 'P';
  readonly name: string;
}

export interface Sync extends Wire {
  readonly type: 'Sync';
}

export interface Flush extends Wire {
  readonly type: 'Flush';
}

export interface Terminate extends Wire {
  readonly type: 'Terminate';
}

export interface CopyData extends Wire {
  readonly type: 'CopyData';
  readonly data: Buffer;
}

export interface CopyDone extends Wire {
  readonly type: 'CopyDone';
}

export interface CopyFail extends Wire {
  readonly type: 'CopyFail';
  readonly message: string;
}

export interface FunctionCall extends Wire {
  readonly type: 'FunctionCall';
  readonly functionOid: number;
  readonly argFormats: readonly number[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: number;
}

/**
 * PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse: they share the tag 'p'
 * and only the connection's state says which one it is. Decode the body with
 * `decodePasswordMessage`, `decodeSASLInitialResponse` or `decodeSASLResponse`.
 */
export interface AuthenticationResponse extends Wire {
  readonly type: 'AuthenticationResponse';
  readonly body: Buffer;
}

export type StartupPhaseMessage = SSLRequest | GSSENCRequest | CancelRequest | StartupMessage;

export type TaggedFrontendMessage =
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Close
  | Sync
  | Flush
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | AuthenticationResponse;

export type FrontendMessage = StartupPhaseMessage | TaggedFrontendMessage;
