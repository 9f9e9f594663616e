import { WardError } from '../errors.js';
import type { SessionFrame } from '../gen/ward/tunnel/v1/tunnel_pb.js';

/** The error a session ends with when its peer sends a frame that has no place there. */
export function unexpectedFrame(frame: SessionFrame, where: string): WardError {
  return new WardError(
    'ERR_TUNNEL_MALFORMED_FRAME',
    'invalid_argument',
    `unexpected ${frame.frame.case ?? 'empty'} frame in ${where}`,
  );
}
