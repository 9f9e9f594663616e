import { randomUUID } from 'node:crypto';
import {
  create,
  type MessageInitShape,
  type SessionChannel,
  type SessionFrame,
  SessionFrameSchema,
  toWardError,
  WardError,
} from '@ward/protocol';
import type { ServerChannel, Session } from 'ssh2';
import type { Identity } from '../identity/index.js';
import type { LiveSession } from '../sessions/index.js';
import type { StagedBlob } from '../store/index.js';
import { AsciicastWriter } from './asciicast.js';
import { isAllowedEnv, MAX_ENV_VALUE_BYTES } from './env-allow.js';
import { encodeTerminalModes } from './pty-modes.js';
import { redactCommand } from './redact.js';
import { type SftpEvent, SftpScanner } from './sftp-scanner.js';
import type { SshContext } from './ssh-context.js';
import {
  DEFAULT_SSH_POLICY,
  type SshPolicy,
  type SshPolicyDecision,
  type SshPolicySubject,
  type SshRequest,
} from './ssh-policy.js';

/** Who is on the other end of an authenticated SSH connection, and where they go. */
export interface SshConnectionInfo extends SshPolicySubject {
  readonly identity: Identity;
  readonly connection: string;
  readonly remoteUser: string;
  readonly source: string;
}

type Kind = 'shell' | 'exec' | 'subsystem';
type Phase = 'requests' | 'starting' | 'running' | 'closed';

interface Pty {
  term: string;
  cols: number;
  rows: number;
  width: number;
  height: number;
  modes: Uint8Array;
}

const frame = (value: NonNullable<MessageInitShape<typeof SessionFrameSchema>['frame']>) =>
  create(SessionFrameSchema, { frame: value });
const stdinFrame = (data: Uint8Array) => frame({ case: 'sshData', value: { data, stream: 0 } });

/** Commands that are file-transfer protocols, not terminal output: recorded as bytes, not asciicast. */
const TRANSFER_COMMAND = /^\s*(?:scp\s|rsync\s+--server|\S*sftp-server\b)/;

/**
 * One SSH "session" channel of a client (a shell, a command, or a subsystem such as sftp) and
 * the one tunnel session that carries it to the agent (see ssh-contract: frames in order
 * pty/env → shell|exec|subsystem → data both ways → EOF/exit → close). Requests are handled one
 * at a time, in order, so replies keep the order RFC 4254 §5.4 requires even while the policy
 * holds one. Every request runs through the policy before any frame reaches the agent; terminal
 * sessions are recorded as asciicast, sftp as file operations.
 */
export class SshSession implements LiveSession {
  readonly id = `ses_${randomUUID()}`;
  readonly protocol = 'ssh' as const;
  readonly startedAt = new Date();
  readonly identity: Identity;
  readonly connection: string;
  readonly source: string;
  /** `connect` for a shell, `exec` for a command or a subsystem (scp, sftp); set at start. */
  accessAction: 'connect' | 'exec' = 'connect';

  readonly #ctx: SshContext;
  readonly #info: SshConnectionInfo;
  readonly #policy: SshPolicy;
  readonly #abort = new AbortController();
  #queue: Promise<void> = Promise.resolve();
  #busy = 0;
  #phase: Phase = 'requests';
  #pty: Pty | undefined;
  #env: Array<{ name: string; value: string }> = [];
  #kind: Kind | undefined;
  #command: string | undefined;
  #subsystem: string | undefined;
  #stream: ServerChannel | undefined;
  #channel: SessionChannel | undefined;
  #unregister: (() => void) | undefined;
  #cast: AsciicastWriter | undefined;
  #sftp: SftpScanner | undefined;
  #sftpEvents = 0;
  #recorded = false;
  #bytesIn = 0;
  #bytesOut = 0;
  #exitCode: number | undefined;
  #exitSignal: string | undefined;
  #exitSent = false;
  #pendingWrites = 0;
  #drainWaiters: Array<() => void> = [];
  #ended = false;
  #backendHostKey = '';

