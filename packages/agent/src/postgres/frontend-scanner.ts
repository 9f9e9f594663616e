/**
 * Follows message boundaries in the frontend byte stream the gateway relays, without buffering
 * bodies, so the session knows whether the client said Terminate ('X') before the backend hung
 * up: that close is a normal end, any other is ERR_PG_BACKEND_CLOSED.
 */
const TERMINATE = 0x58; // X

export class FrontendScanner {
  #header = Buffer.alloc(5);
  #headerFill = 0;
  #skip = 0;
  #lastCode = 0;
  #lost = false;

  /** True once a whole Terminate message has passed. */
  get terminated(): boolean {
    return !this.#lost && this.#lastCode === TERMINATE && this.#skip === 0 && this.#headerFill === 0;
  }

  feed(bytes: Uint8Array): void {
    let offset = 0;
    while (offset < bytes.byteLength && !this.#lost) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, bytes.byteLength - offset);
        this.#skip -= n;
        offset += n;
        continue;
      }
      const n = Math.min(5 - this.#headerFill, bytes.byteLength - offset);
      this.#header.set(bytes.subarray(offset, offset + n), this.#headerFill);
      this.#headerFill += n;
      offset += n;
      if (this.#headerFill < 5) return;
      this.#headerFill = 0;
      const length = this.#header.readUInt32BE(1);
      // The backend will reject such bytes itself; we only stop claiming to know where we are.
      if (length < 4) this.#lost = true;
      this.#lastCode = this.#header[0] as number;
      this.#skip = length - 4;
    }
  }
}
