// The gateway's Postgres wire codec: ward faces psql as a server. I/O-free: bytes in,
// messages out, and back. See ../README.md for the message sequence.
export type { SASLInitialResponse } from './authentication-response.js';
export { decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse } from './authentication-response.js';
export type * from './backend-messages.js';
export { NOTICE_FIELD_CODES } from './backend-messages.js';
export { parseBackendMessage } from './backend-parser.js';
export type { CopyResponseInput, FieldInput } from './backend-serializer.js';
export { BackendSerializer } from './backend-serializer.js';
export type { BackendMessageSplitterOptions, BackendPacket } from './backend-splitter.js';
export { BackendMessageSplitter } from './backend-splitter.js';
export {
  ERR_PG_ENCODE,
  ERR_PG_MESSAGE_TOO_LARGE,
  ERR_PG_PROTOCOL,
  ERR_PG_UNSUPPORTED_PROTOCOL,
} from './codec-errors.js';
export {
  AuthenticationCode,
  BackendCode,
  DEFAULT_MAX_MESSAGE_SIZE,
  FrontendCode,
  MAX_STARTUP_PACKET_LENGTH,
  POSTGRES_MAX_MESSAGE_SIZE,
  SMALL_MESSAGE_LIMIT,
  StartupCode,
} from './codes.js';
export type * as FrontendMessages from './frontend-messages.js';
export type { FrontendMessage, StartupPhaseMessage, TaggedFrontendMessage } from './frontend-messages.js';
export type { FrontendParserOptions, FrontendParserPhase } from './frontend-parser.js';
export { FrontendParser } from './frontend-parser.js';
export type { BindInput, FunctionCallInput, ParseInput } from './frontend-serializer.js';
export { FrontendSerializer } from './frontend-serializer.js';
