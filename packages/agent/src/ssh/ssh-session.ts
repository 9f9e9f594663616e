import { readFile } from 'node:fs/promises';
import {
  create,
  type SessionChannel,
  type SessionFrame,
  SessionFrameSchema,
  type SshChannelRequest,
  type SshPty,
  type SshStart,
  type SshWindowChange,
  toWardError,
  WardError,
} from '@ward/protocol';
import {
  type AuthenticationType,
  Client,
  type ClientChannel,
  type ConnectConfig,
  type PseudoTtyOptions,
  type ServerHostKeyAlgorithm,
  type TerminalModes,
} from 'ssh2';
import {
  checkKnownHosts,
  fingerprintMatches,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  parseFingerprint,
  parseKnownHosts,
  sha256Fingerprint,
} from './host-key.js';
import { DEFAULT_SSH_CONNECT_TIMEOUT_MS, DEFAULT_SSH_KEEPALIVE_INTERVAL_MS, type SshBackend } from './ssh-backend.js';

/** `env` requests accepted before the channel opens (OpenSSH clients send a handful). */
export const MAX_SSH_ENV_REQUESTS = 256;
/** Signals kept while the channel opens (a Ctrl-C typed at once); more are dropped. */
const MAX_PENDING_SIGNALS = 16;
/** Unanswered keepalives before the host is declared gone. */
const KEEPALIVE_COUNT_MAX = 3;
/** Host key algorithms ssh2 can verify, to keep known_hosts preferences to what it speaks. */
const SUPPORTED_HOST_KEY_ALGORITHMS = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
  'ssh-dss',
]);

const TRACE = (process.env.WARD_TRACE ?? '').split(',').includes('ssh');
function trace(message: string): void {
  if (TRACE) process.stderr.write(`[ward ssh] ${message}\n`);
}

type ChannelKind = 'shell' | 'exec' | 'subsystem';
type OpenRequest = { kind: 'shell' } | { kind: 'exec'; command: string } | { kind: 'subsystem'; name: string };

type Phase = 'connecting' | 'requests' | 'opening' | 'open' | 'done';

interface HostKeyPolicy {
  /** Host key algorithms to offer first (known_hosts types), or undefined for ssh2's defaults. */
  algorithms?: string[];
  /** Returns the refusal for a key, or undefined to accept it. */
  check(keyBlob: Buffer): WardError | undefined;
}

const dataFrame = (stream: 0 | 1) => (data: Uint8Array) =>
  create(SessionFrameSchema, { frame: { case: 'sshData', value: { data, stream } } });

/**
 * Serves one SSH session for the gateway (docs: ./README.md, the contract:
 * briefs/ssh-contract.md): connects to the host with the agent's key or password, checks the
 * host key against the pinned fingerprint or known_hosts before authentication, answers
 * `SessionReady{ssh{hostKeyFingerprint}}`, then opens one session channel (shell, exec or
 * subsystem, after any pty/env requests) and relays it under the tunnel's credit window:
 * stdout/stderr as `SshData{stream 0/1}`, then `SshEof`, `SshExit`, `SessionClose`. Every
 * failure ends this session only, with an `ERR_SSH_*` code; the key and password never appear
 * in a message.
 *
 * @example
 * serveSshSession(channel, start.target.value, {
 *   name: 'web-1', host: '10.0.0.12', port: 22, user: 'deploy',
 *   privateKey: await resolveSecret(ref),
 *   hostKey: { fingerprint: 'SHA256:uO4p2BJ0xNm4w2o9ZrWn3w8Qd7w8cPq5yVb0n7z1XkA' },
 * });
 */
export function serveSshSession(channel: SessionChannel, start: SshStart, backend: SshBackend): void {
  startSshSession(channel, start, backend);
}

/** Same as `serveSshSession`, returning the session so tests can read its buffer figures. */
export function startSshSession(channel: SessionChannel, start: SshStart, backend: SshBackend): SshSession {
  const session = new SshSession(channel, start, backend);
  session.start();
  return session;
}

