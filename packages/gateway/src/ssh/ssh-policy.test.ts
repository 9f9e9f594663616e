import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SSH_POLICY, type SshPolicySubject, type SshRequest } from './ssh-policy.js';

const subject: SshPolicySubject = {
  identity: {
    subject: 'bob',
    kind: 'user',
    roles: ['user'],
    groups: [],
    issuer: 'test',
    expiresAt: new Date(Date.now() + 60_000),
    tokenId: 't',
  },
  connection: 'prod',
  remoteUser: '',
  source: '127.0.0.1:1',
};

test('default SSH policy: sessions allowed, every kind of forwarding refused', async () => {
  const allowed: SshRequest[] = [
    { type: 'shell' },
    { type: 'exec', command: 'rm -rf /tmp/x' },
    { type: 'subsystem', name: 'sftp' },
    { type: 'pty-req', term: 'xterm', cols: 80, rows: 24 },
    { type: 'env', name: 'LANG', value: 'C' },
  ];
  const refused: Array<[SshRequest, string]> = [
    [{ type: 'subsystem', name: 'netconf' }, 'ssh.subsystem'],
    [{ type: 'x11-req' }, 'ssh.forwarding'],
    [{ type: 'auth-agent-req@openssh.com' }, 'ssh.forwarding'],
    [{ type: 'direct-tcpip', host: '10.0.0.1', port: 5432 }, 'ssh.forwarding'],
    [{ type: 'tcpip-forward', bindAddr: '0.0.0.0', bindPort: 8080 }, 'ssh.forwarding'],
    [{ type: 'streamlocal', socketPath: '/run/docker.sock' }, 'ssh.forwarding'],
  ];
  for (const r of allowed) assert.deepEqual(await DEFAULT_SSH_POLICY.check(r, subject), { allow: true }, r.type);
  for (const [r, rule] of refused) {
    const d = await DEFAULT_SSH_POLICY.check(r, subject);
    assert.equal(d.allow, false, r.type);
    if (d.allow) continue;
    assert.equal(d.rule, rule);
    assert.equal(d.error.code, 'ERR_SSH_REQUEST_REFUSED');
    assert.equal(d.error.kind, 'permission_denied');
  }
});
