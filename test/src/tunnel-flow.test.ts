/**
 * Invariant 5, measured: a stuck reader holds back its own session only, and neither the
 * gateway nor the agent (in its own process) buffers more than about a window for it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { TunnelServer } from '@ward/gateway';
import { create, type SessionChannel, SessionFrameSchema, TUNNEL_DEFAULTS } from '@ward/protocol';
import {
  AgentChild,
  CHUNK,
  type ChildCommand,
  chunkAt,
  drainChannel,
  MiB,
  newAgentKey,
  rssOf,
  startGateway,
  type TestGateway,
  waitFor,
} from './helpers/tunnel-fixtures.js';

const WINDOW = TUNNEL_DEFAULTS.sessionWindowBytes;
// Garbage-collected buffers and gRPC/HTTP/2 bookkeeping come on top of the credit window.
const MEMORY_BOUND = WINDOW * 4 + 32 * MiB;
const STUCK_BYTES = 512 * MiB;
const BOTH_WAYS_BYTES = 64 * MiB;

const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });
const eof = () => create(SessionFrameSchema, { frame: { case: 'sshEof', value: {} } });

function open(server: TunnelServer, sessionId: string, command: ChildCommand) {
  return server.openSession({
    connection: 'bulk',
    sessionId,
    identity: JSON.stringify(command),
    target: { case: 'ssh', value: {} },
  });
}

/** Peak RSS of this process (the gateway) and of the agent child, sampled every 10 ms. */
class MemoryWatch {
  gatewayBase = rssOf('self');
  gatewayMax = 0;
  agentBase: number;
  #timer: NodeJS.Timeout;
  constructor(readonly child: AgentChild) {
    this.agentBase = child.stats?.rss ?? 0;
    child.maxRss = 0;
    this.#timer = setInterval(() => {
      this.gatewayMax = Math.max(this.gatewayMax, rssOf('self'));
    }, 10);
  }
  stop(): { gateway: number; agent: number } {
    clearInterval(this.#timer);
    this.gatewayMax = Math.max(this.gatewayMax, rssOf('self'));
    return { gateway: this.gatewayMax - this.gatewayBase, agent: this.child.maxRss - this.agentBase };
  }
}