  constructor(session: Session, info: SshConnectionInfo, ctx: SshContext) {
    this.#ctx = ctx;
    this.#info = info;
    this.identity = info.identity;
    this.connection = info.connection;
    this.source = info.source;
    this.#policy = ctx.policy ?? DEFAULT_SSH_POLICY;

    session.on('pty', (accept, reject, info) =>
      this.#serial(() => {
        const pty: Pty = {
          term: String(info?.term ?? ''),
          cols: info?.cols ?? 80,
          rows: info?.rows ?? 24,
          width: info?.width ?? 0,
          height: info?.height ?? 0,
          modes: encodeTerminalModes(info?.modes as Record<string, number> | undefined),
        };
        if (this.#phase !== 'requests') return reject?.();
        return this.#decide({ type: 'pty-req', term: pty.term, cols: pty.cols, rows: pty.rows }, (ok) => {
          if (ok) this.#pty = pty;
          ok ? accept?.() : reject?.();
        });
      }),
    );
    session.on('env', (accept, reject, info) =>
      this.#serial(() => {
        const name = String(info?.key ?? '');
        const value = String(info?.val ?? '');
        // Not on the allow-list: refused quietly (OpenSSH sends env without asking for a reply).
        if (
          this.#phase !== 'requests' ||
          !isAllowedEnv(name) ||
          Buffer.byteLength(value) > MAX_ENV_VALUE_BYTES ||
          this.#env.length >= 64
        )
          return reject?.();
        return this.#decide({ type: 'env', name, value }, (ok) => {
          if (ok) this.#env.push({ name, value });
          ok ? accept?.() : reject?.();
        });
      }),
    );
    session.on('window-change', (accept, _reject, info) =>
      this.#serial(() => {
        const cols = info?.cols ?? 0;
        const rows = info?.rows ?? 0;
        if (this.#pty) Object.assign(this.#pty, { cols, rows, width: info?.width ?? 0, height: info?.height ?? 0 });
        this.#cast?.resize(cols, rows);
        this.#channel?.send(
          frame({
            case: 'sshWindowChange',
            value: { cols, rows, widthPx: info?.width ?? 0, heightPx: info?.height ?? 0 },
          }),
        );
        accept?.();
      }),
    );
    session.on('signal', (accept, _reject, info) =>
      this.#serial(() => {
        const name = String(info?.name ?? '').replace(/^SIG/, '');
        if (name && this.#channel) this.#channel.send(frame({ case: 'sshSignal', value: { name } }));
        accept?.();
      }),
    );
    session.on('x11', (_accept, reject) => this.#serial(() => this.#decide({ type: 'x11-req' }, () => reject?.())));
    session.on('auth-agent', (_accept, reject) =>
      this.#serial(() => this.#decide({ type: 'auth-agent-req@openssh.com' }, () => reject?.())),
    );
    session.on('shell', (accept, reject) => this.#serial(() => this.#start('shell', accept, reject)));
    session.on('exec', (accept, reject, info) =>
      this.#serial(() => this.#start('exec', accept, reject, String(info?.command ?? ''))),
    );
    session.on('subsystem', (accept, reject, info) =>
      this.#serial(() => this.#start('subsystem', accept, reject, String(info?.name ?? ''))),
    );
    session.on('close', () => {
      this.#abort.abort();
      if (!this.#ended && this.#phase !== 'requests') {
        this.#channel?.close();
        this.#finish(undefined);
      }
      this.#phase = 'closed';
    });
  }

  /** Ends the session: the reason goes to the client's stderr, exit status 255, channel closed. */
  terminate(reason: WardError): void {
    this.#fail(reason);
  }

  /**
   * Runs request handlers in arrival order; nothing thrown escapes into ssh2. A handler runs at
   * once (synchronously) when nothing is pending: ssh2 treats a client EOF that arrives before
   * `accept()` as the end of the session, and OpenSSH sends EOF right behind `exec` when its
   * stdin is empty. Only a policy that answers with a promise makes later requests wait.
   */
  #serial(run: () => void | Promise<void>): void {
    const onError = (err: unknown) => {
      this.#ctx.logger.error({ err, session: this.id }, 'ssh request handler failed');
      this.#fail(toWardError(err));
    };
    if (this.#busy === 0) {
      let result: void | Promise<void>;
      try {
        result = run();
      } catch (err) {
        onError(err);
        return;
      }
      if (!(result instanceof Promise)) return;
      this.#busy++;
      this.#queue = result.catch(onError).finally(() => this.#busy--);
      return;
    }
    this.#busy++;
    this.#queue = this.#queue
      .then(run)
      .catch(onError)
      .finally(() => this.#busy--);
  }

  /**
   * Runs the policy and calls `then` with its answer: synchronously when the policy answers
   * synchronously, else when its promise settles. A refusal is recorded (`ssh.denied`).
   */
  #decide(request: SshRequest, then: (allowed: boolean) => void): void | Promise<void> {
    const decided = this.#policy.check(request, this.#info);
    const apply = (decision: SshPolicyDecision) => {
      if (!decision.allow) this.#recordDenial(request, decision.rule, decision.error);
      then(decision.allow);
    };
    if (decided instanceof Promise) return decided.then(apply);
    apply(decided);
  }

  #recordDenial(request: SshRequest, rule: string, error: WardError): void {
    this.#ctx.recorder
      .record(this.#recorded ? this.id : undefined, 'ssh.denied', {
        identity: this.identity,
        source: this.source,
        connection: this.connection,
        decision: 'deny',
        rule,
        data: { request: describe(request), code: error.code },
      })
      .catch((err) => this.#ctx.logger.error({ err }, 'could not record an ssh refusal'));
  }

  #start(
    kind: Kind,
    accept: (() => ServerChannel) | undefined,
    reject: (() => void) | undefined,
    detail?: string,
  ): void | Promise<void> {
    if (this.#phase !== 'requests' || !accept) return reject?.();
    const stream = accept();
    // Undefined when the client already closed the session.
    if (!stream) return;
    this.#phase = 'starting';
    this.#kind = kind;
    if (kind === 'exec') this.#command = detail;
    if (kind === 'subsystem') this.#subsystem = detail;
    this.#stream = stream;
    stream.on('error', () => {});
    stream.stderr.on('error', () => {});
    stream.once('close', () => {
      if (this.#ended) return;
      this.#channel?.close();
      this.#finish(undefined);
    });
    const request: SshRequest =
      kind === 'shell'
        ? { type: 'shell' }
        : kind === 'exec'
          ? { type: 'exec', command: detail ?? '' }
          : { type: 'subsystem', name: detail ?? '' };
    // Accepted first (see #serial); a refusal then reaches the client as stderr + status 255.
    const decided = this.#policy.check(request, this.#info);
    const go = (decision: SshPolicyDecision) => {
      if (decision.allow) return this.#open(kind, stream);
      this.#recordDenial(request, decision.rule, decision.error);
      this.#fail(decision.error);
    };
    return decided instanceof Promise ? decided.then(go) : go(decided);
  }

  async #open(kind: Kind, stream: ServerChannel): Promise<void> {
    if (!this.#ctx.recorder.healthy) {
      this.#fail(
        new WardError(
          'ERR_AUDIT_UNAVAILABLE',
          'unavailable',
          'the audit store cannot write; the gateway refuses new work until it can',
        ),
      );
      return;
    }
    this.accessAction = kind === 'shell' ? 'connect' : 'exec';
    try {
      await this.#ctx.access.authorize({
        identity: this.identity,
        connection: this.connection,
        action: this.accessAction,
        source: this.source,
        protocol: 'ssh',
        sessionId: this.id,
      });
    } catch (err) {
      this.#fail(toWardError(err));
      return;
    }
    if (this.#ended) return;
    try {
      await this.#ctx.recorder.sessionStarted({
        id: this.id,
        connection: this.connection,
        protocol: 'ssh',
        identity: this.identity,
        source: this.source,
      });
      this.#recorded = true;
      await this.#ctx.recorder.record(this.id, 'ssh.request', {
        identity: this.identity,
        source: this.source,
        connection: this.connection,
        decision: 'allow',
        rule: this.#policy.name,
        data: {
          kind,
          ...(this.#command !== undefined ? { command: redactCommand(this.#command) } : {}),
          ...(this.#subsystem !== undefined ? { subsystem: this.#subsystem } : {}),
          remoteUser: this.#info.remoteUser || null,
          pty: this.#pty ? { term: this.#pty.term, cols: this.#pty.cols, rows: this.#pty.rows } : null,
          env: this.#env.map((e) => e.name),
        },
      });
      if (this.#ended) return;
      const { channel, ready } = await this.#ctx.tunnel.openSession(
        {
          sessionId: this.id,
          connection: this.connection,
          identity: this.identity.subject,
          target: { case: 'ssh', value: { user: this.#info.remoteUser } },
        },
        this.#abort.signal,
      );
      if (this.#ended) {
        channel.close();
        return;
      }
      this.#channel = channel;
      this.#backendHostKey = ready.detail.case === 'ssh' ? ready.detail.value.hostKeyFingerprint : '';
      this.#unregister = this.#ctx.sessions.add(this);
      this.#startRecording(kind);
      if (this.#pty) {
        const p = this.#pty;
        channel.send(
          frame({
            case: 'sshRequest',
            value: {
              request: {
                case: 'pty',
                value: {
                  term: p.term,
                  cols: p.cols,
                  rows: p.rows,
                  widthPx: p.width,
                  heightPx: p.height,
                  modes: p.modes,
                },
              },
            },
          }),
        );
      }
      for (const env of this.#env)
        channel.send(frame({ case: 'sshRequest', value: { request: { case: 'env', value: env } } }));
      channel.send(
        frame({
          case: 'sshRequest',
          value: {
            request:
              kind === 'shell'
                ? { case: 'shell', value: {} }
                : kind === 'exec'
                  ? { case: 'exec', value: { command: this.#command ?? '' } }
                  : { case: 'subsystem', value: { name: this.#subsystem ?? '' } },
          },
        }),
      );
      channel.onFrame((f) => this.#onFrame(f));
      channel.onClose((reason) => this.#onTunnelClose(reason));
      this.#phase = 'running';
      channel.pipeFrom(stream, stdinFrame, (chunk) => {
        this.#bytesIn += chunk.length;
        this.#cast?.input(chunk);
        this.#sftp?.client(chunk);
      });
      // Client EOF: after every stdin byte already queued (send() keeps its place behind data).
      stream.once('end', () => channel.send(frame({ case: 'sshEof', value: {} })));
    } catch (err) {
      this.#fail(toWardError(err));
    }
  }

  #startRecording(kind: Kind): void {
    const transfer = kind === 'subsystem' || (kind === 'exec' && TRANSFER_COMMAND.test(this.#command ?? ''));
    if (kind === 'subsystem' && this.#subsystem === 'sftp') {
      this.#sftp = new SftpScanner((event) => this.#recordSftp(event));
    }
    if (transfer) return;
    this.#cast = new AsciicastWriter(
      {
        width: this.#pty?.cols || 80,
        height: this.#pty?.rows || 24,
        timestamp: Math.floor(this.startedAt.getTime() / 1000),
        term: this.#pty?.term || undefined,
        ...(this.#command !== undefined ? { command: this.#command } : {}),
        title: `${this.identity.subject}@${this.connection}`,
      },
      this.#ctx.maxRecordingBytes !== undefined ? { maxBytes: this.#ctx.maxRecordingBytes } : {},
    );
  }

  #recordSftp(event: SftpEvent): void {
    this.#sftpEvents++;
    this.#ctx.recorder
      .record(this.id, 'ssh.sftp', {
        identity: this.identity,
        source: this.source,
        connection: this.connection,
        decision: 'allow',
        rule: this.#policy.name,
        data: { ...event },
      })
      .catch((err) => this.#ctx.logger.error({ err, session: this.id }, 'could not record an sftp operation'));
  }

  #onFrame(f: SessionFrame): void {
    const stream = this.#stream;
    const channel = this.#channel;
    if (!stream || !channel) return;
    switch (f.frame.case) {
      case 'sshData': {
        const { data, stream: which } = f.frame.value;
        this.#bytesOut += data.byteLength;
        this.#cast?.output(data);
        if (which === 0) this.#sftp?.server(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        this.#deliver(which === 1 ? stream.stderr : stream, data);
        return;
      }
      case 'sshEof':
        // ssh2 sends exit-status only on an open channel, so our EOF waits for the exit or close.
        return;
      case 'sshExit': {
        const status = f.frame.value.status;
        if (status.case === 'code') this.#exitCode = status.value;
        else if (status.case === 'signal') this.#exitSignal = status.value;
        void this.#drained().then(() => this.#sendExit());
        return;
      }
      default:
        channel.close(
          new WardError(
            'ERR_TUNNEL_MALFORMED_FRAME',
            'invalid_argument',
            `unexpected ${f.frame.case ?? 'empty'} frame in an SSH session`,
          ),
        );
    }
  }

  /** Writes agent data to the client; the credit goes back when ssh2 has taken the bytes. */
  #deliver(target: NodeJS.WritableStream, data: Uint8Array): void {
    const channel = this.#channel;
    this.#pendingWrites++;
    const done = () => {
      channel?.delivered(data.byteLength);
      if (--this.#pendingWrites === 0) {
        const waiters = this.#drainWaiters;
        this.#drainWaiters = [];
        for (const w of waiters) w();
      }
    };
    try {
      target.write(data, done);
    } catch {
      done();
    }
  }

  #drained(): Promise<void> {
    if (this.#pendingWrites === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #sendExit(): void {
    const stream = this.#stream;
    if (!stream || this.#exitSent) return;
    this.#exitSent = true;
    try {
      if (this.#exitSignal !== undefined) stream.exit(this.#exitSignal, false, '');
      else stream.exit(this.#exitCode ?? 0);
    } catch {
      // ssh2 refuses signal names it does not know; the client still gets a failure status.
      stream.exit(255);
    }
  }

  #onTunnelClose(reason: WardError | undefined): void {
    if (reason) {
      this.#fail(reason);
      return;
    }
    void this.#drained().then(() => {
      if (this.#exitCode !== undefined || this.#exitSignal !== undefined) this.#sendExit();
      this.#stream?.end();
      this.#finish(undefined);
    });
  }

  /** Ends with an error the client sees: one stderr line, exit status 255, then close. */
  #fail(error: WardError): void {
    if (this.#phase === 'closed' && this.#ended) return;
    const stream = this.#stream;
    if (stream?.writable) {
      if (!this.#exitSent) {
        stream.stderr.write(`ward: ${error.code}: ${error.message}\r\n`);
        this.#exitCode = 255;
        this.#sendExit();
      }
      stream.end();
    }
    this.#channel?.close(error);
    this.#phase = 'closed';
    this.#finish(error);
  }

  #finish(error: WardError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#phase = 'closed';
    this.#abort.abort();
    this.#unregister?.();
    if (!this.#recorded) return;
    this.#sftp?.end();
    let recording: string | null = null;
    let blobs: StagedBlob[] | undefined;
    let truncated = false;
    if (this.#cast) {
      truncated = this.#cast.truncated;
      try {
        const blob = this.#ctx.recorder.stageBlob(this.#cast.finish());
        recording = blob.sha256;
        blobs = [blob];
      } catch (err) {
        this.#ctx.logger.error({ err, session: this.id }, 'could not store the recording');
      }
    }
    const data: Record<string, unknown> = {
      kind: this.#kind ?? null,
      ...(this.#command !== undefined ? { command: redactCommand(this.#command) } : {}),
      ...(this.#subsystem !== undefined ? { subsystem: this.#subsystem } : {}),
      exitCode: this.#exitCode ?? null,
      exitSignal: this.#exitSignal ?? null,
      recording,
      recordingTruncated: truncated,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      backendHostKey: this.#backendHostKey || null,
      ...(this.#sftp
        ? {
            sftpOperations: this.#sftpEvents,
            sftpScan: this.#sftp.abandoned ? `stopped: ${this.#sftp.abandoned}` : 'ok',
          }
        : {}),
    };
    const fields = {
      identity: this.identity,
      source: this.source,
      connection: this.connection,
      decision: 'allow' as const,
      rule: this.#policy.name,
      data,
      // Stored in the record's transaction: the record that names the recording commits with it.
      blobs,
    };
    const id = this.id;
    const outcome =
      !error || error.code === 'ERR_CLIENT_GONE' ? { status: 'ok' as const } : { status: 'error' as const, error };
    this.#ctx.recorder
      .record(id, 'ssh.session', fields)
      .then(() => this.#ctx.recorder.sessionEnded(id, { ...outcome, summary: data }))
      .catch((err) => this.#ctx.logger.error({ err, session: id }, 'could not record the session end'));
  }
}

function describe(request: SshRequest): string {
  switch (request.type) {
    case 'exec':
      return `exec ${redactCommand(request.command)}`;
    case 'subsystem':
      return `subsystem ${request.name}`;
    case 'env':
      return `env ${request.name}`;
    case 'direct-tcpip':
      return `direct-tcpip ${request.host}:${request.port}`;
    case 'tcpip-forward':
      return `tcpip-forward ${request.bindAddr}:${request.bindPort}`;
    case 'streamlocal':
      return `streamlocal ${request.socketPath}`;
    default:
      return request.type;
  }
}
