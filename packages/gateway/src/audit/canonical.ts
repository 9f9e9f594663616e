import { WardError } from '@ward/protocol';
import { encodeJcs, NotJsonError } from './jcs.js';
import type { JsonObject, JsonValue } from './types.js';

export {
  CHECKPOINT_CONTEXT,
  type ChainFields,
  canonicalRecord,
  checkpointPayload,
  GENESIS_HASH,
  quote,
  recordHash,
  sha256Hex,
} from './jcs.js';

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, no whitespace,
 * strings and numbers exactly as ECMAScript `JSON.stringify` writes them. Keys whose value is
 * `undefined` are dropped (as JSON does); anything that is not JSON (NaN, Infinity, bigint,
 * functions, class instances such as Buffer or Date) is refused so the encoding stays
 * unambiguous for a verifier written in another language.
 */
export function canonicalJson(value: unknown): string {
  try {
    return encodeJcs(value);
  } catch (err) {
    if (err instanceof NotJsonError) {
      throw new WardError('ERR_AUDIT_INVALID', 'invalid_argument', `audit record: ${err.message}`);
    }
    throw err;
  }
}

export type { JsonObject, JsonValue };