describe('per-session flow control, agent in a child process', () => {
  let gw: TestGateway;
  let child: AgentChild;

  before(async () => {
    const { key, entry } = newAgentKey('bulk-agent');
    gw = await startGateway({ agents: [entry], connections: [{ name: 'bulk', type: 'ssh' }] });
    child = new AgentChild({
      address: gw.address,
      key,
      connections: [{ name: 'bulk', type: 'ssh' }],
      sourceBytes: STUCK_BYTES,
    });
    await waitFor('agent online', () => gw.server.agentFor('bulk'));
    await waitFor('child stats', () => child.stats);
  });

  after(async () => {
    await child.stop();
    await gw.server.stop(500);
  });

  /** One session moving `bytes` each way at once; checks both digests. */
  async function bothWays(id: string, bytes: number): Promise<void> {
    const { channel } = await open(gw.server, id, { mode: 'both', bytes });
    const received = drainChannel(channel);
    const h = createHash('sha256');
    for (let i = 0; i * CHUNK < bytes; i++) {
      const chunk = chunkAt(i);
      h.update(chunk);
      await channel.sendData(chunk, data);
    }
    channel.send(eof());
    const sentSha = h.digest('hex');
    const got = await received;
    const atAgent = await waitFor('agent received all', () => child.event('received', id));
    const agentSent = await waitFor('agent sent all', () => child.event('sent', id));
    assert.equal(got.bytes, bytes);
    assert.equal(got.sha256, agentSent['sha256']);
    assert.equal(atAgent['bytes'], bytes);
    assert.equal(atAgent['sha256'], sentSha);
    channel.close();
  }

  test('a stuck consumer holds its session at one window; another session moves 64 MiB each way', async () => {
    // Warm-up, so lazily built state (code, gRPC pools) is in the baseline, not the growth.
    await bothWays('warm-up', 8 * MiB);
    const watch = new MemoryWatch(child);
    const stuck = await open(gw.server, 'stuck', { mode: 'produce', bytes: STUCK_BYTES });
    let maxBuffered = 0;
    const sampler = setInterval(() => {
      maxBuffered = Math.max(maxBuffered, stuck.channel.bufferedBytes);
    }, 5);
    try {
      await waitFor('the stuck session to fill its window', () => child.session('stuck').sent >= WINDOW);
      await bothWays('second', BOTH_WAYS_BYTES);

      // Fresh stats from the child, taken after the other session completed.
      const before = child.stats;
      await waitFor('fresh child stats', () => child.stats !== before);
      maxBuffered = Math.max(maxBuffered, stuck.channel.bufferedBytes);
      assert.equal(stuck.channel.closed, false);
      assert.equal(stuck.channel.bufferedBytes, WINDOW);
      assert.ok(maxBuffered <= WINDOW, `gateway buffered ${maxBuffered} > window ${WINDOW}`);
      // The agent stopped producing at the window: not a byte more was handed to the tunnel.
      assert.equal(child.session('stuck').sent, WINDOW);
      const grown = watch.stop();
      assert.ok(grown.gateway < MEMORY_BOUND, `gateway RSS grew ${(grown.gateway / MiB).toFixed(1)} MiB`);
      assert.ok(grown.agent < MEMORY_BOUND, `agent RSS grew ${(grown.agent / MiB).toFixed(1)} MiB`);
      console.log(
        `# stuck+64MiB: gateway +${(grown.gateway / MiB).toFixed(1)} MiB, agent +${(grown.agent / MiB).toFixed(1)} MiB, max buffered ${maxBuffered}`,
      );

      // Now the consumer reads: all 512 MiB arrive, intact, with memory still bounded.
      const drainWatch = new MemoryWatch(child);
      const got = await drainChannel(stuck.channel);
      const sent = await waitFor('agent finished', () => child.event('sent', 'stuck'));
      const drained = drainWatch.stop();
      assert.equal(got.bytes, STUCK_BYTES);
      assert.equal(sent['bytes'], STUCK_BYTES);
      assert.equal(got.sha256, sent['sha256']);
      assert.ok(maxBuffered <= WINDOW);
      assert.ok(drained.gateway < MEMORY_BOUND, `gateway RSS grew ${(drained.gateway / MiB).toFixed(1)} MiB`);
      assert.ok(drained.agent < MEMORY_BOUND, `agent RSS grew ${(drained.agent / MiB).toFixed(1)} MiB`);
      console.log(
        `# 512MiB drain: gateway +${(drained.gateway / MiB).toFixed(1)} MiB, agent +${(drained.agent / MiB).toFixed(1)} MiB`,
      );
      stuck.channel.close();
    } finally {
      clearInterval(sampler);
    }
  });

  test('through real TCP sockets: a client that stops reading stalls the backend, bounded', async () => {
    const sourceEvent = await waitFor('child source port', () => child.event('source'));
    const channels: SessionChannel[] = [];
    // The gateway's listener for this test: each client socket becomes one tunnel session.
    const adapter: Server = createServer((socket) => {
      socket.on('error', () => {});
      void open(gw.server, `tcp-${channels.length}`, { mode: 'tcp', port: sourceEvent['port'] as number }).then(
        ({ channel }) => {
          channels.push(channel);
          channel.pipeFrom(socket, data);
          socket.on('end', () => channel.send(eof()));
          channel.onClose(() => socket.end());
          channel.onFrame((frame) => {
            if (frame.frame.case === 'sshData') channel.deliverTo(socket, frame.frame.value.data);
            else if (frame.frame.case === 'sshEof') socket.end();
          });
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((resolve) => adapter.listen(0, '127.0.0.1', resolve));
    const port = (adapter.address() as { port: number }).port;
    const client: Socket = netConnect(port, '127.0.0.1');
    client.pause();
    const watch = new MemoryWatch(child);
    try {
      await waitFor('session open', () => channels[0]);
      const channel = channels[0]!;
      let maxBuffered = 0;
      // Wait until the source has been still for 40 consecutive reports (≈1 s): the whole chain
      // pushes back. A liveness wait only; the assertions below are on byte counts.
      let last = -1;
      let still = 0;
      await waitFor(
        'the source to stop producing',
        () => {
          maxBuffered = Math.max(maxBuffered, channel.bufferedBytes);
          const now = child.stats?.sourceProduced ?? 0;
          still = now === last && now > 0 ? still + 1 : 0;
          last = now;
          return still >= 40;
        },
        30_000,
        25,
      );
      // Bytes may sit in four kernel socket buffers (two loopback TCP hops, each a send and a
      // receive buffer), at most their configured maxima; beyond that only the window.
      const maxOf = (f: string) => Number(readFileSync(f, 'utf8').trim().split(/\s+/)[2]);
      const kernel = 2 * (maxOf('/proc/sys/net/ipv4/tcp_rmem') + maxOf('/proc/sys/net/ipv4/tcp_wmem'));
      const produced = child.stats?.sourceProduced ?? 0;
      console.log(`# tcp stuck: source produced ${(produced / MiB).toFixed(1)} MiB of ${STUCK_BYTES / MiB}`);
      assert.ok(produced < STUCK_BYTES / 4, `source produced ${produced}`);
      assert.ok(produced <= WINDOW + kernel + 2 * MiB, `source produced ${produced}, kernel allowance ${kernel}`);
      assert.ok(maxBuffered <= WINDOW, `gateway buffered ${maxBuffered}`);
      assert.equal(channel.closed, false);

      // The client reads again: everything arrives, in order.
      const h = createHash('sha256');
      let bytes = 0;
      client.on('data', (chunk: Buffer) => {
        h.update(chunk);
        bytes += chunk.length;
      });
      const ended = new Promise<void>((resolve) => client.on('end', resolve));
      client.resume();
      await ended;
      const done = await waitFor('source finished', () => child.event('source-done'));
      const grown = watch.stop();
      assert.equal(bytes, STUCK_BYTES);
      assert.equal(h.digest('hex'), done['sha256']);
      assert.ok(grown.gateway < MEMORY_BOUND, `gateway RSS grew ${(grown.gateway / MiB).toFixed(1)} MiB`);
      assert.ok(grown.agent < MEMORY_BOUND, `agent RSS grew ${(grown.agent / MiB).toFixed(1)} MiB`);
      console.log(
        `# tcp 512MiB: gateway +${(grown.gateway / MiB).toFixed(1)} MiB, agent +${(grown.agent / MiB).toFixed(1)} MiB`,
      );
    } finally {
      watch.stop();
      client.destroy();
      for (const c of channels) c.close();
      await new Promise<void>((resolve) => adapter.close(() => resolve()));
    }
  });
});
