import type { ServerResponse } from 'node:http';
import { toWardError, type WardError } from '@ward/protocol';

/**
 * Answers with ward's JSON error, shaped like OpenAI's (`{error:{message,type,code,param}}`)
 * so SDKs show it as their own typed error. Never includes a credential.
 */
export function sendJsonError(res: ServerResponse, error: unknown, extraHeaders: Record<string, string> = {}): void {
  const err: WardError = toWardError(error);
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = JSON.stringify({ error: { message: err.message, type: err.kind, code: err.code, param: null } });
  res.writeHead(err.httpStatus, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
