/** Bad agents: wrong or revoked keys, and connection announcements the gateway refuses. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { TunnelClient, type TunnelClientOptions } from '@ward/agent';
import { create, SessionFrameSchema, type WardError, type Welcome } from '@ward/protocol';
import { newAgentKey, startGateway, waitFor } from './helpers/tunnel-fixtures.js';

const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });

/** An agent whose sessions answer one data frame carrying its own name. */
function namedAgent(
  name: string,
  address: string,
  key: string,
  connections: TunnelClientOptions['connections'],
): TunnelClient {
  return new TunnelClient({
    address,
    insecure: true,
    key,
    connections,
    initialDelayMs: 100,
    maxDelayMs: 500,
    keepaliveIntervalMs: 1_000,
    onSession: (_start, channel) => {
      channel.send(
        create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }),
      );
      channel.sendData(Buffer.from(name), data).catch(() => {});
    },
  });
}

function collect(client: TunnelClient) {
  const seen = { refused: [] as WardError[], offline: [] as WardError[], online: 0, text: [] as string[] };
  client.on('refused', (e: WardError) => {
    seen.refused.push(e);
    seen.text.push(inspect(e, { depth: 8 }), e.stack ?? '');
  });
  client.on('offline', (e: WardError) => {
    seen.offline.push(e);
    seen.text.push(inspect(e, { depth: 8 }), e.stack ?? '');
  });
  client.on('online', () => seen.online++);
  return seen;
}

describe('agent authentication', () => {
  for (const variant of ['unknown', 'revoked'] as const) {
    test(`${variant} key: refused with a code, never online, and the key appears in no event or error`, async () => {
      const { key, entry } = newAgentKey('agent-bad');
      const agents = variant === 'revoked' ? [{ ...entry, revoked: true }] : [newAgentKey('someone-else').entry];
      const gw = await startGateway({ agents, connections: [{ name: 'db', type: 'postgres' }] });
      const client = namedAgent('bad', gw.address, key, [{ name: 'db', type: 'postgres' }]);
      const seen = collect(client);
      try {
        client.start();
        await waitFor('two refusals', () => seen.refused.length >= 2);
        const expected = variant === 'revoked' ? 'ERR_TUNNEL_AGENT_KEY_REVOKED' : 'ERR_TUNNEL_AGENT_KEY_INVALID';
        assert.equal(seen.refused[0]?.code, expected);
        assert.equal(seen.refused[0]?.kind, 'unauthenticated');
        assert.equal(seen.online, 0);
        assert.notEqual(client.state, 'online');
        assert.equal(gw.server.agentFor('db'), undefined);
        const refusedEvents = gw.events.filter((e) => e.kind === 'agent.refused');
        assert.ok(refusedEvents.length >= 2);
        assert.equal(refusedEvents[0]?.error?.code, expected);
        assert.equal(refusedEvents[0]?.agent, variant === 'revoked' ? 'agent-bad' : undefined);
        assert.equal(gw.events.filter((e) => e.kind === 'agent.online').length, 0);
        // The key is a secret: no event, error message, stack or cause chain may carry it.
        const everything = [inspect(gw.events, { depth: 8 }), ...seen.text].join('\n');
        assert.equal(everything.includes(key), false);
        assert.equal(everything.includes(key.slice(4, 24)), false);
      } finally {
        await client.stop();
        await gw.server.stop(500);
      }
    });
  }
});

describe('connection announcements', () => {
  test('unknown, wrong type and claimed connections are rejected in Welcome; the first agent keeps serving', async () => {
    const a = newAgentKey('agent-a');
    const b = newAgentKey('agent-b');
    const gw = await startGateway({
      agents: [a.entry, b.entry],
      connections: [
        { name: 'shared', type: 'ssh' },
        { name: 'api', type: 'http' },
        { name: 'b-only', type: 'postgres' },
      ],
    });
    const first = namedAgent('agent-a', gw.address, a.key, [{ name: 'shared', type: 'ssh' }]);
    const second = namedAgent('agent-b', gw.address, b.key, [
      { name: 'shared', type: 'ssh' },
      { name: 'nope', type: 'ssh' },
      { name: 'api', type: 'postgres' },
      { name: 'b-only', type: 'postgres' },
    ]);
    try {
      first.start();
      await waitFor('first online', () => gw.server.agentFor('shared') === 'agent-a');
      const welcomed = new Promise<Welcome>((resolve) => second.once('online', resolve));
      second.start();
      const welcome = await welcomed;
      assert.deepEqual(welcome.accepted, ['b-only']);
      const rejected = Object.fromEntries(welcome.rejected.map((r) => [r.name, r.error?.code]));
      assert.deepEqual(rejected, {
        shared: 'ERR_CONN_CLAIMED',
        nope: 'ERR_CONN_UNKNOWN',
        api: 'ERR_CONN_TYPE_MISMATCH',
      });
      assert.equal(welcome.agentName, 'agent-b');
      const events = gw.events.filter((e) => e.kind === 'agent.connection_rejected');
      assert.deepEqual(events.map((e) => [e.connection, e.error?.code]).sort(), [
        ['api', 'ERR_CONN_TYPE_MISMATCH'],
        ['nope', 'ERR_CONN_UNKNOWN'],
        ['shared', 'ERR_CONN_CLAIMED'],
      ]);

      // The first agent still serves "shared": sessions go to it, and "b-only" to the second.
      assert.equal(gw.server.agentFor('shared'), 'agent-a');
      assert.equal(gw.server.agentFor('b-only'), 'agent-b');
      for (const [connection, expected] of [
        ['shared', 'agent-a'],
        ['b-only', 'agent-b'],
        ['shared', 'agent-a'],
      ] as const) {
        const { channel } = await gw.server.openSession({
          connection,
          identity: 't',
          target: { case: 'ssh', value: {} },
        });
        const name = await new Promise<string>((resolve) =>
          channel.onFrame((f) => {
            if (f.frame.case === 'sshData') resolve(Buffer.from(f.frame.value.data).toString());
          }),
        );
        assert.equal(name, expected);
        channel.close();
      }
      assert.deepEqual(
        gw.server
          .agents()
          .map((x) => x.name)
          .sort(),
        ['agent-a', 'agent-b'],
      );
    } finally {
      await first.stop();
      await second.stop();
      await gw.server.stop(500);
    }
  });

  test('a connection assigned to another agent is rejected with ERR_CONN_WRONG_AGENT', async () => {
    const a = newAgentKey('agent-a');
    const gw = await startGateway({
      agents: [a.entry],
      connections: [{ name: 'pinned', type: 'ssh', agent: 'agent-z' }],
    });
    const client = namedAgent('agent-a', gw.address, a.key, [{ name: 'pinned', type: 'ssh' }]);
    try {
      const welcomed = new Promise<Welcome>((resolve) => client.once('online', resolve));
      client.start();
      const welcome = await welcomed;
      assert.deepEqual(welcome.accepted, []);
      assert.equal(welcome.rejected[0]?.error?.code, 'ERR_CONN_WRONG_AGENT');
      await assert.rejects(
        gw.server.openSession({ connection: 'pinned', identity: 't', target: { case: 'ssh', value: {} } }),
        { code: 'ERR_AGENT_OFFLINE' },
      );
    } finally {
      await client.stop();
      await gw.server.stop(500);
    }
  });
});