export class SshSession {
  readonly #channel: SessionChannel;
  readonly #backend: SshBackend;
  readonly #user: string;
  readonly #client = new Client();
  #phase: Phase = 'connecting';
  #pty: SshPty | undefined;
  readonly #env: Record<string, string> = {};
  #envCount = 0;
  #request: OpenRequest | undefined;
  /** Stdin that arrived before the channel opened; its credit returns once delivered. */
  #pendingStdin: Uint8Array[] = [];
  #pendingEof = false;
  #pendingWindow: SshWindowChange | undefined;
  #pendingSignals: string[] = [];
  #stream: ClientChannel | undefined;
  #exit: { case: 'code'; value: number } | { case: 'signal'; value: string } | undefined;
  #stdoutEnded = false;
  #stderrEnded = false;
  #streamClosed = false;
  /** Why the connection to the host ended before the session's channel did. */
  #connectionLost: WardError | undefined;
  /** Bytes taken from the SSH channel and not yet handed to the tunnel. */
  #piped = 0;
  #maxBufferedBytes = 0;

  constructor(channel: SessionChannel, start: SshStart, backend: SshBackend) {
    this.#channel = channel;
    this.#backend = backend;
    this.#user = start.user || backend.user;
  }

  /**
   * Bytes of backend output the agent holds for this session right now: what ssh2 has read
   * from the SSH channel (stdout and stderr) plus what waits for tunnel credit.
   */
  get bufferedBytes(): number {
    const stream = this.#stream;
    if (!stream) return this.#piped;
    return stream.readableLength + stream.stderr.readableLength + this.#piped;
  }

  /** Largest `bufferedBytes` seen at each chunk the session handled. */
  get maxBufferedBytes(): number {
    return this.#maxBufferedBytes;
  }

  start(): void {
    const channel = this.#channel;
    const backend = this.#backend;
    // ssh2 emits 'error' for every connection failure; without a listener it would throw.
    this.#client.on('error', (err: Error & { level?: string }) => this.#onConnectionError(err));
    this.#client.on('close', () => this.#onConnectionClose());
    channel.onClose((reason) => this.#onChannelClose(reason));
    channel.onFrame((frame) => this.#onFrame(frame));

    const timeoutMs = backend.connectTimeoutMs ?? DEFAULT_SSH_CONNECT_TIMEOUT_MS;
    const attempt = new AbortController();
    const timer = setTimeout(
      () =>
        attempt.abort(
          new WardError(
            'ERR_SSH_BACKEND_UNREACHABLE',
            'unavailable',
            `host "${backend.name}" at ${backend.host}:${backend.port} did not complete the SSH login within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    channel.onClose(() => {
      clearTimeout(timer);
      attempt.abort(new WardError('ERR_TUNNEL_CLOSED', 'unavailable', 'the session ended during the SSH login'));
    });

    this.#connect(attempt.signal).then(
      (fingerprint) => {
        clearTimeout(timer);
        if (channel.closed) {
          this.#phase = 'done';
          this.#client.end();
          return;
        }
        this.#phase = 'requests';
        channel.send(
          create(SessionFrameSchema, {
            frame: { case: 'ready', value: { detail: { case: 'ssh', value: { hostKeyFingerprint: fingerprint } } } },
          }),
        );
        trace(`"${backend.name}": logged in as "${this.#user}", host key ${fingerprint}`);
        if (this.#request) this.#open(this.#request);
      },
      (err: unknown) => {
        clearTimeout(timer);
        this.#client.destroy();
        const error = this.#redact(toWardError(err, 'ERR_SSH_BACKEND_PROTOCOL', 'unavailable'));
        trace(`"${backend.name}": session start failed: ${error.code} ${error.message}`);
        this.#phase = 'done';
        channel.close(error);
      },
    );
  }

  // ------------------------------------------------------------------ connect and log in

  async #connect(signal: AbortSignal): Promise<string> {
    const backend = this.#backend;
    const policy = await this.#hostKeyPolicy();
    signal.throwIfAborted();
    const methods: AuthenticationType[] = [];
    if (backend.privateKey) methods.push('publickey');
    if (backend.password) methods.push('password');
    if (methods.length === 0) {
      throw new WardError(
        'ERR_SSH_BACKEND_AUTH',
        'unavailable',
        `host "${backend.name}" has neither a private key nor a password configured`,
      );
    }

    return new Promise<string>((resolve, reject) => {
      const client = this.#client;
      let tcpConnected = false;
      let authenticating = false;
      let hostKeyRefusal: WardError | undefined;
      let fingerprint = '';
      let settled = false;
      const finish = (error: WardError | undefined) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        client.off('connect', onConnect);
        client.off('handshake', onHandshake);
        client.off('ready', onReady);
        client.off('error', onError);
        client.off('close', onClose);
        if (error) reject(error);
        else resolve(fingerprint);
      };
      const onAbort = () => finish(toWardError(signal.reason, 'ERR_SSH_BACKEND_UNREACHABLE', 'unavailable'));
      const onConnect = () => {
        tcpConnected = true;
      };
      const onHandshake = () => {
        authenticating = true;
      };
      const onReady = () => finish(undefined);
      const onError = (err: Error & { level?: string }) =>
        finish(hostKeyRefusal ?? this.#classify(err, { tcpConnected, authenticating }));
      const onClose = () =>
        finish(
          hostKeyRefusal ??
            (tcpConnected
              ? new WardError(
                  'ERR_SSH_BACKEND_PROTOCOL',
                  'unavailable',
                  `host "${backend.name}" at ${backend.host}:${backend.port} closed the connection during the SSH ${authenticating ? 'login' : 'handshake'}`,
                )
              : new WardError(
                  'ERR_SSH_BACKEND_UNREACHABLE',
                  'unavailable',
                  `host "${backend.name}" at ${backend.host}:${backend.port} could not be reached`,
                )),
        );
      signal.addEventListener('abort', onAbort, { once: true });
      client.on('connect', onConnect);
      client.on('handshake', onHandshake);
      client.once('ready', onReady);
      client.on('error', onError);
      client.on('close', onClose);

      const config: ConnectConfig = {
        host: backend.host,
        port: backend.port,
        username: this.#user,
        ident: 'ward-agent',
        // The session's own timer covers the whole login; ssh2's would only cover part of it.
        readyTimeout: 0,
        keepaliveInterval: backend.keepaliveIntervalMs ?? DEFAULT_SSH_KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        // Only the methods configured, key first: no 'none' probe, no keyboard-interactive.
        authHandler: methods,
        // Runs during key exchange, before any authentication request is sent (RFC 4253 §8).
        hostVerifier: (key: Buffer): boolean => {
          fingerprint = sha256Fingerprint(key);
          hostKeyRefusal = policy.check(key);
          return hostKeyRefusal === undefined;
        },
      };
      if (backend.privateKey) config.privateKey = backend.privateKey;
      if (backend.password) config.password = backend.password;
      if (policy.algorithms) {
        config.algorithms = { serverHostKey: policy.algorithms as ServerHostKeyAlgorithm[] };
      }
      try {
        client.connect(config);
      } catch (err) {
        // ssh2 parses the key synchronously; its message names the problem, never the key.
        finish(
          new WardError(
            'ERR_SSH_BACKEND_AUTH',
            'unavailable',
            `the private key configured for host "${backend.name}" cannot be used: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          ),
        );
      }
    });
  }

