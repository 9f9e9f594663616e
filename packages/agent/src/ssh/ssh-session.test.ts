/**
 * serveSshSession against a real OpenSSH sshd started by the test, driven through an in-memory
 * SessionChannel pair with this file playing the gateway.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { create, SessionFrameSchema, SshStartSchema, TUNNEL_DEFAULTS, type WardError } from '@ward/protocol';
import ssh2 from 'ssh2';
import { createChannelPair } from '../postgres/testing/channel-pair.js';
import { sha256Fingerprint } from './host-key.js';
import type { SshBackend } from './ssh-backend.js';
import { startSshSession } from './ssh-session.js';
import { SshGatewaySide } from './testing/gateway-side.js';
import { type Sshd, startSshd } from './testing/sshd.js';

/** ssh2's per-channel receive window, also its read buffer's high-water mark (lib/Channel.js). */
const SSH2_CHANNEL_WINDOW = 2 * 1024 * 1024;
/** ssh2's maximum incoming packet (lib/Channel.js PACKET_SIZE). */
const SSH2_PACKET_SIZE = 32 * 1024;
/**
 * What the agent may hold for one session's output: ssh2 stops granting window once its read
 * buffer reaches the high-water mark, and the host may still fill the window it already has;
 * the tunnel pipe holds a frame being sent and the next one being gathered.
 */
const AGENT_OUTPUT_BOUND = 2 * SSH2_CHANNEL_WINDOW + 2 * (TUNNEL_DEFAULTS.maxFrameBytes + SSH2_PACKET_SIZE);

let sshd: Sshd;

before(async () => {
  sshd = await startSshd();
});

after(async () => {
  await sshd?.stop();
});

function backend(extra: Partial<SshBackend> = {}): SshBackend {
  return {
    name: 'test-host',
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    privateKey: sshd.clientKey,
    hostKey: { fingerprint: sshd.hostKeyFingerprint },
    ...extra,
  };
}

function open(b: SshBackend = backend(), options: { user?: string; windowBytes?: number } = {}) {
  const pair = createChannelPair(options.windowBytes === undefined ? {} : { windowBytes: options.windowBytes });
  const gateway = new SshGatewaySide(pair.gateway);
  const session = startSshSession(pair.agent, create(SshStartSchema, { user: options.user ?? '' }), b);
  return { gateway, session, pair };
}

async function expectFailure(b: SshBackend, options: { user?: string } = {}): Promise<WardError> {
  const { gateway } = open(b, options);
  await assert.rejects(gateway.ready);
  const reason = await gateway.closed;
  assert.ok(reason, 'the session must end with an error');
  assert.deepEqual(gateway.events, [`close:${reason.code}`], 'nothing but the close before SessionReady');
  return reason;
}

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  // Bounded by a count of polls, not asserted on time: slow CI only makes it take longer.
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`gave up waiting for ${what}`);
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Asserts that no form of the error (message, JSON, inspected cause chain) holds a secret. */
function assertNoSecret(err: WardError, secret: string): void {
  const fragments = [secret.trim(), ...secret.split(/\r?\n/).filter((l) => l.trim().length >= 16)];
  const forms = [err.message, JSON.stringify(err), inspect(err, { depth: 10 })];
  for (const form of forms) for (const fragment of fragments) assert.ok(!form.includes(fragment.trim()));
}

