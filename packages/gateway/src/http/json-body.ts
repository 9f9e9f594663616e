import type { IncomingMessage } from 'node:http';
import { WardError } from '@ward/protocol';

/** Reads a request body up to `limit` bytes (ERR_API_BODY_TOO_LARGE, 413, past it). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      throw new WardError('ERR_API_BODY_TOO_LARGE', 'invalid_argument', `the body is over ${limit} bytes`, {
        httpStatus: 413,
      });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON object body for an API route; an empty body is `{}`. Anything else that is not a
 * JSON object is ERR_API_BAD_BODY, its message showing `expected` (e.g. an example body).
 */
export async function readJsonObject(
  req: IncomingMessage,
  limit = 16 * 1024,
  expected = 'a JSON object',
): Promise<Record<string, unknown>> {
  const text = (await readBody(req, limit)).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new WardError('ERR_API_BAD_BODY', 'invalid_argument', `send ${expected}`);
}
