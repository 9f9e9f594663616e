// What a server (backend) sends, as typed messages; names from the Postgres docs,
// "Message Formats" (protocol 3.0). Values stay bytes where masking needs the bytes
// (DataRow, CopyData); text fields are decoded as UTF-8.

interface Wire {
  /** The message exactly as received, tag and length included. */
  readonly raw: Buffer;
  /** Bytes on the wire, tag included (= raw.byteLength). */
  readonly byteLength: number;
}

/** ErrorResponse / NoticeResponse fields, by their documented one-letter codes. */
export interface NoticeFields {
  /** S: ERROR, FATAL, PANIC (errors) or WARNING, NOTICE, DEBUG, INFO, LOG (notices); may be localized. */
  severity?: string;
  /** V: the severity, never localized. */
  severityNonLocalized?: string;
  /** C: the SQLSTATE. */
  code?: string;
  /** M: the primary message. */
  message?: string;
  /** D */
  detail?: string;
  /** H */
  hint?: string;
  /** P: 1-based character index into the query string. */
  position?: string;
  /** p */
  internalPosition?: string;
  /** q */
  internalQuery?: string;
  /** W */
  where?: string;
  /** s */
  schema?: string;
  /** t */
  table?: string;
  /** c */
  column?: string;
  /** d */
  dataType?: string;
  /** n */
  constraint?: string;
  /** F */
  file?: string;
  /** L */
  line?: string;
  /** R */
  routine?: string;
}

/** What an ErrorResponse must carry: S, C and M are always present in Postgres' own. */
export interface ErrorFields extends NoticeFields {
  severity: string;
  code: string;
  message: string;
}

/** In the order Postgres itself writes them (elog.c send_message_to_frontend). */
export const NOTICE_FIELD_CODES: ReadonlyArray<readonly [keyof NoticeFields, string]> = [
  ['severity', 'S'],
  ['severityNonLocalized', 'V'],
  ['code', 'C'],
  ['message', 'M'],
  ['detail', 'D'],
  ['hint', 'H'],
  ['position', 'P'],
  ['internalPosition', 'p'],
  ['internalQuery', 'q'],
  ['where', 'W'],
  ['schema', 's'],
  ['table', 't'],
  ['column', 'c'],
  ['dataType', 'd'],
  ['constraint', 'n'],
  ['file', 'F'],
  ['line', 'L'],
  ['routine', 'R'],
];

export interface FieldDescription {
  name: string;
  /** OID of the table, or 0 when the column is not a table column. */
  tableOid: number;
  /** Attribute number of the column in that table, or 0. */
  columnAttributeNumber: number;
  dataTypeOid: number;
  /** pg_type.typlen; negative for variable-width types. */
  dataTypeSize: number;
  /** pg_attribute.atttypmod; -1 when it does not apply. */
  typeModifier: number;
  /** 0 = text, 1 = binary. */
  format: number;
}

type Simple<T extends string> = Wire & { readonly type: T };

export type AuthenticationOk = Simple<'AuthenticationOk'>;
export type AuthenticationKerberosV5 = Simple<'AuthenticationKerberosV5'>;
export type AuthenticationCleartextPassword = Simple<'AuthenticationCleartextPassword'>;
export type AuthenticationMD5Password = Simple<'AuthenticationMD5Password'> & { readonly salt: Buffer };
export type AuthenticationGSS = Simple<'AuthenticationGSS'>;
export type AuthenticationGSSContinue = Simple<'AuthenticationGSSContinue'> & { readonly data: Buffer };
export type AuthenticationSSPI = Simple<'AuthenticationSSPI'>;
export type AuthenticationSASL = Simple<'AuthenticationSASL'> & { readonly mechanisms: readonly string[] };
export type AuthenticationSASLContinue = Simple<'AuthenticationSASLContinue'> & { readonly data: Buffer };
export type AuthenticationSASLFinal = Simple<'AuthenticationSASLFinal'> & { readonly data: Buffer };
export type BackendKeyData = Simple<'BackendKeyData'> & { readonly processId: number; readonly secretKey: number };
export type BindComplete = Simple<'BindComplete'>;
export type CloseComplete = Simple<'CloseComplete'>;
export type CommandComplete = Simple<'CommandComplete'> & { readonly tag: string };
export type CopyData = Simple<'CopyData'> & { readonly data: Buffer };
export type CopyDone = Simple<'CopyDone'>;
/** format: 0 = text, 1 = binary; one format code per column. */
export type CopyResponse<T extends string> = Simple<T> & {
  readonly format: number;
  readonly columnFormats: readonly number[];
};
export type CopyInResponse = CopyResponse<'CopyInResponse'>;
export type CopyOutResponse = CopyResponse<'CopyOutResponse'>;
export type CopyBothResponse = CopyResponse<'CopyBothResponse'>;
export type DataRow = Simple<'DataRow'> & { readonly values: readonly (Buffer | null)[] };
export type EmptyQueryResponse = Simple<'EmptyQueryResponse'>;
export type ErrorResponse = Simple<'ErrorResponse'> & { readonly fields: NoticeFields };
export type FunctionCallResponse = Simple<'FunctionCallResponse'> & { readonly result: Buffer | null };
export type NegotiateProtocolVersion = Simple<'NegotiateProtocolVersion'> & {
  readonly newestMinorVersion: number;
  readonly unrecognizedOptions: readonly string[];
};
export type NoData = Simple<'NoData'>;
export type NoticeResponse = Simple<'NoticeResponse'> & { readonly fields: NoticeFields };
export type NotificationResponse = Simple<'NotificationResponse'> & {
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
};
export type ParameterDescription = Simple<'ParameterDescription'> & { readonly paramTypes: readonly number[] };
export type ParameterStatus = Simple<'ParameterStatus'> & { readonly name: string; readonly value: string };
export type ParseComplete = Simple<'ParseComplete'>;
export type PortalSuspended = Simple<'PortalSuspended'>;
/** I = idle, T = in a transaction block, E = in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';
export type ReadyForQuery = Simple<'ReadyForQuery'> & { readonly status: TransactionStatus };
export type RowDescription = Simple<'RowDescription'> & { readonly fields: readonly FieldDescription[] };

export type BackendMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal
  | BackendKeyData
  | BindComplete
  | CloseComplete
  | CommandComplete
  | CopyData
  | CopyDone
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | DataRow
  | EmptyQueryResponse
  | ErrorResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion
  | NoData
  | NoticeResponse
  | NotificationResponse
  | ParameterDescription
  | ParameterStatus
  | ParseComplete
  | PortalSuspended
  | ReadyForQuery
  | RowDescription;