/** sshd's per-connection processes (direct children of the listener). */
function connectionProcesses(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return state !== 'Z' && Number(ppid) === sshd.pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

const exitCode = (code: number) => ({ case: 'code', value: code });

describe('serveSshSession: commands', () => {
  test('exec: stdout and stderr apart, exit status, then EOF, SshExit and a clean close in that order', async () => {
    const { gateway } = open();
    const ready = await gateway.ready;
    assert.equal(ready.hostKeyFingerprint, sshd.hostKeyFingerprint);
    gateway.exec("sh -c 'echo out; echo err >&2; exit 3'");
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText, 'out\n');
    assert.equal(gateway.stderrText, 'err\n');
    assert.deepEqual(gateway.exit, exitCode(3));
    const tail = gateway.events.slice(-3);
    assert.deepEqual(tail, ['eof', 'exit', 'close']);
    assert.ok(gateway.events.includes('data:0') && gateway.events.includes('data:1'));
    // One connection per session, ended with it.
    await waitUntil('sshd to see the connection end', () => connectionProcesses().length === 0);
  });

  test('the session user from SshStart replaces the configured one', async () => {
    const { gateway } = open(backend({ user: 'someone-else' }), { user: sshd.user });
    await gateway.ready;
    gateway.exec('id -un');
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText.trim(), sshd.user);
  });

  test('stdin reaches the command: cat echoes, SshEof ends it with status 0', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.exec('cat');
    await gateway.write('hello ward\n');
    await gateway.untilStdout(/hello ward\n/);
    assert.equal(gateway.exit, undefined, 'cat still runs until EOF');
    await gateway.write('second line\n');
    gateway.sendEof();
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText, 'hello ward\nsecond line\n');
    assert.deepEqual(gateway.exit, exitCode(0));
    assert.deepEqual(gateway.events.slice(-3), ['eof', 'exit', 'close']);
  });

  test('8 MiB of stdin arrive intact (sha256sum on the host), within the credit window', async () => {
    const { gateway, pair } = open();
    await gateway.ready;
    gateway.exec('sha256sum');
    const input = randomBytes(8 * 1024 * 1024);
    let maxAgentBuffered = 0;
    for (let offset = 0; offset < input.byteLength; offset += 256 * 1024) {
      await gateway.write(input.subarray(offset, offset + 256 * 1024));
      maxAgentBuffered = Math.max(maxAgentBuffered, pair.agent.bufferedBytes);
    }
    gateway.sendEof();
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText.split(' ')[0], createHash('sha256').update(input).digest('hex'));
    assert.deepEqual(gateway.exit, exitCode(0));
    assert.ok(maxAgentBuffered <= TUNNEL_DEFAULTS.sessionWindowBytes);
  });

  test('requests and stdin sent before SessionReady are kept and applied in order', async () => {
    const { gateway } = open();
    gateway.env('WARD_TEST_EARLY', 'early-value');
    gateway.exec('printf "%s:" "$WARD_TEST_EARLY"; cat');
    await gateway.write('piped early');
    gateway.sendEof();
    await gateway.ready;
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText, 'early-value:piped early');
    assert.deepEqual(gateway.exit, exitCode(0));
  });

  test('exit by signal: SshExit{signal: "TERM"}', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.exec('kill -TERM $$');
    assert.equal(await gateway.closed, undefined);
    assert.deepEqual(gateway.exit, { case: 'signal', value: 'TERM' });
  });

  test('SshSignal from the gateway becomes an SSH "signal" request on the host', async () => {
    // sshd acts on signal requests only for users it runs under privilege separation, never
    // for root (privsep_postauth skips it), and tests log in as root: the log proves the
    // request arrived, naming the signal.
    const before = sshd.log().length;
    const { gateway } = open();
    await gateway.ready;
    gateway.pty('xterm', 80, 24);
    gateway.exec('exec sleep 600');
    gateway.signal('INT');
    await waitUntil('sshd to log the signal request', () => /session_signal_req/.test(sshd.log().slice(before)));
    // The pty's hangup ends the sleep when the session closes.
    gateway.channel.close();
    assert.equal(await gateway.closed, undefined);
  });

  test('a refused request: one stderr line, SshExit 255, ERR_SSH_CHANNEL_REFUSED', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.subsystem('no-such-subsystem');
    const reason = await gateway.closed;
    assert.equal(reason?.code, 'ERR_SSH_CHANNEL_REFUSED');
    assert.match(gateway.stderrText, /^ward: [^\n]*\r\n$/);
    assert.deepEqual(gateway.exit, exitCode(255));
    assert.deepEqual(gateway.events, ['ready', 'data:1', 'exit', 'close:ERR_SSH_CHANNEL_REFUSED']);
  });

  test('a frame of another protocol, or a second exec, ends the session with ERR_TUNNEL_MALFORMED_FRAME', async () => {
    const first = open();
    await first.gateway.ready;
    first.gateway.exec('true');
    first.gateway.exec('true');
    assert.equal((await first.gateway.closed)?.code, 'ERR_TUNNEL_MALFORMED_FRAME');

    const second = open();
    await second.gateway.ready;
    await second.pair.gateway.sendData(Buffer.from('x'), (messages) =>
      create(SessionFrameSchema, { frame: { case: 'pgFrontend', value: { messages } } }),
    );
    assert.equal((await second.gateway.closed)?.code, 'ERR_TUNNEL_MALFORMED_FRAME');
  });
});

