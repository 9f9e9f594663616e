/** startSshd: a real sshd that real `ssh` logs in to, and that never outlives its test process. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSshd } from './sshd.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill 0; it is gone for our purposes.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  // Bounded by a count of polls, not asserted on time: slow CI only makes it take longer.
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`gave up waiting for ${what}`);
}

describe('startSshd', () => {
  test('OpenSSH ssh logs in with the client key and checks the host with the known_hosts file', async () => {
    const sshd = await startSshd();
    try {
      const result = spawnSync(
        'ssh',
        [
          '-F',
          'none',
          '-i',
          sshd.clientKeyPath,
          '-o',
          `UserKnownHostsFile=${sshd.knownHostsPath}`,
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          'BatchMode=yes',
          '-o',
          'IdentitiesOnly=yes',
          '-p',
          String(sshd.port),
          `${sshd.user}@${sshd.host}`,
          'echo logged-in-as-$(id -un)',
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), `logged-in-as-${sshd.user}`);
      assert.match(sshd.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      await sshd.waitForLog(/Accepted publickey for /);
    } finally {
      await sshd.stop();
    }
  });

  test('stop() ends sshd and removes its directory; a second stop() is a no-op', async () => {
    const sshd = await startSshd();
    const pid = sshd.pid;
    assert.ok(alive(pid));
    await sshd.stop();
    await sshd.stop();
    assert.equal(alive(pid), false);
    assert.equal(existsSync(sshd.dir), false);
  });

  test('a test process killed with SIGKILL leaves no sshd behind (the watchdog stops it)', async () => {
    const helper = fileURLToPath(new URL('./sshd.js', import.meta.url));
    const script = `import { startSshd } from ${JSON.stringify(helper)};
      const sshd = await startSshd();
      process.stdout.write(JSON.stringify({ pid: sshd.pid, dir: sshd.dir }) + '\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (text: string) => {
        out += text;
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`the helper process exited (${code}) before starting sshd`)));
    });
    const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
    assert.ok(alive(pid));
    child.kill('SIGKILL');
    await waitUntil('the watchdog to stop sshd', () => !alive(pid));
    await waitUntil('the watchdog to remove the directory', () => !existsSync(dir));
  });
});
