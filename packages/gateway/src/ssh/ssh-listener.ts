import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { splitHostPort, toWardError, WardError } from '@ward/protocol';
import ssh2, { type AuthContext, type Connection } from 'ssh2';

// ssh2 is CommonJS; Node's ESM loader only sees a few of its names, not Server or utils.
const { Server, utils } = ssh2;

import { authDenialData, type Identity, type Role } from '../identity/index.js';
import { disconnectWithMessage } from './disconnect.js';
import { type HostKey, loadOrCreateHostKey } from './host-key.js';
import { sshFingerprint } from './public-key.js';
import type { SshContext } from './ssh-context.js';
import { DEFAULT_SSH_POLICY, type SshRequest } from './ssh-policy.js';
import { type SshConnectionInfo, SshSession } from './ssh-session.js';
import { connectTarget, parseSshUsername } from './username.js';

export interface SshListener {
  port: number;
  server: ssh2.Server;
  /** `SHA256:…` of the gateway's host key, for `ward gateway` to print and users to pin. */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA…`, for a known_hosts line: `[host]:port ssh-ed25519 AAAA…`. */
  hostPublicKey: string;
}

const AUTH_METHODS: AuthContext['method'][] = ['publickey', 'password'];
const ROLES: ReadonlySet<string> = new Set(['admin', 'auditor', 'approver', 'user']);
const AUTH_FAILED = 'authentication failed';

function sourceOf(ip: string | undefined, port: number | undefined): string {
  return ip?.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The gateway's SSH listener (default 127.0.0.1:7422), an ssh2 `Server` with a persistent
 * Ed25519 host key. The SSH user name picks the connection: `<connection>` or
 * `<remote-user>@<connection>`. The password is the user's ward token (gateway tokens fit
 * OpenSSH's 1023-byte limit), or the client's key is one registered with `ward keys add`.
 * Every session channel becomes one tunnel session to the agent (see README.md).
 *
 * @example
 * const ssh = await startSshListener('127.0.0.1:7422', ctx);
 * console.log(`ssh -p ${ssh.port} deploy@prod-web@127.0.0.1  # host key ${ssh.hostKeyFingerprint}`);
 */
export async function startSshListener(address: string, ctx: SshContext): Promise<SshListener> {
  const hostKey = sshHostKey(ctx);
  const server = new Server(
    { hostKeys: [hostKey.privateKey], ident: 'ward' },
    (conn: Connection, info: { ip: string; port: number }) => {
      try {
        new SshClientConnection(conn, sourceOf(info.ip, info.port), ctx);
      } catch (err) {
        ctx.logger.error({ err }, 'ssh connection setup failed');
        conn.end();
      }
    },
  );
  server.on('error', (err: Error) => ctx.logger.error({ err }, 'ssh listener error'));
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(
        new WardError('ERR_SSH_LISTEN', 'unavailable', `cannot listen on ${address}: ${err.message}`, { cause: err }),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    hostKeyFingerprint: hostKey.fingerprint,
    hostPublicKey: hostKey.publicKey,
  };
}

/** The gateway's host key, `<dataDir>/ssh-host-key` (made on first use, then the same on every start). */
export function sshHostKey(ctx: Pick<SshContext, 'dataDir'>): HostKey {
  return loadOrCreateHostKey(join(ctx.dataDir, 'ssh-host-key'));
}

/** Who came through `ward connect`: authenticated by the WebSocket handshake, connection fixed. */
export interface SshPreauthenticated {
  identity: Identity;
  connection: string;
  /** The CLI's address as the gateway's HTTP server saw it. */
  source: string;
}

/**
 * Serves one SSH client connection that arrived as a byte stream rather than on the listener:
 * the `ward connect` WebSocket. The token in the WebSocket handshake already identified the
 * user, so the client's SSH authentication (`none` included) is accepted for that identity;
 * the SSH user name is only the remote login (see `connectTarget`). From there on it is the
 * listener's code path: policy, recording, sftp, ptys, audit records.
 *
 * @example
 * acceptSshStream(wsStream, ctx, sshHostKey(ctx), { identity, connection: 'prod-web', source: '127.0.0.1:51234' });
 */
export function acceptSshStream(stream: Duplex, ctx: SshContext, hostKey: HostKey, preauth: SshPreauthenticated): void {
  // One unlistened Server per stream: ssh2 reports an injected socket's peer as
  // `socket.remoteAddress` (undefined on a WebSocket stream), so the closure carries who it is.
  const server = new Server({ hostKeys: [hostKey.privateKey], ident: 'ward' }, (conn: Connection) => {
    try {
      new SshClientConnection(conn, preauth.source, ctx, preauth);
    } catch (err) {
      ctx.logger.error({ err }, 'ssh connection setup failed');
      conn.end();
    }
  });
  server.on('error', (err: Error) => ctx.logger.error({ err }, 'ssh stream error'));
  server.injectSocket(stream as unknown as import('node:net').Socket);
}

/** One client connection: authentication, the connection it asked for, and its channels. */
class SshClientConnection {
  readonly #conn: Connection;
  readonly #ctx: SshContext;
  readonly #source: string;
  readonly #sessions = new Set<SshSession>();
  #failures = 0;
  #identity: Identity | undefined;
  #username = '';
  #grace: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #preauth: SshPreauthenticated | undefined;