describe('serveSshSession: terminals, environment, subsystems', () => {
  test('pty + shell: TERM and size reach the host, a window change resizes it', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.pty('xterm-256color', 100, 30);
    gateway.shell();
    await gateway.write('echo "term=$TERM"; stty size\n');
    await gateway.untilStdout(/term=xterm-256color\r\n30 100\r\n/);
    gateway.windowChange(120, 40);
    await gateway.write('stty size\n');
    await gateway.untilStdout(/40 120\r\n/);
    await gateway.write('exit\n');
    assert.equal(await gateway.closed, undefined);
    assert.deepEqual(gateway.exit, exitCode(0));
    assert.equal(gateway.stderr.length, 0, 'a pty merges stderr into stdout');
  });

  test('env: an allow-listed variable reaches the shell, others are dropped by sshd', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.env('WARD_TEST_X', 'from-ward');
    gateway.env('NOT_ACCEPTED_Y', 'nope');
    gateway.shell();
    await gateway.write('echo "x=$WARD_TEST_X y=$NOT_ACCEPTED_Y"\nexit 0\n');
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText, 'x=from-ward y=\n');
    assert.deepEqual(gateway.exit, exitCode(0));
  });

  test('sftp subsystem: SSH_FXP_INIT gets SSH_FXP_VERSION 3, REALPATH "." gets a NAME', async () => {
    const { gateway } = open();
    await gateway.ready;
    gateway.subsystem('sftp');
    // draft-ietf-secsh-filexfer-02 §4: uint32 length, byte type, then the body.
    const init = Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]);
    await gateway.write(init);
    const packet = (type: number, id: number, body: Buffer) => {
      const head = Buffer.alloc(9);
      head.writeUInt32BE(5 + body.length, 0);
      head[4] = type;
      head.writeUInt32BE(id, 5);
      return Buffer.concat([head, body]);
    };
    await gateway.until('SSH_FXP_VERSION', () => Buffer.concat(gateway.stdout).length >= 9);
    const version = Buffer.concat(gateway.stdout);
    assert.equal(version[4], 2, 'SSH_FXP_VERSION');
    assert.equal(version.readUInt32BE(5), 3);
    const versionLength = version.readUInt32BE(0) + 4;
    const dot = Buffer.from([0, 0, 0, 1, 0x2e]);
    await gateway.write(packet(16, 7, dot)); // SSH_FXP_REALPATH
    await gateway.until('SSH_FXP_NAME', () => {
      const all = Buffer.concat(gateway.stdout);
      return all.length >= versionLength + 4 && all.length >= versionLength + 4 + all.readUInt32BE(versionLength);
    });
    const reply = Buffer.concat(gateway.stdout).subarray(versionLength);
    assert.equal(reply[4], 104, 'SSH_FXP_NAME');
    assert.equal(reply.readUInt32BE(5), 7, 'request id echoed');
    assert.equal(reply.readUInt32BE(9), 1, 'one name');
    const nameLength = reply.readUInt32BE(13);
    assert.match(reply.subarray(17, 17 + nameLength).toString(), /^\//);
    gateway.sendEof();
    assert.equal(await gateway.closed, undefined);
  });
});

