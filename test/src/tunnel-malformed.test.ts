/**
 * Invariant 6 on the tunnel: garbage, oversized frames and credit violations end only the
 * offending call, with a clear status, while a real agent's transfer goes on intact.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  AGENT_KEY_METADATA,
  AgentMessageSchema,
  ConnectionType,
  create,
  fromBinary,
  fromGrpcError,
  GatewayMessageSchema,
  grpcMessageLimit,
  type SessionFrame,
  SessionFrameSchema,
  TUNNEL_DEFAULTS,
  toBinary,
  type WardError,
} from '@ward/protocol';
import {
  AgentChild,
  drainChannel,
  MiB,
  newAgentKey,
  startGateway,
  type TestGateway,
  waitFor,
} from './helpers/tunnel-fixtures.js';

const identity = (b: Buffer) => b;
const rawMethod = (name: string) => ({
  path: `/ward.tunnel.v1.Tunnel/${name}`,
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
type RawCall = grpc.ClientDuplexStream<Buffer, Buffer>;
type RawClient = grpc.Client & { control(md: grpc.Metadata): RawCall; session(md: grpc.Metadata): RawCall };
const RawTunnel = grpc.makeGenericClientConstructor(
  { control: rawMethod('Control'), session: rawMethod('Session') },
  'RawTunnel',
) as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
) => RawClient;

function metadata(key: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(AGENT_KEY_METADATA, key);
  return md;
}

/** Resolves with the status a raw call ends with. */
function ended(call: RawCall): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on('error', () => {});
    call.on('status', resolve);
    call.on('data', () => {});
  });
}

const frame = (init: Parameters<typeof create<typeof SessionFrameSchema>>[1]) =>
  Buffer.from(toBinary(SessionFrameSchema, create(SessionFrameSchema, init)));

/** A hand-driven agent: Control with a proper Hello, then whatever the test writes. */
async function rawAgent(gw: TestGateway, key: string, connection: string) {
  const client = new RawTunnel(gw.address, grpc.credentials.createInsecure());
  const control = client.control(metadata(key));
  control.on('error', () => {});
  const welcomed = new Promise<void>((resolve) =>
    control.on('data', (b: Buffer) => {
      if (fromBinary(GatewayMessageSchema, b).msg.case === 'welcome') resolve();
    }),
  );
  control.write(
    Buffer.from(
      toBinary(
        AgentMessageSchema,
        create(AgentMessageSchema, {
          msg: {
            case: 'hello',
            value: { agentVersion: 'raw', connections: [{ name: connection, type: ConnectionType.SSH }] },
          },
        }),
      ),
    ),
  );
  await welcomed;
  // Keepalive pings, or the gateway's watchdog drops this agent after three silent intervals.
  const ping = Buffer.from(
    toBinary(AgentMessageSchema, create(AgentMessageSchema, { msg: { case: 'ping', value: { nonce: 1n } } })),
  );
  const pinger = setInterval(() => control.write(ping), 250);
  const stop = () => {
    clearInterval(pinger);
    control.end();
    client.close();
  };
  return { client, control, stop };
}

