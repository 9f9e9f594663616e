import { WardError } from '@ward/protocol';
import type { Identity } from '../identity/index.js';

/** Who asks, for a policy to decide on (a session channel or the whole connection). */
export interface SshPolicySubject {
  readonly identity: Identity;
  readonly connection: string;
  /** Remote login requested; empty for the agent's configured user. */
  readonly remoteUser: string;
  readonly source: string;
}

/** Every client request a policy sees, named as in RFC 4254. */
export type SshRequest =
  | { type: 'pty-req'; term: string; cols: number; rows: number }
  | { type: 'env'; name: string; value: string }
  | { type: 'shell' }
  | { type: 'exec'; command: string }
  | { type: 'subsystem'; name: string }
  | { type: 'x11-req' }
  | { type: 'auth-agent-req@openssh.com' }
  | { type: 'direct-tcpip'; host: string; port: number }
  | { type: 'tcpip-forward'; bindAddr: string; bindPort: number }
  | { type: 'streamlocal'; socketPath: string };

export type SshPolicyDecision = { allow: true } | { allow: false; error: WardError; rule: string };

/**
 * The hook where guardrails and approvals plug into SSH, like `PostgresPolicy`: it sees every
 * request before anything reaches the agent, and may hold it (return a promise) or refuse it.
 */
export interface SshPolicy {
  /** Recorded as the rule of every allowed request. */
  readonly name: string;
  check(request: SshRequest, subject: SshPolicySubject): SshPolicyDecision | Promise<SshPolicyDecision>;
}

const ALLOW: SshPolicyDecision = { allow: true };

const refuse = (rule: string, what: string): SshPolicyDecision => ({
  allow: false,
  rule,
  error: new WardError('ERR_SSH_REQUEST_REFUSED', 'permission_denied', `${what} is refused by the gateway's policy`),
});

/**
 * The default: interactive shells, commands and the sftp subsystem (scp is a command) with a
 * pty and allowed environment variables; every kind of forwarding (ports, sockets, X11, the
 * ssh-agent) is refused, since each one opens a path that bypasses recording.
 */
export const DEFAULT_SSH_POLICY: SshPolicy = {
  name: 'default',
  check(request) {
    switch (request.type) {
      case 'pty-req':
      case 'env':
      case 'shell':
      case 'exec':
        return ALLOW;
      case 'subsystem':
        return request.name === 'sftp' ? ALLOW : refuse('ssh.subsystem', `the "${request.name}" subsystem`);
      case 'x11-req':
        return refuse('ssh.forwarding', 'X11 forwarding');
      case 'auth-agent-req@openssh.com':
        return refuse('ssh.forwarding', 'agent forwarding');
      case 'direct-tcpip':
        return refuse('ssh.forwarding', 'local port forwarding (-L, -D, -W)');
      case 'tcpip-forward':
        return refuse('ssh.forwarding', 'remote port forwarding (-R)');
      case 'streamlocal':
        return refuse('ssh.forwarding', 'unix socket forwarding');
    }
  },
};