describe('serveSshSession: host key', () => {
  test('the fingerprint matches ssh-keygen and the ready frame reports it', () => {
    const blob = Buffer.from(sshd.hostPublicKey.split(/\s+/)[1] as string, 'base64');
    assert.equal(sha256Fingerprint(blob), sshd.hostKeyFingerprint);
  });

  test('a pinned fingerprint mismatch: ERR_SSH_HOST_KEY_MISMATCH before any authentication', async () => {
    const before = sshd.log().length;
    const other = sha256Fingerprint(randomBytes(51));
    // A wrong key too: only a check before authentication yields the host key code.
    const wrongKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    const err = await expectFailure(backend({ hostKey: { fingerprint: other }, privateKey: wrongKey }));
    assert.equal(err.code, 'ERR_SSH_HOST_KEY_MISMATCH');
    assert.equal(err.kind, 'unavailable');
    await waitUntil('sshd to log the dropped connection', () =>
      /\[preauth\]|Connection (closed|reset)/.test(sshd.log().slice(before)),
    );
    const logged = sshd.log().slice(before);
    assert.doesNotMatch(logged, /publickey|Accepted|Failed|userauth/i);
    assertNoSecret(err, wrongKey);
  });

  test('a malformed pinned fingerprint refuses every key', async () => {
    const err = await expectFailure(backend({ hostKey: { fingerprint: 'MD5:aa:bb' } }));
    assert.equal(err.code, 'ERR_SSH_HOST_KEY_MISMATCH');
  });

  test('known_hosts: the plain [host]:port entry is accepted', async () => {
    const { gateway } = open(backend({ hostKey: { knownHosts: sshd.knownHostsPath } }));
    assert.equal((await gateway.ready).hostKeyFingerprint, sshd.hostKeyFingerprint);
    gateway.exec('echo ok');
    assert.equal(await gateway.closed, undefined);
    assert.equal(gateway.stdoutText, 'ok\n');
  });

  test('known_hosts hashed by ssh-keygen -H is accepted', async () => {
    const path = join(sshd.dir, 'known_hosts_hashed');
    copyFileSync(sshd.knownHostsPath, path);
    const hashed = spawnSync('ssh-keygen', ['-H', '-f', path], { encoding: 'utf8' });
    assert.equal(hashed.status, 0, hashed.stderr);
    assert.match(readFileSync(path, 'utf8'), /^\|1\|/);
    const { gateway } = open(backend({ hostKey: { knownHosts: path } }));
    await gateway.ready;
    gateway.exec('true');
    assert.equal(await gateway.closed, undefined);
  });

  test('known_hosts without this host (another port): refused', async () => {
    const path = join(sshd.dir, 'known_hosts_other_port');
    const [type, key] = sshd.hostPublicKey.split(/\s+/);
    writeFileSync(path, `[127.0.0.1]:1 ${type} ${key}\n127.0.0.2 ${type} ${key}\n`);
    const err = await expectFailure(backend({ hostKey: { knownHosts: path } }));
    assert.equal(err.code, 'ERR_SSH_HOST_KEY_MISMATCH');
  });

  test('known_hosts listing another key for this host: refused', async () => {
    const path = join(sshd.dir, 'known_hosts_other_key');
    const other = ssh2.utils.generateKeyPairSync('ed25519').public;
    writeFileSync(path, `[127.0.0.1]:${sshd.port} ${other}\n`);
    const err = await expectFailure(backend({ hostKey: { knownHosts: path } }));
    assert.equal(err.code, 'ERR_SSH_HOST_KEY_MISMATCH');
  });

  test('known_hosts with the key marked @revoked: refused even though it is also listed', async () => {
    const path = join(sshd.dir, 'known_hosts_revoked');
    const [type, key] = sshd.hostPublicKey.split(/\s+/);
    writeFileSync(path, `[127.0.0.1]:${sshd.port} ${type} ${key}\n@revoked * ${type} ${key}\n`);
    const err = await expectFailure(backend({ hostKey: { knownHosts: path } }));
    assert.equal(err.code, 'ERR_SSH_HOST_KEY_MISMATCH');
  });

  test('a missing known_hosts file: ERR_SSH_KNOWN_HOSTS_UNREADABLE', async () => {
    const err = await expectFailure(backend({ hostKey: { knownHosts: join(sshd.dir, 'no-such-file') } }));
    assert.equal(err.code, 'ERR_SSH_KNOWN_HOSTS_UNREADABLE');
  });
});