describe('malformed and oversized input on the tunnel', () => {
  let gw: TestGateway;
  let child: AgentChild;
  const good = newAgentKey('good');
  const raw = newAgentKey('raw');
  const limit = grpcMessageLimit(TUNNEL_DEFAULTS.maxFrameBytes);

  before(async () => {
    gw = await startGateway({
      agents: [good.entry, raw.entry],
      sessionStartTimeoutMs: 3_000,
      connections: [
        { name: 'bulk', type: 'ssh' },
        { name: 'raw-conn', type: 'ssh' },
        { name: 'nobody', type: 'ssh' },
      ],
    });
    child = new AgentChild({ address: gw.address, key: good.key, connections: [{ name: 'bulk', type: 'ssh' }] });
    await waitFor('good agent online', () => gw.server.agentFor('bulk'));
  });

  after(async () => {
    await child.stop();
    await gw.server.stop(500);
  });

  test('garbage and oversized messages end their own call only; a concurrent transfer completes intact', async () => {
    const BYTES = 128 * MiB;
    const { channel } = await gw.server.openSession({
      connection: 'bulk',
      sessionId: 'good',
      identity: JSON.stringify({ mode: 'produce', bytes: BYTES }),
      target: { case: 'ssh', value: {} },
    });
    const transfer = drainChannel(channel);
    await waitFor('transfer under way', () => child.session('good').sent > 4 * MiB);

    const { client, stop } = await rawAgent(gw, raw.key, 'raw-conn');
    try {
      // Field 1 with wire type 7: no protobuf decoder accepts it.
      const garbage = Buffer.from([0x0f, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]);
      const statuses: Record<string, grpc.StatusObject> = {};

      const badControl = client.control(metadata(raw.key));
      const badControlEnd = ended(badControl);
      badControl.write(garbage);
      statuses['control garbage'] = await badControlEnd;

      // grpc-js reads an idle Session stream only once the gateway starts a session on it, so
      // the bad bytes surface then: that start fails, the agent's call gets the status.
      const startOnRaw = () =>
        gw.server.openSession({ connection: 'raw-conn', identity: 't', target: { case: 'ssh', value: {} } });
      const badSession = client.session(metadata(raw.key));
      const badSessionEnd = ended(badSession);
      badSession.write(garbage);
      await waitFor('idle stream registered', () => true);
      const startErrors: Record<string, string> = {};
      await startOnRaw().then(
        () => assert.fail('a session started on a garbage stream'),
        (err: WardError) => {
          startErrors['garbage'] = err.code;
        },
      );
      statuses['session garbage'] = await badSessionEnd;

      const bigSession = client.session(metadata(raw.key));
      const bigEnd = ended(bigSession);
      bigSession.write(Buffer.alloc(limit + 1024, 0x0a));
      await startOnRaw().then(
        () => assert.fail('a session started on an oversized stream'),
        (err: WardError) => {
          startErrors['oversized'] = err.code;
        },
      );
      statuses['session oversized'] = await bigEnd;
      assert.deepEqual(startErrors, { garbage: 'ERR_TUNNEL_CLOSED', oversized: 'ERR_TUNNEL_CLOSED' });

      const bigControl = client.control(metadata(raw.key));
      const bigControlEnd = ended(bigControl);
      bigControl.write(Buffer.alloc(limit + 1024));
      statuses['control oversized'] = await bigControlEnd;

      const noKey = client.session(new grpc.Metadata());
      const noKeyEnd = ended(noKey);
      noKey.write(garbage);
      statuses['session without key'] = await noKeyEnd;

      const codes = Object.fromEntries(Object.entries(statuses).map(([k, s]) => [k, grpc.status[s.code]]));
      assert.deepEqual(codes, {
        'control garbage': 'INTERNAL',
        'session garbage': 'INTERNAL',
        'session oversized': 'RESOURCE_EXHAUSTED',
        'control oversized': 'RESOURCE_EXHAUSTED',
        'session without key': 'UNAUTHENTICATED',
      });
      // And the agent side maps them to stable codes.
      assert.equal(fromGrpcError(statuses['session garbage']).code, 'ERR_TUNNEL_MALFORMED_FRAME');
      assert.equal(fromGrpcError(statuses['session oversized']).code, 'ERR_TUNNEL_FRAME_TOO_LARGE');
      assert.match(statuses['session without key']?.details ?? '', /^ERR_TUNNEL_AGENT_KEY_INVALID/);

      const got = await transfer;
      const sent = await waitFor('agent finished', () => child.event('sent', 'good'));
      assert.equal(got.bytes, BYTES);
      assert.equal(got.sha256, sent['sha256']);
      // The raw agent's own Control stream survived its other calls' failures.
      assert.equal(gw.server.agentFor('raw-conn'), 'raw');
      assert.equal(gw.server.agentFor('bulk'), 'good');
      channel.close();
    } finally {
      stop();
    }
  });

  test('an agent that sends beyond its credit: ERR_TUNNEL_FLOW_VIOLATION on both ends', async () => {
    const { client, stop } = await rawAgent(gw, raw.key, 'raw-conn');
    try {
      const session = client.session(metadata(raw.key));
      session.on('error', () => {});
      const fromGateway: SessionFrame[] = [];
      const started = new Promise<void>((resolve) =>
        session.on('data', (b: Buffer) => {
          const f = fromBinary(SessionFrameSchema, b);
          fromGateway.push(f);
          if (f.frame.case === 'start') resolve();
        }),
      );
      const opened = gw.server.openSession({
        connection: 'raw-conn',
        identity: 't',
        target: { case: 'ssh', value: {} },
      });
      await started;
      session.write(frame({ frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }));
      const { channel } = await opened;
      channel.onFrame(() => {}); // a consumer that never reads: credit never comes back
      const closed = new Promise<WardError | undefined>((resolve) => channel.onClose(resolve));
      const chunk = Buffer.alloc(TUNNEL_DEFAULTS.maxFrameBytes);
      for (let sent = 0; sent <= TUNNEL_DEFAULTS.sessionWindowBytes; sent += chunk.length) {
        session.write(frame({ frame: { case: 'sshData', value: { data: chunk } } }));
      }
      const reason = await closed;
      assert.equal(reason?.code, 'ERR_TUNNEL_FLOW_VIOLATION');
      await waitFor('close frame at the agent', () => fromGateway.some((f) => f.frame.case === 'close'));
      const close = fromGateway.find((f) => f.frame.case === 'close');
      assert.ok(close?.frame.case === 'close');
      assert.equal(close.frame.value.error?.code, 'ERR_TUNNEL_FLOW_VIOLATION');
      assert.ok(channel.bufferedBytes > TUNNEL_DEFAULTS.sessionWindowBytes);
      await waitFor('session released', () => gw.server.sessionCount === 0);
      session.end();
    } finally {
      stop();
    }
  });

  test('garbage in the middle of a started session ends that session on the gateway with a code', async () => {
    const { client, stop } = await rawAgent(gw, raw.key, 'raw-conn');
    try {
      const session = client.session(metadata(raw.key));
      const status = ended(session);
      const started = new Promise<void>((resolve) =>
        session.on('data', (b: Buffer) => {
          if (fromBinary(SessionFrameSchema, b).frame.case === 'start') resolve();
        }),
      );
      const opened = gw.server.openSession({
        connection: 'raw-conn',
        identity: 't',
        target: { case: 'ssh', value: {} },
      });
      await started;
      session.write(frame({ frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }));
      const { channel } = await opened;
      const got: number[] = [];
      channel.onFrame((f) => {
        if (f.frame.case === 'sshData') {
          got.push(f.frame.value.data.byteLength);
          channel.delivered(f.frame.value.data.byteLength);
        }
      });
      const closed = new Promise<WardError | undefined>((resolve) => channel.onClose(resolve));
      session.write(frame({ frame: { case: 'sshData', value: { data: Buffer.alloc(10) } } }));
      session.write(Buffer.from([0x0f, 0xff, 0xff]));
      const reason = await closed;
      assert.equal(reason?.code, 'ERR_TUNNEL_CLOSED');
      assert.deepEqual(got, [10]);
      assert.equal(grpc.status[(await status).code], 'INTERNAL');
      await waitFor('session released', () => gw.server.sessionCount === 0);
    } finally {
      stop();
    }
  });

  test('openSession: unknown connection → ERR_CONN_UNKNOWN, known but no agent → ERR_AGENT_OFFLINE', async () => {
    const start = (connection: string) =>
      gw.server.openSession({ connection, identity: 't', target: { case: 'ssh', value: {} } });
    await assert.rejects(start('no-such-connection'), (err: WardError) => {
      assert.equal(err.code, 'ERR_CONN_UNKNOWN');
      assert.equal(err.kind, 'not_found');
      return true;
    });
    await assert.rejects(start('nobody'), (err: WardError) => {
      assert.equal(err.code, 'ERR_AGENT_OFFLINE');
      assert.equal(err.kind, 'unavailable');
      return true;
    });
  });
});
