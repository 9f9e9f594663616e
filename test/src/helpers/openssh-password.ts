import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './processes.js';

/** What one OpenSSH command through the gateway printed. */
export interface OpensshRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * OpenSSH as a person logging in to the gateway's SSH listener with a password (a ward or IdP
 * token): the gateway's host key pinned from its data dir (strict checking stays on), the
 * password handed over by SSH_ASKPASS, no public keys tried. Writes `known_hosts` and
 * `askpass.sh` into `workDir` once; returns the function that runs a command.
 */
export function opensshWithPassword(options: {
  gatewayDataDir: string;
  port: number;
  workDir: string;
  /** The SSH user name: the connection to reach (see the README's SSH section). */
  user: string;
}): { knownHosts: string; ssh(password: string, command: string): Promise<OpensshRun> } {
  const pub = spawnSync('ssh-keygen', ['-y', '-f', join(options.gatewayDataDir, 'ssh-host-key')], {
    encoding: 'utf8',
  });
  assert.equal(pub.status, 0, pub.stderr);
  const knownHosts = join(options.workDir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${options.port} ${pub.stdout.trim()}\n`);
  const askpass = join(options.workDir, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$WARD_TEST_PASSWORD"\n');
  chmodSync(askpass, 0o700);
  const ssh = async (password: string, command: string): Promise<OpensshRun> => {
    const r = await run(
      'ssh',
      [
        '-F',
        '/dev/null',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'PreferredAuthentications=password',
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'NumberOfPasswordPrompts=1',
        '-o',
        'LogLevel=ERROR',
        '-p',
        String(options.port),
        '-l',
        options.user,
        '127.0.0.1',
        command,
      ],
      { env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', WARD_TEST_PASSWORD: password } },
    );
    return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
  };
  return { knownHosts, ssh };
}
