import { WardError } from '@ward/protocol';
import type { FrontendMessages } from './codec/index.js';
import type { PostgresSession } from './postgres-session.js';

export type PolicyDecision = { allow: true } | { allow: false; error: WardError; rule: string };

/**
 * The hook where guardrails and approvals plug into a Postgres session: it sees every client
 * message before the backend does, and may hold it (return a promise) or refuse it.
 */
export interface PostgresPolicy {
  /** Recorded as the rule of every allowed statement. */
  readonly name: string;
  check(
    message: FrontendMessages.TaggedFrontendMessage,
    session: PostgresSession,
  ): PolicyDecision | Promise<PolicyDecision>;
}

const ALLOW: PolicyDecision = { allow: true };

/**
 * The default: everything is allowed except the fast-path FunctionCall, which calls a function
 * by OID with no SQL text that any rule could check.
 */
export const DEFAULT_POSTGRES_POLICY: PostgresPolicy = {
  name: 'default',
  check(message) {
    if (message.type === 'FunctionCall') {
      return {
        allow: false,
        rule: 'pg.function-call',
        error: new WardError(
          'ERR_PG_FUNCTION_CALL_REFUSED',
          'permission_denied',
          'fast-path function calls are refused: they carry no SQL text to check',
        ),
      };
    }
    return ALLOW;
  },
};