  async #hostKeyPolicy(): Promise<HostKeyPolicy> {
    const backend = this.#backend;
    const where = `host "${backend.name}" at ${backend.host}:${backend.port}`;
    const describe = (key: Buffer) => `${keyTypeOf(key) ?? 'unknown-type'} ${sha256Fingerprint(key)}`;
    const mismatch = (message: string) => new WardError('ERR_SSH_HOST_KEY_MISMATCH', 'unavailable', message);

    if ('fingerprint' in backend.hostKey) {
      const pinned = backend.hostKey.fingerprint;
      if (!parseFingerprint(pinned)) {
        return {
          check: () =>
            mismatch(
              `the pinned host key fingerprint of ${where} is not a "SHA256:<43 base64 characters>" value; no key can match it (get it with ssh-keygen -l -E sha256 -f <host key>.pub)`,
            ),
        };
      }
      return {
        check: (key) =>
          fingerprintMatches(pinned, key)
            ? undefined
            : mismatch(
                `${where} presented host key ${describe(key)}, not the pinned ${pinned.trim()}; refused before authentication (possible man-in-the-middle, or the host was re-keyed)`,
              ),
      };
    }

    const path = backend.hostKey.knownHosts;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new WardError(
        'ERR_SSH_KNOWN_HOSTS_UNREADABLE',
        'unavailable',
        `the known_hosts file of ${where} (${path}) cannot be read: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const entries = parseKnownHosts(text);
    const name = knownHostsName(backend.host, backend.port);
    const algorithms = hostKeyAlgorithmsFor(knownKeyTypes(entries, backend.host, backend.port)).filter((a) =>
      SUPPORTED_HOST_KEY_ALGORITHMS.has(a),
    );
    return {
      ...(algorithms.length > 0 ? { algorithms } : {}),
      check: (key) => {
        const verdict = checkKnownHosts(entries, backend.host, backend.port, key);
        switch (verdict.result) {
          case 'match':
            return undefined;
          case 'revoked':
            return mismatch(`${where} presented host key ${describe(key)}, marked @revoked in ${path}:${verdict.line}`);
          case 'mismatch':
            return mismatch(
              `${where} presented host key ${describe(key)}, which is not the ${verdict.knownTypes.join('/')} key listed for ${name} in ${path}; refused before authentication (possible man-in-the-middle, or the host was re-keyed)`,
            );
          case 'unknown':
            return mismatch(
              `${name} is not in ${path}; ${where} presented host key ${describe(key)}. Check it out of band, then add it (ssh-keyscan -p ${backend.port} ${backend.host} >> ${path})`,
            );
        }
      },
    };
  }

  #classify(err: Error & { level?: string }, at: { tcpConnected: boolean; authenticating: boolean }): WardError {
    const backend = this.#backend;
    const where = `host "${backend.name}" at ${backend.host}:${backend.port}`;
    switch (err.level) {
      case 'client-socket':
      case 'client-dns':
        if (!at.tcpConnected) {
          return new WardError(
            'ERR_SSH_BACKEND_UNREACHABLE',
            'unavailable',
            `${where} could not be reached: ${err.message}`,
            {
              cause: err,
            },
          );
        }
        break;
      case 'client-timeout':
        return new WardError('ERR_SSH_BACKEND_UNREACHABLE', 'unavailable', `${where}: ${err.message}`, { cause: err });
      case 'client-authentication':
        return new WardError(
          'ERR_SSH_BACKEND_AUTH',
          'unavailable',
          `${where} refused the login of "${this.#user}" with the configured ${backend.privateKey ? 'key' : ''}${backend.privateKey && backend.password ? ' and ' : ''}${backend.password ? 'password' : ''}: ${err.message}`,
          { cause: err },
        );
    }
    return new WardError(
      'ERR_SSH_BACKEND_PROTOCOL',
      'unavailable',
      `${where} failed during the SSH ${at.authenticating ? 'login' : 'handshake'}: ${err.message}`,
      { cause: err },
    );
  }

  /** Never lets a secret out in a message, even if a server or library echoes it back. */
  #redact(error: WardError): WardError {
    const secrets: string[] = [];
    const { privateKey, password } = this.#backend;
    if (password) secrets.push(password);
    if (privateKey) {
      secrets.push(privateKey);
      // A fragment is as bad as the whole key: every body line of the PEM/OpenSSH text.
      for (const line of privateKey.split(/\r?\n/)) if (line.trim().length >= 16) secrets.push(line.trim());
    }
    let message = error.message;
    for (const secret of secrets) if (message.includes(secret)) message = message.replaceAll(secret, '[redacted]');
    return message === error.message ? error : new WardError(error.code, error.kind, message);
  }

  // ------------------------------------------------------------------ frames from the gateway

  #onFrame(frame: SessionFrame): void {
    if (this.#phase === 'done') return;
    switch (frame.frame.case) {
      case 'sshRequest':
        this.#onRequest(frame.frame.value);
        return;
      case 'sshData': {
        const { data, stream } = frame.frame.value;
        if (stream !== 0) {
          this.#malformed(`SshData for stream ${stream} from the gateway (only 0, stdin)`);
          return;
        }
        if (this.#stream) this.#channel.deliverTo(this.#stream, data);
        else this.#pendingStdin.push(data);
        return;
      }
      case 'sshEof':
        if (this.#stream) this.#stream.end();
        else this.#pendingEof = true;
        return;
      case 'sshWindowChange': {
        const change = frame.frame.value;
        if (this.#stream) this.#stream.setWindow(change.rows, change.cols, change.heightPx, change.widthPx);
        else if (this.#pty && !this.#request) {
          // Not open yet: the pty starts at the new size.
          this.#pty.cols = change.cols;
          this.#pty.rows = change.rows;
          this.#pty.widthPx = change.widthPx;
          this.#pty.heightPx = change.heightPx;
        } else this.#pendingWindow = change;
        return;
      }
      case 'sshSignal': {
        const name = frame.frame.value.name;
        if (this.#stream) this.#signal(this.#stream, name);
        else if (this.#pendingSignals.length < MAX_PENDING_SIGNALS) this.#pendingSignals.push(name);
        else trace(`"${this.#backend.name}": signal ${name} before the channel opened, dropped`);
        return;
      }
      default:
        this.#malformed(`unexpected ${frame.frame.case ?? 'empty frame'} in an SSH session`);
    }
  }

  #signal(stream: ClientChannel, name: string): void {
    try {
      stream.signal(name);
    } catch (err) {
      // RFC 4254 §6.9: a receiver ignores signals it does not know; do the same for ssh2's list.
      trace(`"${this.#backend.name}": signal ${name} not sent: ${(err as Error).message}`);
    }
  }

  #onRequest(request: SshChannelRequest): void {
    const r = request.request;
    if (r.case === undefined) {
      this.#malformed('an empty SshChannelRequest');
      return;
    }
    if (this.#request) {
      this.#malformed(`SshChannelRequest{${r.case}} after the ${this.#request.kind} request`);
      return;
    }
    switch (r.case) {
      case 'pty':
        this.#pty = r.value;
        return;
      case 'env':
        if (r.value.name === '') {
          this.#malformed('an env request without a name');
          return;
        }
        if (!(r.value.name in this.#env) && ++this.#envCount > MAX_SSH_ENV_REQUESTS) {
          this.#malformed(`more than ${MAX_SSH_ENV_REQUESTS} env requests`);
          return;
        }
        this.#env[r.value.name] = r.value.value;
        return;
      case 'shell':
        this.#request = { kind: 'shell' };
        break;
      case 'exec':
        this.#request = { kind: 'exec', command: r.value.command };
        break;
      case 'subsystem':
        if (r.value.name === '') {
          this.#malformed('a subsystem request without a name');
          return;
        }
        this.#request = { kind: 'subsystem', name: r.value.name };
        break;
    }
    if (this.#phase === 'requests') this.#open(this.#request);
  }

  #malformed(message: string): void {
    this.#phase = 'done';
    this.#channel.close(new WardError('ERR_TUNNEL_MALFORMED_FRAME', 'invalid_argument', message));
  }

  // ------------------------------------------------------------------ the session channel

  #open(request: OpenRequest): void {
    this.#phase = 'opening';
    const pty = this.#pty ? ptyOptions(this.#pty) : undefined;
    const env = this.#envCount > 0 ? { env: { ...this.#env } } : {};
    const done = (err: Error | undefined, stream: ClientChannel) => {
      if (this.#phase !== 'opening') {
        stream?.destroy();
        return;
      }
      if (err) {
        this.#refused(request.kind, err);
        return;
      }
      this.#relay(stream);
    };
    try {
      switch (request.kind) {
        case 'shell':
          this.#client.shell(pty ?? false, env, done);
          return;
        case 'exec':
          this.#client.exec(request.command, { ...env, ...(pty ? { pty } : {}) }, done);
          return;
        case 'subsystem':
          // RFC 4254 §6.5 allows env before a subsystem, but ssh2's subsys() cannot send it;
          // sftp clients only send LANG/LC_*, which internal-sftp ignores.
          this.#client.subsys(request.name, done);
          return;
      }
    } catch (err) {
      // ssh2 throws 'Not connected' when the connection dropped in between.
      this.#refused(request.kind, err as Error);
    }
  }

