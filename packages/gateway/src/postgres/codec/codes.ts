// Byte codes of the Postgres frontend/backend protocol 3.0, named as in the Postgres docs
// ("Message Formats", https://www.postgresql.org/docs/current/protocol-message-formats.html).

/** Tags of the messages a client (frontend) sends once the startup phase is over. */
export enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Describe = 0x44, // D
  Execute = 0x45, // E
  Flush = 0x48, // H
  FunctionCall = 0x46, // F
  Parse = 0x50, // P
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all share 'p'. */
  AuthenticationResponse = 0x70, // p
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
}

/** Tags of the messages a server (backend) sends. */
export enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

/** Request codes of the untagged startup-phase packets (Int32 length, Int32 code). */
export enum StartupCode {
  /** Protocol 3.0: major 3 in the high 16 bits, minor 0 in the low 16 bits. */
  ProtocolVersion3 = 196608,
  CancelRequest = 80877102,
  SSLRequest = 80877103,
  GSSENCRequest = 80877104,
}

/** Authentication request codes carried in the Int32 after an 'R' message's length. */
export enum AuthenticationCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** postmaster.c MAX_STARTUP_PACKET_LENGTH: a startup packet longer than this is refused. */
export const MAX_STARTUP_PACKET_LENGTH = 10_000;
/** libpq-be.h PQ_SMALL_MESSAGE_LIMIT: the cap Postgres puts on messages that carry no payload. */
export const SMALL_MESSAGE_LIMIT = 10_000;
/** Postgres' own ceiling (PQ_LARGE_MESSAGE_LIMIT = MaxAllocSize - 1); no option may exceed it. */
export const POSTGRES_MAX_MESSAGE_SIZE = 0x3fff_fffe;
/** ward's default cap on one message, tag included: 64 MiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
