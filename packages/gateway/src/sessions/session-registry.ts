import type { WardError } from '@ward/protocol';
import type { Identity } from '../identity/index.js';
import type { Protocol } from '../recording/index.js';

/**
 * What every protocol session (Postgres, SSH, HTTP) exposes to the rest of the gateway, so that
 * policy, expiry and shutdown treat them the same way.
 */
export interface LiveSession {
  readonly id: string;
  readonly connection: string;
  readonly protocol: Protocol;
  readonly identity: Identity;
  readonly source: string;
  readonly startedAt: Date;
  /** What the session was authorized for (`exec`: one SSH command or a file transfer); default `connect`. */
  readonly accessAction?: 'connect' | 'exec' | undefined;
  /** Ends the session, telling the client why in its own protocol. */
  terminate(reason: WardError): void;
}

/** Open sessions, for listing and for ending them by rule (grant expired, store down, shutdown). */
export class SessionRegistry {
  readonly #live = new Map<string, LiveSession>();
  readonly #onAdd: ((session: LiveSession) => void) | undefined;

  /** `onAdd` sees each session as it is added (access control re-checks it there). */
  constructor(options: { onAdd?: (session: LiveSession) => void } = {}) {
    this.#onAdd = options.onAdd;
  }

  /** Adds a session; the returned function removes it. */
  add(session: LiveSession): () => void {
    this.#live.set(session.id, session);
    this.#onAdd?.(session);
    return () => {
      if (this.#live.get(session.id) === session) this.#live.delete(session.id);
    };
  }

  get size(): number {
    return this.#live.size;
  }

  list(): LiveSession[] {
    return [...this.#live.values()];
  }

  /** Ends every session that matches; returns how many. */
  terminateWhere(match: (s: LiveSession) => boolean, reason: WardError): number {
    let n = 0;
    for (const s of [...this.#live.values()]) {
      if (!match(s)) continue;
      s.terminate(reason);
      n++;
    }
    return n;
  }
}