describe('serveSshSession: login and reachability', () => {
  test('a key the host does not accept: ERR_SSH_BACKEND_AUTH, the key in no form of the error', async () => {
    const wrongKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    const err = await expectFailure(backend({ privateKey: wrongKey }));
    assert.equal(err.code, 'ERR_SSH_BACKEND_AUTH');
    assert.equal(err.kind, 'unavailable');
    assertNoSecret(err, wrongKey);
    assertNoSecret(err, sshd.clientKey);
  });

  test('a password on a host without password authentication: ERR_SSH_BACKEND_AUTH, no password shown', async () => {
    const password = 'hunter2-very-secret-pw';
    const { privateKey: _, ...rest } = backend();
    const err = await expectFailure({ ...rest, password });
    assert.equal(err.code, 'ERR_SSH_BACKEND_AUTH');
    assertNoSecret(err, password);
  });

  test('an unknown user: ERR_SSH_BACKEND_AUTH', async () => {
    const err = await expectFailure(backend(), { user: 'no-such-user-ward' });
    assert.equal(err.code, 'ERR_SSH_BACKEND_AUTH');
  });

  test('a private key that does not parse: ERR_SSH_BACKEND_AUTH without its text', async () => {
    const garbage =
      '-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs=\n-----END OPENSSH PRIVATE KEY-----\n';
    const err = await expectFailure(backend({ privateKey: garbage }));
    assert.equal(err.code, 'ERR_SSH_BACKEND_AUTH');
    assertNoSecret(err, garbage);
  });

  test('neither key nor password: ERR_SSH_BACKEND_AUTH', async () => {
    const { privateKey: _, ...rest } = backend();
    const err = await expectFailure(rest);
    assert.equal(err.code, 'ERR_SSH_BACKEND_AUTH');
  });

  test('a closed port: ERR_SSH_BACKEND_UNREACHABLE', async () => {
    const err = await expectFailure(backend({ port: await closedPort() }));
    assert.equal(err.code, 'ERR_SSH_BACKEND_UNREACHABLE');
  });

  test('a listener that never speaks: ERR_SSH_BACKEND_UNREACHABLE at the connect timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const err = await expectFailure(backend({ port, connectTimeoutMs: 300 }));
      assert.equal(err.code, 'ERR_SSH_BACKEND_UNREACHABLE');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('something that is not SSH on the port: ERR_SSH_BACKEND_PROTOCOL', async () => {
    const sockets: net.Socket[] = [];
    const http = net.createServer((s) => {
      sockets.push(s);
      s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const port = (http.address() as net.AddressInfo).port;
      const err = await expectFailure(backend({ port }));
      assert.equal(err.code, 'ERR_SSH_BACKEND_PROTOCOL');
      assert.equal(sockets.length, 1);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => http.close(resolve));
    }
  });
});

describe('serveSshSession: flow control and teardown', () => {
  test('64 MB of output to a slow reader: intact, and the agent holds a bounded amount', async () => {
    const file = join(sshd.dir, 'big.bin');
    const content = randomBytes(64_000_000);
    writeFileSync(file, content);
    const expected = createHash('sha256').update(content).digest('hex');
    const { gateway, session } = open();
    const hash = createHash('sha256');
    let bytes = 0;
    gateway.onStdout = (chunk) => {
      hash.update(chunk);
      bytes += chunk.byteLength;
    };
    await gateway.ready;
    gateway.hold();
    gateway.exec(`cat '${file}'`);
    await gateway.until('a full credit window', () => gateway.received >= TUNNEL_DEFAULTS.sessionWindowBytes);
    // Let the host push as much as it can while nothing is read: the figure must stop growing.
    let last = -1;
    let steady = 0;
    await waitUntil('the agent buffer to settle', () => {
      const now = session.bufferedBytes;
      steady = now === last ? steady + 1 : 0;
      last = now;
      return steady >= 8;
    });
    const heldBuffered = session.bufferedBytes;
    const bound = AGENT_OUTPUT_BOUND;
    assert.equal(gateway.received, TUNNEL_DEFAULTS.sessionWindowBytes, 'no byte past the credit window');
    assert.ok(heldBuffered > 0 && heldBuffered <= bound, `agent holds ${heldBuffered} bytes (bound ${bound})`);

    let sampledMax = heldBuffered;
    const sampler = setInterval(() => {
      sampledMax = Math.max(sampledMax, session.bufferedBytes);
    }, 2);
    gateway.slow();
    try {
      assert.equal(await gateway.closed, undefined);
    } finally {
      clearInterval(sampler);
    }
    assert.equal(bytes, content.byteLength);
    assert.equal(hash.digest('hex'), expected);
    assert.deepEqual(gateway.exit, exitCode(0));
    assert.ok(gateway.maxUncredited <= TUNNEL_DEFAULTS.sessionWindowBytes);
    assert.ok(sampledMax <= bound, `sampled max ${sampledMax}`);
    assert.ok(session.maxBufferedBytes <= bound, `max at chunks ${session.maxBufferedBytes}`);
    console.log(
      `ssh 64 MB relay: agent buffer held=${heldBuffered} sampledMax=${sampledMax} maxAtChunks=${session.maxBufferedBytes} bound=${bound}`,
    );
  });

  test('the host connection dying mid-session: output so far, then ERR_SSH_BACKEND_CLOSED', async () => {
    const { gateway } = open();
    await gateway.ready;
    // A pty, so the command gets SIGHUP when its sshd process dies and is not left behind.
    gateway.pty('xterm', 80, 24);
    gateway.exec('echo started; exec sleep 600');
    await gateway.untilStdout(/started\r\n/);
    const victims = connectionProcesses();
    assert.equal(victims.length, 1, 'one connection for this session');
    for (const pid of victims) process.kill(pid, 'SIGKILL');
    const reason = await gateway.closed;
    assert.equal(reason?.code, 'ERR_SSH_BACKEND_CLOSED');
    assert.equal(gateway.stdoutText, 'started\r\n');
    assert.equal(gateway.exit, undefined);
  });

  test('the gateway closing mid-session ends the remote pty command', async () => {
    const marker = String(600 + Math.floor(Math.random() * 300));
    const running = () =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .some((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${marker}.25\0`;
          } catch {
            return false;
          }
        });
    const { gateway } = open();
    await gateway.ready;
    gateway.pty('xterm', 80, 24);
    gateway.exec(`exec sleep ${marker}.25`);
    await waitUntil('the remote sleep to start', running);
    gateway.channel.close();
    await waitUntil('the remote sleep to end', () => !running());
  });
});
