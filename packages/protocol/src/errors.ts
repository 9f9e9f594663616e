/**
 * One error type for all of ward. Every error has a stable `code` (`ERR_<AREA>_<WHAT>`,
 * listed in docs/errors.md) and a `kind`; the kind decides how each client protocol sees it
 * (gRPC status, HTTP status, Postgres SQLSTATE, SSH disconnect reason). Convert unknown
 * errors once, at each boundary, with `toWardError`.
 *
 * @example
 * throw new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${name}"`);
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type ErrorInfo, ErrorKind } from './gen/ward/tunnel/v1/tunnel_pb.js';

export type ErrorKindName =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'resource_exhausted'
  | 'internal';

export interface KindMapping {
  grpc: GrpcStatus;
  http: number;
  /** Postgres SQLSTATE (Appendix A of the Postgres docs). */
  sqlState: string;
  /** SSH_DISCONNECT_* reason code, RFC 4253 §11.1. */
  sshDisconnect: number;
}

/** The one table that maps a kind to every transport. */
export const KIND_MAP: Readonly<Record<ErrorKindName, KindMapping>> = Object.freeze({
  invalid_argument: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, sqlState: '08P01', sshDisconnect: 2 },
  unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, sqlState: '28P01', sshDisconnect: 14 },
  permission_denied: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, sqlState: '42501', sshDisconnect: 11 },
  not_found: { grpc: GrpcStatus.NOT_FOUND, http: 404, sqlState: '3D000', sshDisconnect: 7 },
  unavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503, sqlState: '08006', sshDisconnect: 7 },
  deadline_exceeded: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, sqlState: '57014', sshDisconnect: 11 },
  resource_exhausted: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429, sqlState: '53400', sshDisconnect: 12 },
  internal: { grpc: GrpcStatus.INTERNAL, http: 500, sqlState: 'XX000', sshDisconnect: 11 },
});

export interface WardErrorOptions {
  cause?: unknown;
  /** Overrides the kind's HTTP status (e.g. 413 for an oversized body). */
  httpStatus?: number;
  /** Overrides the kind's SQLSTATE (e.g. 57014 for a cancelled query). */
  sqlState?: string;
}

export class WardError extends Error {
  override readonly name = 'WardError';
  readonly code: string;
  readonly kind: ErrorKindName;
  readonly httpStatus: number;
  readonly sqlState: string;

  constructor(code: string, kind: ErrorKindName, message: string, options: WardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = kind;
    this.httpStatus = options.httpStatus ?? KIND_MAP[kind].http;
    this.sqlState = options.sqlState ?? KIND_MAP[kind].sqlState;
  }

  get grpcStatus(): GrpcStatus {
    return KIND_MAP[this.kind].grpc;
  }

  get sshDisconnect(): number {
    return KIND_MAP[this.kind].sshDisconnect;
  }

  /** The JSON body an HTTP client gets (also the OpenAI SDK's error shape). */
  toJSON(): { error: { code: string; type: ErrorKindName; message: string } } {
    return { error: { code: this.code, type: this.kind, message: this.message } };
  }
}

/** Converts anything thrown into a WardError without losing the original (`cause`). */
export function toWardError(err: unknown, code = 'ERR_INTERNAL', kind: ErrorKindName = 'internal'): WardError {
  if (err instanceof WardError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WardError(code, kind, message, { cause: err });
}

const KIND_TO_PROTO: Record<ErrorKindName, ErrorKind> = {
  invalid_argument: ErrorKind.INVALID_ARGUMENT,
  unauthenticated: ErrorKind.UNAUTHENTICATED,
  permission_denied: ErrorKind.PERMISSION_DENIED,
  not_found: ErrorKind.NOT_FOUND,
  unavailable: ErrorKind.UNAVAILABLE,
  deadline_exceeded: ErrorKind.DEADLINE_EXCEEDED,
  resource_exhausted: ErrorKind.RESOURCE_EXHAUSTED,
  internal: ErrorKind.INTERNAL,
};

const PROTO_TO_KIND = new Map<ErrorKind, ErrorKindName>(
  Object.entries(KIND_TO_PROTO).map(([name, value]) => [value, name as ErrorKindName]),
);

export function errorKindToProto(kind: ErrorKindName): ErrorKind {
  return KIND_TO_PROTO[kind];
}

/** Rebuilds a WardError from the tunnel's ErrorInfo (the peer's error, as it said it). */
export function errorFromInfo(info: ErrorInfo | undefined, fallback = 'the peer closed the session'): WardError {
  if (!info) return new WardError('ERR_TUNNEL_CLOSED', 'unavailable', fallback);
  return new WardError(info.code || 'ERR_INTERNAL', PROTO_TO_KIND.get(info.kind) ?? 'internal', info.message);
}
