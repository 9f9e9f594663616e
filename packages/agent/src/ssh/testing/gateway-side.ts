/**
 * Plays the gateway's part of an SSH session in tests: waits for SessionReady, sends channel
 * requests, stdin, window changes, signals and EOF, collects stdout/stderr, EOF and the exit
 * status, and returns credit at once, slowly, or only when told (`hold`/`release`).
 */
import {
  create,
  type MessageInitShape,
  type SessionChannel,
  SessionFrameSchema,
  type SshExit,
  type SshReady,
  type WardError,
} from '@ward/protocol';

export type SshExitStatus = SshExit['status'];

export class SshGatewaySide {
  readonly channel: SessionChannel;
  readonly ready: Promise<SshReady>;
  readonly closed: Promise<WardError | undefined>;
  /** Frame kinds in arrival order; consecutive data frames of one stream count once. */
  readonly events: string[] = [];
  readonly stdout: Buffer[] = [];
  readonly stderr: Buffer[] = [];
  exit: SshExitStatus | undefined;
  eof = false;
  /** SshData payload bytes received (both streams). */
  received = 0;
  /** Largest amount of payload ever received and not yet credited back. */
  maxUncredited = 0;
  /** Set to keep memory flat on big transfers: chunks go here instead of `stdout`. */
  onStdout: ((chunk: Buffer) => void) | undefined;
  #held = 0;
  #hold = false;
  #slow = false;
  #waiters = new Set<() => void>();

  constructor(channel: SessionChannel) {
    this.channel = channel;
    this.closed = new Promise((resolve) =>
      channel.onClose((reason) => {
        this.events.push(reason ? `close:${reason.code}` : 'close');
        this.#wake();
        resolve(reason);
      }),
    );
    this.ready = new Promise((resolve, reject) => {
      channel.onClose((reason) => reject(reason ?? new Error('closed before ready')));
      channel.onFrame((frame) => {
        const f = frame.frame;
        switch (f.case) {
          case 'ready':
            if (f.value.detail.case !== 'ssh') throw new Error(`unexpected ready ${f.value.detail.case}`);
            this.events.push('ready');
            resolve(f.value.detail.value);
            break;
          case 'sshData': {
            const chunk = Buffer.from(f.value.data);
            const event = `data:${f.value.stream}`;
            if (this.events.at(-1) !== event) this.events.push(event);
            if (f.value.stream === 1) this.stderr.push(chunk);
            else if (this.onStdout) this.onStdout(chunk);
            else this.stdout.push(chunk);
            this.received += chunk.byteLength;
            this.#held += chunk.byteLength;
            this.maxUncredited = Math.max(this.maxUncredited, this.#held);
            if (this.#slow) setImmediate(() => this.#credit());
            else if (!this.#hold) this.#credit();
            break;
          }
          case 'sshEof':
            this.events.push('eof');
            this.eof = true;
            break;
          case 'sshExit':
            this.events.push('exit');
            this.exit = f.value.status;
            break;
          default:
            throw new Error(`unexpected frame ${f.case} from the agent`);
        }
        this.#wake();
      });
    });
    // Callers that only look at `closed` must not see an unhandled rejection.
    this.ready.catch(() => {});
  }

  get stdoutText(): string {
    return Buffer.concat(this.stdout).toString('utf8');
  }

  get stderrText(): string {
    return Buffer.concat(this.stderr).toString('utf8');
  }

  /** Stops returning credit (a client that does not read). */
  hold(): void {
    this.#hold = true;
  }

  /** Returns what is held and credits each later frame one event-loop turn after it arrives. */
  slow(): void {
    this.#hold = false;
    this.#slow = true;
    this.#credit();
  }

  release(): void {
    this.#hold = false;
    this.#slow = false;
    this.#credit();
  }

  #credit(): void {
    if (this.#hold) return;
    const n = this.#held;
    this.#held = 0;
    if (n > 0) this.channel.delivered(n);
  }

  #wake(): void {
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once `check` holds; rejects if the session closes first. */
  until(what: string, check: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const test = () => {
        if (check()) {
          this.#waiters.delete(test);
          resolve();
        } else if (this.channel.closed) {
          this.#waiters.delete(test);
          reject(new Error(`session closed (${this.channel.closeReason?.code ?? 'normally'}) before ${what}`));
        }
      };
      this.#waiters.add(test);
      test();
    });
  }

  untilStdout(pattern: RegExp): Promise<void> {
    return this.until(`stdout matched ${pattern}`, () => pattern.test(this.stdoutText));
  }

  #request(request: MessageInitShape<typeof SessionFrameSchema>): void {
    this.channel.send(create(SessionFrameSchema, request));
  }

  pty(term: string, cols: number, rows: number): void {
    this.#request({
      frame: { case: 'sshRequest', value: { request: { case: 'pty', value: { term, cols, rows } } } },
    });
  }

  env(name: string, value: string): void {
    this.#request({ frame: { case: 'sshRequest', value: { request: { case: 'env', value: { name, value } } } } });
  }

  shell(): void {
    this.#request({ frame: { case: 'sshRequest', value: { request: { case: 'shell', value: {} } } } });
  }

  exec(command: string): void {
    this.#request({ frame: { case: 'sshRequest', value: { request: { case: 'exec', value: { command } } } } });
  }

  subsystem(name: string): void {
    this.#request({ frame: { case: 'sshRequest', value: { request: { case: 'subsystem', value: { name } } } } });
  }

  write(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return this.channel.sendData(bytes, (chunk) =>
      create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: chunk, stream: 0 } } }),
    );
  }

  sendEof(): void {
    this.#request({ frame: { case: 'sshEof', value: {} } });
  }

  windowChange(cols: number, rows: number): void {
    this.#request({ frame: { case: 'sshWindowChange', value: { cols, rows } } });
  }

  signal(name: string): void {
    this.#request({ frame: { case: 'sshSignal', value: { name } } });
  }
}
