/** Something whose running query can be cancelled (a Postgres session). */
export interface Cancellable {
  cancel(): void;
}

/**
 * Maps the BackendKeyData ward gave each client to its session. A CancelRequest arrives on a
 * new, unauthenticated connection; knowing the random 32-bit secret is what makes its sender the
 * session's owner (as in Postgres itself). The real backend key never leaves the agent.
 */
export class CancelRegistry {
  readonly #sessions = new Map<string, Cancellable>();
  readonly #onCancel: ((found: boolean, source: string) => void) | undefined;

  constructor(onCancel?: (found: boolean, source: string) => void) {
    this.#onCancel = onCancel;
  }

  register(processId: number, secretKey: number, session: Cancellable): void {
    this.#sessions.set(`${processId}:${secretKey}`, session);
  }

  unregister(processId: number, secretKey: number): void {
    this.#sessions.delete(`${processId}:${secretKey}`);
  }

  /** Cancels the matching session's query; an unknown key is ignored, as Postgres does. */
  cancel(processId: number, secretKey: number, source: string): boolean {
    const session = this.#sessions.get(`${processId}:${secretKey}`);
    session?.cancel();
    this.#onCancel?.(session !== undefined, source);
    return session !== undefined;
  }
}