  constructor(conn: Connection, source: string, ctx: SshContext, preauth?: SshPreauthenticated) {
    this.#conn = conn;
    this.#ctx = ctx;
    this.#source = source;
    this.#preauth = preauth;
    // A malformed packet, a reset or a keepalive timeout ends this connection only.
    conn.on('error', (err: Error) => ctx.logger.debug({ err: err.message, source }, 'ssh connection error'));
    conn.on('close', () => this.#onClose());
    this.#grace = setTimeout(
      () =>
        this.#disconnect(new WardError('ERR_SSH_LOGIN_TIMEOUT', 'deadline_exceeded', 'authentication took too long')),
      ctx.loginGraceMs ?? 60_000,
    );
    this.#grace.unref();
    conn.on('authentication', (auth) => {
      this.#authenticate(auth).catch((err) => {
        ctx.logger.error({ err, source }, 'ssh authentication handler failed');
        this.#disconnect(toWardError(err));
      });
    });
    conn.on('ready', () => this.#guard(() => this.#onReady()));
  }

  #guard(run: () => void): void {
    try {
      run();
    } catch (err) {
      this.#ctx.logger.error({ err, source: this.#source }, 'ssh handler failed');
      this.#disconnect(toWardError(err));
    }
  }

  async #authenticate(auth: AuthContext): Promise<void> {
    this.#username = auth.username;
    if (this.#preauth) {
      // The WebSocket handshake carried the token; whatever the client offers (usually "none")
      // logs in as that identity. A keyboard-interactive or publickey query is accepted as is.
      this.#identity = this.#preauth.identity;
      auth.accept();
      return;
    }
    switch (auth.method) {
      case 'password': {
        const token = auth.password;
        try {
          this.#identity = await this.#ctx.authenticate(token);
        } catch (err) {
          await this.#deny(auth, 'auth.token', toWardError(err, 'ERR_AUTH_TOKEN_INVALID', 'unauthenticated'));
          return;
        }
        auth.accept();
        return;
      }
      case 'publickey': {
        const fingerprint = sshFingerprint(auth.key.data);
        const record = this.#ctx.keys.findByFingerprint(fingerprint);
        const stored = record ? utils.parseKey(record.publicKey) : undefined;
        const key = stored && !(stored instanceof Error) && !Array.isArray(stored) ? stored : undefined;
        const blob = key?.getPublicSSH();
        const matches =
          record !== undefined &&
          blob !== undefined &&
          blob.length === auth.key.data.length &&
          timingSafeEqual(blob, auth.key.data) &&
          key?.type === auth.key.algo.replace(/^rsa-sha2-(256|512)$/, 'ssh-rsa');
        if (!auth.signature || !auth.blob) {
          // The client asks whether this key would do (RFC 4252 §7): yes only for a registered
          // key, as sshd answers, so the client does not sign with every key it holds. The
          // query itself is not a failed login.
          matches ? auth.accept() : auth.reject(AUTH_METHODS);
          return;
        }
        if (!matches || !record || key?.verify(auth.blob, auth.signature, auth.hashAlgo) !== true) {
          await this.#deny(
            auth,
            'auth.publickey',
            new WardError('ERR_SSH_AUTH_FAILED', 'unauthenticated', AUTH_FAILED),
            fingerprint,
          );
          return;
        }
        this.#ctx.keys.touch(fingerprint);
        this.#identity = {
          subject: record.owner.subject,
          kind: record.owner.kind,
          roles: record.owner.roles.filter((r): r is Role => ROLES.has(r)),
          groups: record.owner.groups,
          issuer: record.owner.issuer,
          // A key does not expire by itself; removing it (`ward keys remove`) ends its use.
          expiresAt: new Date(8.64e15),
          tokenId: `ssh-key:${fingerprint}`,
        };
        auth.accept();
        return;
      }
      case 'none':
        // Every client starts with "none" to learn the methods; not an attempt.
        auth.reject(AUTH_METHODS);
        return;
      default:
        await this.#deny(
          auth,
          `auth.${auth.method}`,
          new WardError('ERR_SSH_AUTH_FAILED', 'unauthenticated', AUTH_FAILED),
        );
    }
  }

  /** One refusal, recorded; the client hears the same thing whatever the reason (no oracle). */
  async #deny(auth: AuthContext, rule: string, error: WardError, keyFingerprint?: string): Promise<void> {
    this.#failures++;
    await this.#ctx.recorder
      .record(undefined, 'auth.denied', {
        source: this.#source,
        decision: 'deny',
        rule,
        data: {
          code: error.code,
          protocol: 'ssh',
          method: auth.method,
          ...authDenialData(error),
          ...(keyFingerprint ? { keyFingerprint } : {}),
        },
      })
      .catch((err) => this.#ctx.logger.error({ err }, 'could not record an ssh authentication failure'));
    if (this.#failures >= (this.#ctx.maxAuthTries ?? 6)) {
      this.#disconnect(new WardError('ERR_SSH_AUTH_FAILED', 'unauthenticated', 'too many authentication failures'));
      return;
    }
    auth.reject(AUTH_METHODS);
  }

  #onReady(): void {
    if (this.#grace) clearTimeout(this.#grace);
    const identity = this.#identity;
    if (!identity) {
      this.#disconnect(new WardError('ERR_SSH_AUTH_FAILED', 'unauthenticated', AUTH_FAILED));
      return;
    }
    const target = this.#preauth
      ? connectTarget(this.#username, this.#preauth.connection)
      : parseSshUsername(this.#username);
    const type = target ? this.#ctx.connectionType(target.connection) : undefined;
    let error: WardError | undefined;
    if (!target) {
      error = new WardError(
        'ERR_SSH_BAD_USERNAME',
        'invalid_argument',
        `"${this.#username.slice(0, 100)}" is not <connection> or <remote-user>@<connection>`,
      );
    } else if (type === undefined) {
      error = new WardError('ERR_CONN_UNKNOWN', 'not_found', `no connection named "${target.connection}"`);
    } else if (type !== 'ssh') {
      error = new WardError(
        'ERR_CONN_TYPE_MISMATCH',
        'invalid_argument',
        `"${target.connection}" is a ${type} connection, not ssh`,
      );
    } else if (!this.#ctx.recorder.healthy) {
      error = new WardError(
        'ERR_AUDIT_UNAVAILABLE',
        'unavailable',
        'the audit store cannot write; the gateway refuses new work until it can',
      );
    }
    if (error || !target) {
      this.#ctx.recorder
        .record(undefined, 'access.denied', {
          identity,
          source: this.#source,
          connection: target?.connection,
          decision: 'deny',
          rule: 'ssh.target',
          data: { code: error?.code ?? 'ERR_SSH_BAD_USERNAME', protocol: 'ssh' },
        })
        .catch((err) => this.#ctx.logger.error({ err }, 'could not record an ssh refusal'));
      this.#disconnect(error ?? new WardError('ERR_SSH_BAD_USERNAME', 'invalid_argument', 'bad user name'));
      return;
    }
    const { access } = this.#ctx;
    const verdict = access.decide(identity, target.connection, 'connect');
    if (!verdict.allow && !access.decide(identity, target.connection, 'exec').allow) {
      // Refused now, before the client opens a channel; authorize() records the refusal.
      access
        .authorize({
          identity,
          connection: target.connection,
          action: 'connect',
          source: this.#source,
          protocol: 'ssh',
        })
        .catch(() => {});
      this.#disconnect(verdict.error);
      return;
    }
    const info: SshConnectionInfo = {
      identity,
      connection: target.connection,
      remoteUser: target.user,
      source: this.#source,
    };
    const conn = this.#conn;
    conn.on('session', (accept) =>
      this.#guard(() => {
        const session = new SshSession(accept(), info, this.#ctx);
        this.#sessions.add(session);
      }),
    );
    // Forwarding of every kind goes through the policy (default: refused, see ssh-policy.ts).
    conn.on('tcpip', (accept, reject, req) =>
      this.#forward(
        { type: 'direct-tcpip', host: String(req?.destIP ?? ''), port: Number(req?.destPort ?? 0) },
        info,
        accept,
        reject,
      ),
    );
    conn.on('openssh.streamlocal', (accept, reject, req) =>
      this.#forward({ type: 'streamlocal', socketPath: String(req?.socketPath ?? '') }, info, accept, reject),
    );
    conn.on('request', (_accept, reject, name: string, req) => {
      if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') {
        const r = req as { bindAddr?: string; bindPort?: number; socketPath?: string };
        this.#forward(
          name === 'tcpip-forward'
            ? { type: 'tcpip-forward', bindAddr: String(r.bindAddr ?? ''), bindPort: Number(r.bindPort ?? 0) }
            : { type: 'streamlocal', socketPath: String(r.socketPath ?? '') },
          info,
          undefined,
          reject,
        );
        return;
      }
      // cancel-tcpip-forward and anything else: nothing to do, nothing granted.
      reject?.();
    });
  }

  /**
   * A forwarding request. Even when a policy allows it, ward has no recorded path for raw
   * forwarded bytes yet, so it is refused either way; the decision is recorded.
   */
  #forward(request: SshRequest, info: SshConnectionInfo, _accept: unknown, reject: (() => void) | undefined): void {
    const policy = this.#ctx.policy ?? DEFAULT_SSH_POLICY;
    Promise.resolve(policy.check(request, info))
      .then(async (decision) => {
        const error = decision.allow
          ? new WardError('ERR_SSH_FORWARDING_UNSUPPORTED', 'permission_denied', 'forwarding is not supported')
          : decision.error;
        await this.#ctx.recorder.record(undefined, 'ssh.denied', {
          identity: info.identity,
          source: info.source,
          connection: info.connection,
          decision: 'deny',
          rule: decision.allow ? 'ssh.forwarding-unsupported' : decision.rule,
          data: { request: request.type, code: error.code },
        });
      })
      .catch((err) => this.#ctx.logger.error({ err }, 'could not record an ssh forwarding refusal'))
      .finally(() => {
        try {
          reject?.();
        } catch {
          // The connection may be gone already.
        }
      });
  }

  #disconnect(error: WardError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#grace) clearTimeout(this.#grace);
    for (const s of this.#sessions) s.terminate(error);
    disconnectWithMessage(this.#conn, error.sshDisconnect, `${error.code}: ${error.message}`);
  }

  #onClose(): void {
    this.#closed = true;
    if (this.#grace) clearTimeout(this.#grace);
    const gone = new WardError('ERR_CLIENT_GONE', 'unavailable', 'the client closed the connection');
    for (const s of this.#sessions) s.terminate(gone);
    this.#sessions.clear();
  }
}
