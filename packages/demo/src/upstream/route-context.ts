import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a route handler gets: the parsed JSON body (empty for GET), path params and the request's abort signal. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  body: Record<string, unknown>;
  params: Record<string, string>;
  /** Aborted when the client goes away; handlers stop writing then. */
  signal: AbortSignal;
  tokenDelayMs: number;
}