  #refused(kind: ChannelKind, err: Error): void {
    const channel = this.#channel;
    const backend = this.#backend;
    this.#phase = 'done';
    if (this.#connectionLost) {
      channel.close(this.#connectionLost);
      return;
    }
    const what = kind === 'exec' ? 'command' : kind === 'subsystem' ? `subsystem "${this.#requestName()}"` : 'shell';
    const error = new WardError(
      'ERR_SSH_CHANNEL_REFUSED',
      'unavailable',
      `host "${backend.name}" refused to start the ${what}${this.#pty ? ' (with a pty)' : ''}: ${err.message}`,
      { cause: err },
    );
    trace(error.message);
    // As OpenSSH's client does when a channel request fails: a line on stderr, status 255.
    channel
      .sendData(Buffer.from(`ward: ${error.message}\r\n`), dataFrame(1))
      .then(() => {
        channel.send(
          create(SessionFrameSchema, { frame: { case: 'sshExit', value: { status: { case: 'code', value: 255 } } } }),
        );
        channel.close(error);
      })
      .catch(() => {});
    this.#client.end();
  }

  #requestName(): string {
    return this.#request?.kind === 'subsystem' ? this.#request.name : '';
  }

  #relay(stream: ClientChannel): void {
    const channel = this.#channel;
    this.#stream = stream;
    this.#phase = 'open';

    stream.on('exit', (code: number | null, signal?: string) => {
      if (typeof code === 'number') this.#exit = { case: 'code', value: code };
      else if (signal) this.#exit = { case: 'signal', value: signal.replace(/^SIG/, '') };
    });
    const wrap = (which: 0 | 1) => {
      const frame = dataFrame(which);
      return (data: Uint8Array) => {
        this.#piped -= data.byteLength;
        return frame(data);
      };
    };
    const inspect = (chunk: Buffer) => {
      this.#piped += chunk.byteLength;
      this.#maxBufferedBytes = Math.max(this.#maxBufferedBytes, this.bufferedBytes);
    };
    channel.pipeFrom(stream, wrap(0), inspect);
    channel.pipeFrom(stream.stderr, wrap(1), inspect);
    stream.on('end', () => {
      this.#stdoutEnded = true;
      this.#afterEnd();
    });
    stream.stderr.on('end', () => {
      this.#stderrEnded = true;
      this.#afterEnd();
    });
    // ssh2 emits 'close' on a client channel only after its stdout has ended.
    stream.on('close', () => {
      this.#streamClosed = true;
      this.#maybeFinish();
    });

    const stdin = this.#pendingStdin;
    this.#pendingStdin = [];
    for (const data of stdin) channel.deliverTo(stream, data);
    if (this.#pendingEof) stream.end();
    const change = this.#pendingWindow;
    if (change) stream.setWindow(change.rows, change.cols, change.heightPx, change.widthPx);
    for (const name of this.#pendingSignals) this.#signal(stream, name);
    this.#pendingSignals = [];
  }

  #afterEnd(): void {
    if (!this.#stdoutEnded || !this.#stderrEnded) return;
    // Queued behind the output already handed to the channel, so it never overtakes it.
    this.#channel.send(create(SessionFrameSchema, { frame: { case: 'sshEof', value: {} } }));
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#phase !== 'open' || !this.#stdoutEnded || !this.#stderrEnded || !this.#streamClosed) return;
    this.#phase = 'done';
    const channel = this.#channel;
    if (this.#connectionLost && !this.#exit) {
      // Output that was already read still goes out; the error says the end was not clean.
      channel.close(this.#connectionLost);
      this.#client.destroy();
      return;
    }
    const exit = this.#exit;
    if (exit) channel.send(create(SessionFrameSchema, { frame: { case: 'sshExit', value: { status: exit } } }));
    channel.close();
    this.#client.end();
  }

  // ------------------------------------------------------------------ connection events

  #onConnectionError(err: Error & { level?: string }): void {
    if (this.#phase === 'connecting' || this.#phase === 'done' || this.#connectionLost) return;
    const backend = this.#backend;
    this.#connectionLost = new WardError(
      'ERR_SSH_BACKEND_CLOSED',
      'unavailable',
      `the connection to host "${backend.name}" failed: ${err.message}`,
      { cause: err },
    );
  }

  #onConnectionClose(): void {
    if (this.#phase === 'connecting' || this.#phase === 'done') return;
    // ssh2 closes the channel right after this event; a CHANNEL_CLOSE that arrived first
    // already marked it closed, which is a normal end.
    const incoming = (this.#stream as unknown as { incoming?: { state?: string } } | undefined)?.incoming;
    if (this.#stream && incoming?.state === 'closed') return;
    this.#connectionLost ??= new WardError(
      'ERR_SSH_BACKEND_CLOSED',
      'unavailable',
      `host "${this.#backend.name}" closed the connection before the session ended`,
    );
    if (this.#phase === 'requests') {
      this.#phase = 'done';
      this.#channel.close(this.#connectionLost);
    }
  }

  #onChannelClose(reason: WardError | undefined): void {
    if (this.#phase === 'connecting') return;
    this.#phase = 'done';
    if (reason) {
      trace(`"${this.#backend.name}": session closed: ${reason.code}`);
      this.#client.destroy();
    } else this.#client.end();
  }
}

function ptyOptions(pty: SshPty): PseudoTtyOptions {
  const options: PseudoTtyOptions = { cols: pty.cols, rows: pty.rows, width: pty.widthPx, height: pty.heightPx };
  if (pty.term) options.term = pty.term;
  // The client's encoded terminal modes (RFC 4254 §8) go to the host as they are; ssh2 sends a
  // Buffer unchanged although its types only name the object form.
  if (pty.modes.byteLength > 0) options.modes = Buffer.from(pty.modes) as unknown as TerminalModes;
  return options;
}
