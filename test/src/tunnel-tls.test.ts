/** TLS on the tunnel: a private CA works, system roots refuse it, plaintext stays on loopback. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TunnelClient, type TunnelClientOptions } from '@ward/agent';
import { TunnelServer } from '@ward/gateway';
import { create, SessionFrameSchema, type WardError } from '@ward/protocol';
import { newAgentKey, startGateway, type TestGateway, waitFor } from './helpers/tunnel-fixtures.js';

const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });

/** A throw-away CA and a server certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
function makeCerts(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=ward test CA',
    ...caExt,
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  const sign = ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf'];
  openssl('x509', '-req', '-in', 'server.csr', '-out', 'server.pem', ...sign);
  return {
    ca: readFileSync(join(dir, 'ca.pem')),
    cert: readFileSync(join(dir, 'server.pem')),
    key: readFileSync(join(dir, 'server.key')),
  };
}

describe('tunnel over TLS', () => {
  let dir: string;
  let pki: ReturnType<typeof makeCerts>;
  let gw: TestGateway;
  const agent = newAgentKey('tls-agent');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-tls-'));
    pki = makeCerts(dir);
    gw = await startGateway({
      agents: [agent.entry],
      connections: [{ name: 'echo', type: 'ssh' }],
      insecure: false,
      tls: { cert: pki.cert, key: pki.key },
    });
  });

  after(async () => {
    await gw.server.stop(500);
    rmSync(dir, { recursive: true, force: true });
  });

  function client(address: string, extra: Partial<TunnelClientOptions>): TunnelClient {
    return new TunnelClient({
      address,
      key: agent.key,
      connections: [{ name: 'echo', type: 'ssh' }],
      initialDelayMs: 100,
      maxDelayMs: 500,
      onSession: (_start, channel) => {
        channel.send(
          create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }),
        );
        channel.onFrame((f) => {
          if (f.frame.case !== 'sshData') return;
          channel.delivered(f.frame.value.data.byteLength);
          channel.sendData(f.frame.value.data, data).catch(() => {});
        });
      },
      ...extra,
    });
  }

  for (const host of ['127.0.0.1', 'localhost']) {
    test(`an agent with the CA connects to ${host} and carries a session`, async () => {
      const c = client(`${host}:${gw.port}`, { ca: pki.ca });
      try {
        c.start();
        await waitFor('online over TLS', () => c.state === 'online');
        const { channel } = await gw.server.openSession({
          connection: 'echo',
          identity: 't',
          target: { case: 'ssh', value: {} },
        });
        const echoed = new Promise<string>((resolve) =>
          channel.onFrame((f) => {
            if (f.frame.case === 'sshData') resolve(Buffer.from(f.frame.value.data).toString());
          }),
        );
        await channel.sendData(Buffer.from('over tls'), data);
        assert.equal(await echoed, 'over tls');
        channel.close();
      } finally {
        await c.stop();
      }
      await waitFor('agent gone', () => gw.server.agentFor('echo') === undefined);
    });
  }

  test('without the CA (system roots) the agent never comes online and keeps retrying', async () => {
    const c = client(`127.0.0.1:${gw.port}`, {});
    const retries: WardError[] = [];
    const onlineEventsBefore = gw.events.filter((e) => e.kind === 'agent.online').length;
    let online = 0;
    c.on('retry', (r: { error: WardError }) => retries.push(r.error));
    c.on('online', () => online++);
    try {
      c.start();
      await waitFor('three failed attempts', () => retries.length >= 3);
      assert.equal(online, 0);
      assert.notEqual(c.state, 'online');
      assert.equal(gw.server.agentFor('echo'), undefined);
      for (const e of retries) assert.equal(e.code, 'ERR_TUNNEL_UNAVAILABLE');
      assert.equal(gw.events.filter((e) => e.kind === 'agent.online').length, onlineEventsBefore);
    } finally {
      await c.stop();
    }
  });

  test('insecure: true toward a non-loopback address is refused before any connection exists', () => {
    for (const address of ['10.0.0.1:7401', 'gateway.example.com:443', '[::ffff:10.0.0.1]:7401', '0.0.0.0:7401']) {
      assert.throws(() => client(address, { insecure: true }), { code: 'ERR_TUNNEL_INSECURE_NON_LOOPBACK' }, address);
    }
    // Loopback spellings are accepted (construction only: nothing is started).
    for (const address of ['127.0.0.1:1', 'localhost:1', '[::1]:1']) {
      assert.doesNotThrow(() => client(address, { insecure: true }), address);
    }
  });

  test('a TunnelServer refuses to listen in plaintext on 0.0.0.0 or [::], and needs TLS or insecure', () => {
    const base = { agents: [agent.entry], connections: [] };
    for (const address of ['0.0.0.0:0', '[::]:0', '10.1.2.3:0']) {
      assert.throws(() => new TunnelServer({ ...base, address, insecure: true }), {
        code: 'ERR_TUNNEL_INSECURE_NON_LOOPBACK',
      });
    }
    assert.throws(() => new TunnelServer({ ...base, address: '127.0.0.1:0' }), { code: 'ERR_TUNNEL_TLS_REQUIRED' });
    // With a certificate, any address is allowed (construction only: nothing listens).
    assert.doesNotThrow(
      () => new TunnelServer({ ...base, address: '0.0.0.0:0', tls: { cert: pki.cert, key: pki.key } }),
    );
  });
});
