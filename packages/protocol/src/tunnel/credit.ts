/**
 * Per-session credit, each direction (RFC 9113 §5.2 in spirit, counted in payload bytes).
 * The sender may have at most `window` unacknowledged bytes in flight; the receiver returns
 * credit only after it has delivered bytes downstream (its socket accepted them). A slow
 * reader therefore holds back its own session only, and nobody buffers more than the window.
 */
export class SendWindow {
  #available: number;
  #waiters: Array<() => void> = [];

  constructor(window: number) {
    this.#available = window;
  }

  get available(): number {
    return this.#available;
  }

  /** Takes up to `wanted` bytes of credit; returns how many were granted (maybe 0). */
  take(wanted: number): number {
    const granted = Math.min(wanted, this.#available);
    this.#available -= granted;
    return granted;
  }

  grant(bytes: number): void {
    this.#available += bytes;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when some credit is available (or the signal aborts). */
  waitForCredit(signal: AbortSignal): Promise<void> {
    if (this.#available > 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

export class ReceiveWindow {
  readonly window: number;
  #outstanding = 0;
  #pendingGrant = 0;

  constructor(window: number) {
    this.window = window;
  }

  /** Bytes received and not yet delivered downstream. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Records `bytes` received; false if the peer exceeded the credit it was given. */
  receive(bytes: number): boolean {
    this.#outstanding += bytes;
    return this.#outstanding <= this.window;
  }

  /**
   * Records `bytes` delivered downstream. Returns the credit to send back now, or 0 when it is
   * worth batching: updates go out once a quarter of the window is due, so a bulk transfer costs
   * a handful of WindowUpdate frames per window, and a chatty session (one small query, one
   * small answer) none per message. This cannot stall a sender: one that is out of credit has a
   * whole window outstanding here, and delivering a quarter of it returns credit.
   */
  delivered(bytes: number): number {
    this.#outstanding -= bytes;
    this.#pendingGrant += bytes;
    if (this.#pendingGrant >= this.window / 4) {
      const grant = this.#pendingGrant;
      this.#pendingGrant = 0;
      return grant;
    }
    return 0;
  }
}
