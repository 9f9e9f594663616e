/** Invariant 7: the agent comes back by itself, and cut sessions end with a clear reason. */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { TunnelClient, type TunnelClientState } from '@ward/agent';
import type { TunnelServer } from '@ward/gateway';
import { create, type SessionChannel, SessionFrameSchema, type WardError } from '@ward/protocol';
import { AgentChild, newAgentKey, startGateway, waitFor } from './helpers/tunnel-fixtures.js';

const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });
const CONNECTIONS = [{ name: 'echo', type: 'ssh' as const }];

/** An agent whose sessions echo every data frame; it records how each session ended. */
function echoAgent(address: string, key: string, closed: Array<string | undefined>) {
  const states: TunnelClientState[] = [];
  const client = new TunnelClient({
    address,
    insecure: true,
    key,
    connections: CONNECTIONS,
    initialDelayMs: 100,
    maxDelayMs: 1_000,
    keepaliveIntervalMs: 1_000,
    onSession: (_start, channel) => {
      channel.onClose((reason) => closed.push(reason?.code));
      channel.send(
        create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }),
      );
      channel.onFrame((frame) => {
        if (frame.frame.case !== 'sshData') return;
        const bytes = frame.frame.value.data;
        channel.delivered(bytes.byteLength);
        channel.sendData(bytes, data).catch(() => {});
      });
    },
  });
  client.on('state', (s: TunnelClientState) => states.push(s));
  return { client, states };
}

async function echoOnce(server: TunnelServer, text: string): Promise<string> {
  const { channel } = await server.openSession({
    connection: 'echo',
    identity: 't',
    target: { case: 'ssh', value: {} },
  });
  const reply = new Promise<string>((resolve) =>
    channel.onFrame((f) => {
      if (f.frame.case === 'sshData') resolve(Buffer.from(f.frame.value.data).toString());
    }),
  );
  await channel.sendData(Buffer.from(text), data);
  const got = await reply;
  channel.close();
  return got;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('tunnel reconnects', () => {
  test('gateway restart on the same port: open sessions end with codes, the agent comes back alone', async () => {
    const { key, entry } = newAgentKey('agent-r');
    const gw1 = await startGateway({ agents: [entry], connections: CONNECTIONS });
    const agentClosed: Array<string | undefined> = [];
    const { client, states } = echoAgent(gw1.address, key, agentClosed);
    let gw2: Awaited<ReturnType<typeof startGateway>> | undefined;
    try {
      client.start();
      await waitFor('agent online', () => gw1.server.agentFor('echo'));
      assert.equal(await echoOnce(gw1.server, 'before'), 'before');

      const open: SessionChannel[] = [];
      for (let i = 0; i < 3; i++) {
        const { channel } = await gw1.server.openSession({
          connection: 'echo',
          identity: 't',
          target: { case: 'ssh', value: {} },
        });
        open.push(channel);
      }
      const gatewayReasons = Promise.all(
        open.map((c) => new Promise<WardError | undefined>((resolve) => c.onClose(resolve))),
      );
      await waitFor('three agent sessions', () => client.activeSessions === 3);
      agentClosed.length = 0;

      await gw1.server.stop(500);
      const reasons = await gatewayReasons;
      assert.deepEqual(
        reasons.map((r) => r?.code),
        ['ERR_GATEWAY_SHUTDOWN', 'ERR_GATEWAY_SHUTDOWN', 'ERR_GATEWAY_SHUTDOWN'],
      );
      await waitFor('agent sessions ended', () => agentClosed.length === 3);
      for (const code of agentClosed) {
        assert.ok(
          code === 'ERR_GATEWAY_SHUTDOWN' || code === 'ERR_TUNNEL_UNAVAILABLE' || code === 'ERR_TUNNEL_CLOSED',
          `agent-side close reason ${code}`,
        );
      }
      await waitFor('agent notices', () => client.state !== 'online');

      gw2 = await startGateway({ agents: [entry], connections: CONNECTIONS, address: gw1.address });
      assert.equal(gw2.port, gw1.port);
      // Liveness bound: backoff is capped at 1 s here, so 15 s is generous.
      await waitFor('agent back online', () => gw2?.server.agentFor('echo'), 15_000);
      // The gateway registers the agent on Hello; the agent is online once Welcome reaches it.
      await waitFor('agent state online', () => client.state === 'online');
      assert.ok(states.includes('waiting'), `states: ${states.join(',')}`);
      assert.equal(await echoOnce(gw2.server, 'after'), 'after');
      assert.equal(gw2.events.filter((e) => e.kind === 'agent.online').length, 1);
    } finally {
      await client.stop();
      await gw2?.server.stop(500);
    }
  });

  test('gateway down when the agent starts: waiting, then online once it listens', async () => {
    const { key, entry } = newAgentKey('agent-w');
    const port = await freePort();
    const { client, states } = echoAgent(`127.0.0.1:${port}`, key, []);
    let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
    const retries: Array<{ error: WardError }> = [];
    client.on('retry', (r: { error: WardError }) => retries.push(r));
    try {
      client.start();
      await waitFor('agent waiting', () => client.state === 'waiting');
      await waitFor('a second attempt', () => retries.length >= 2);
      assert.equal(retries[0]?.error.code, 'ERR_TUNNEL_UNAVAILABLE');
      assert.equal(states.includes('online'), false);
      gw = await startGateway({ agents: [entry], connections: CONNECTIONS, address: `127.0.0.1:${port}` });
      await waitFor('agent online', () => client.state === 'online', 15_000);
      assert.deepEqual(states.slice(0, 2), ['connecting', 'waiting']);
      assert.equal(states.at(-1), 'online');
      assert.equal(await echoOnce(gw.server, 'hello'), 'hello');
    } finally {
      await client.stop();
      await gw?.server.stop(500);
    }
  });

  test('an agent process that dies mid-session: the gateway session ends with an error, the agent goes offline', async () => {
    const { key, entry } = newAgentKey('agent-k');
    const gw = await startGateway({ agents: [entry], connections: [{ name: 'bulk', type: 'ssh' }] });
    const child = new AgentChild({ address: gw.address, key, connections: [{ name: 'bulk', type: 'ssh' }] });
    try {
      await waitFor('agent online', () => gw.server.agentFor('bulk'));
      const { channel } = await gw.server.openSession({
        connection: 'bulk',
        identity: JSON.stringify({ mode: 'hold' }),
        target: { case: 'ssh', value: {} },
      });
      const reason = new Promise<WardError | undefined>((resolve) => channel.onClose(resolve));
      child.proc.kill('SIGKILL');
      const r = await reason;
      assert.ok(r, 'the session must end with an error, not as a normal close');
      assert.ok(['ERR_TUNNEL_UNAVAILABLE', 'ERR_TUNNEL_CLOSED'].includes(r.code), `code ${r.code}`);
      await waitFor('agent offline', () => gw.server.agentFor('bulk') === undefined);
      await waitFor('offline event', () => gw.events.find((e) => e.kind === 'agent.offline'));
      await assert.rejects(
        gw.server.openSession({ connection: 'bulk', identity: '{}', target: { case: 'ssh', value: {} } }),
        { code: 'ERR_AGENT_OFFLINE' },
      );
      assert.equal(gw.server.sessionCount, 0);
    } finally {
      await child.stop();
      await gw.server.stop(500);
    }
  });
});
