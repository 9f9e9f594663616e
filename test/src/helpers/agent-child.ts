/**
 * A real TunnelClient in its own process, so the tests measure the agent's memory apart from
 * the gateway's. Configured by argv[2] (ChildConfig as JSON); each session's SessionStart
 * identity is a ChildCommand. Reports JSON lines on stdout; exits when stdin closes.
 */
import { createHash } from 'node:crypto';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { TunnelClient } from '@ward/agent';
import { create, type SessionChannel, type SessionFrame, SessionFrameSchema, type SessionStart } from '@ward/protocol';
import { CHUNK, type ChildCommand, type ChildConfig, chunkAt, rssOf } from './tunnel-fixtures.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const sessions: Record<string, { sent: number; received: number }> = {};
let sourceProduced = 0;

const emit = (msg: object) => process.stdout.write(`${JSON.stringify(msg)}\n`);
const data = (bytes: Uint8Array) => create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });
const eof = () => create(SessionFrameSchema, { frame: { case: 'sshEof', value: {} } });
const ready = () =>
  create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } });

async function produce(channel: SessionChannel, counters: { sent: number }, bytes: number): Promise<string> {
  const h = createHash('sha256');
  for (let i = 0; i * CHUNK < bytes; i++) {
    const chunk = chunkAt(i);
    h.update(chunk);
    await channel.sendData(chunk, data);
    counters.sent += chunk.length;
  }
  channel.send(eof());
  return h.digest('hex');
}

function consume(id: string, channel: SessionChannel, counters: { received: number }): void {
  const h = createHash('sha256');
  channel.onFrame((frame: SessionFrame) => {
    if (frame.frame.case === 'sshData') {
      h.update(frame.frame.value.data);
      counters.received += frame.frame.value.data.byteLength;
      channel.delivered(frame.frame.value.data.byteLength);
    } else if (frame.frame.case === 'sshEof') {
      emit({ type: 'received', session: id, bytes: counters.received, sha256: h.digest('hex') });
    }
  });
}

function onSession(start: SessionStart, channel: SessionChannel): void {
  const id = start.sessionId;
  const counters = { sent: 0, received: 0 };
  sessions[id] = counters;
  channel.onClose((reason) => emit({ type: 'closed', session: id, code: reason?.code ?? null }));
  const command = JSON.parse(start.identity) as ChildCommand;
  switch (command.mode) {
    case 'produce':
    case 'both':
      channel.send(ready());
      if (command.mode === 'both') consume(id, channel, counters);
      produce(channel, counters, command.bytes).then(
        (sha256) => emit({ type: 'sent', session: id, bytes: counters.sent, sha256 }),
        (err: { code?: string }) => emit({ type: 'send-failed', session: id, code: err.code ?? String(err) }),
      );
      return;
    case 'hold':
      channel.send(ready());
      consume(id, channel, counters);
      return;
    case 'tcp': {
      const socket: Socket = netConnect(command.port, '127.0.0.1', () => channel.send(ready()));
      socket.on('error', () => channel.close());
      channel.onClose(() => socket.destroy());
      channel.pipeFrom(socket, data, (chunk) => {
        counters.sent += chunk.length;
      });
      socket.on('end', () => {
        channel.send(eof());
        channel.close();
      });
      channel.onFrame((frame) => {
        if (frame.frame.case === 'sshData') {
          counters.received += frame.frame.value.data.byteLength;
          channel.deliverTo(socket, frame.frame.value.data);
        } else if (frame.frame.case === 'sshEof') socket.end();
      });
      return;
    }
  }
}

// A backend that streams the test pattern and honours back-pressure: `sourceProduced` counts
// the bytes its socket accepted, so a plateau shows the whole chain pushed back.
const source = createServer((socket) => {
  const total = config.sourceBytes ?? 0;
  const h = createHash('sha256');
  let i = 0;
  const pump = () => {
    while (i * CHUNK < total) {
      const chunk = chunkAt(i++);
      h.update(chunk);
      sourceProduced += chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    emit({ type: 'source-done', bytes: sourceProduced, sha256: h.digest('hex') });
    socket.end();
  };
  socket.on('error', () => {});
  pump();
});
source.listen(0, '127.0.0.1', () => {
  const addr = source.address();
  emit({ type: 'source', port: typeof addr === 'object' && addr ? addr.port : 0 });
});

const client = new TunnelClient({
  address: config.address,
  insecure: true,
  key: config.key,
  connections: config.connections,
  initialDelayMs: 100,
  maxDelayMs: 1_000,
  keepaliveIntervalMs: 1_000,
  onSession,
});
client.on('state', (state: string) => emit({ type: 'state', state }));
client.on('refused', (err: { code: string }) => emit({ type: 'refused', code: err.code }));
client.start();

const timer = setInterval(
  () => emit({ type: 'stats', rss: rssOf('self'), state: client.state, sessions, sourceProduced }),
  25,
);

process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(timer);
  source.close();
  void client.stop().then(() => process.exit(0));
});
