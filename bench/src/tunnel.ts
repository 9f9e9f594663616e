/**
 * Tunnel benchmark: the gateway⇄agent gRPC tunnel against a plain two-hop TCP relay, side by
 * side in one run, all on loopback.
 *
 *   relay:  client → relay1 ──TCP──> relay2 → backend          (node:net piping)
 *   tunnel: client → gateway adapter ══gRPC tunnel══> agent → backend
 *
 * The two hops run in two child processes in both cases (relay1/gateway, relay2/agent), as
 * they would on two hosts; the client and the backend share the parent process. The gateway
 * adapter turns each client socket into one tunnel session carrying raw bytes as SshData
 * frames, with the same pipeFrom/deliverTo calls a protocol session uses.
 *
 * Measures bulk throughput of one session each way (1 GiB or 30 s, whichever first), in rounds
 * that alternate the two paths, the CPU time each hop process spent per MiB (from /proc, so it
 * holds on a loaded machine too), and the round-trip time of a 64-byte message echoed by the
 * backend (p50/p99 over 10 000 trips per path, in interleaved blocks).
 *
 *   node bench/dist/tunnel.js [--bytes N] [--trips N] [--rounds N] [--window BYTES]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { TunnelClient } from '@ward/agent';
import { TunnelServer } from '@ward/gateway';
import {
  create,
  generateAgentKey,
  hashAgentKey,
  type SessionChannel,
  SessionFrameSchema,
  TUNNEL_DEFAULTS,
} from '@ward/protocol';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const TIME_CAP_MS = 30_000;

const dataFrame = (bytes: Uint8Array) =>
  create(SessionFrameSchema, { frame: { case: 'sshData', value: { data: bytes } } });
const eofFrame = () => create(SessionFrameSchema, { frame: { case: 'sshEof', value: {} } });

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

/** Socket ⇄ session, both ways, with half-close carried as SshEof. */
function bridge(socket: Socket, channel: SessionChannel): void {
  socket.setNoDelay(true);
  socket.on('error', () => channel.close());
  channel.onClose(() => socket.destroy());
  channel.pipeFrom(socket, dataFrame);
  socket.on('end', () => channel.send(eofFrame()));
  channel.onFrame((frame) => {
    if (frame.frame.case === 'sshData') channel.deliverTo(socket, frame.frame.value.data);
    else if (frame.frame.case === 'sshEof') socket.end();
  });
}

// ------------------------------------------------------------------ child roles

async function relayRole(target: number): Promise<void> {
  const server = createServer((inbound) => {
    inbound.setNoDelay(true);
    const outbound = netConnect(target, '127.0.0.1');
    outbound.setNoDelay(true);
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  console.log(JSON.stringify({ port: await listen(server) }));
}

async function gatewayRole(keyHash: string, windowBytes: number): Promise<void> {
  const tunnel = new TunnelServer({
    address: '127.0.0.1:0',
    insecure: true,
    agents: [{ name: 'bench', keyHash }],
    connections: [{ name: 'bench', type: 'ssh' }],
    sessionWindowBytes: windowBytes,
  });
  const { port: tunnelPort } = await tunnel.start();
  const server = createServer((socket) => {
    socket.pause();
    tunnel.openSession({ connection: 'bench', identity: 'bench', target: { case: 'ssh', value: {} } }).then(
      ({ channel }) => {
        bridge(socket, channel);
        socket.resume();
      },
      () => socket.destroy(),
    );
  });
  console.log(JSON.stringify({ port: await listen(server), tunnelPort }));
}

function agentRole(gatewayPort: number, key: string, target: number): void {
  const client = new TunnelClient({
    address: `127.0.0.1:${gatewayPort}`,
    insecure: true,
    key,
    connections: [{ name: 'bench', type: 'ssh' }],
    onSession: (_start, channel) => {
      const socket = netConnect(target, '127.0.0.1', () => {
        channel.send(
          create(SessionFrameSchema, { frame: { case: 'ready', value: { detail: { case: 'ssh', value: {} } } } }),
        );
      });
      bridge(socket, channel);
    },
  });
  client.on('online', () => console.log(JSON.stringify({ online: true })));
  client.start();
}

// ------------------------------------------------------------------ parent

interface Child {
  proc: ChildProcess;
  first: Promise<Record<string, number | boolean>>;
}

function child(args: string[]): Child {
  // execArgv passes flags such as --cpu-prof on to the hops.
  const proc = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout! });
  const first = once(lines, 'line').then(([line]) => JSON.parse(line as string) as Record<string, number | boolean>);
  return { proc, first };
}

/** Closes the hop's stdin (it exits cleanly, writing a profile if asked); kills it after 5 s. */
async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null) return;
  const exited = once(c.proc, 'exit');
  c.proc.stdin?.end();
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The backend: the first byte picks a mode. 'U' counts an upload to its end; 'D' streams the
 * 8-byte big-endian length that follows; 'E' echoes.
 */
function backend(onUploadDone: (bytes: number) => void): Server {
  const payload = Buffer.alloc(CHUNK, 0x5a);
  return createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.once('readable', function first() {
      const head = socket.read(1) as Buffer | null;
      if (!head) {
        socket.once('readable', first);
        return;
      }
      const mode = String.fromCharCode(head[0] ?? 0);
      if (mode === 'E') {
        socket.pipe(socket);
      } else if (mode === 'U') {
        let bytes = 0;
        socket.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        socket.on('end', () => {
          onUploadDone(bytes);
          socket.end();
        });
      } else if (mode === 'D') {
        const readLength = () => {
          const n = socket.read(8) as Buffer | null;
          if (!n) {
            socket.once('readable', readLength);
            return;
          }
          let left = Number(n.readBigUInt64BE());
          const pump = () => {
            while (left > 0 && !socket.destroyed) {
              const chunk = left >= CHUNK ? payload : payload.subarray(0, left);
              left -= chunk.length;
              if (!socket.write(chunk)) {
                socket.once('drain', pump);
                return;
              }
            }
            socket.end();
          };
          socket.resume();
          pump();
        };
        readLength();
      }
    });
  });
}

async function connectTo(port: number): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1');
  s.setNoDelay(true);
  await once(s, 'connect');
  return s;
}

async function upload(port: number, total: number, uploadDone: () => Promise<number>): Promise<[number, number]> {
  const s = await connectTo(port);
  const payload = Buffer.alloc(CHUNK, 0xa5);
  const done = uploadDone();
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + TIME_CAP_MS;
  let sent = 0;
  s.write('U');
  s.resume();
  while (sent < total && Date.now() < deadline) {
    const n = Math.min(CHUNK, total - sent);
    sent += n;
    if (!s.write(n === CHUNK ? payload : payload.subarray(0, n))) await once(s, 'drain');
  }
  s.end();
  const bytes = await done;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  s.destroy();
  return [bytes, seconds];
}

async function download(port: number, total: number): Promise<[number, number]> {
  const s = await connectTo(port);
  const head = Buffer.alloc(9);
  head.write('D', 0);
  head.writeBigUInt64BE(BigInt(total), 1);
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + TIME_CAP_MS;
  let bytes = 0;
  s.write(head);
  s.on('data', (c: Buffer) => {
    bytes += c.length;
    if (Date.now() > deadline) s.destroy();
  });
  await Promise.race([once(s, 'end'), once(s, 'close')]);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  s.destroy();
  return [bytes, seconds];
}

async function latency(port: number, trips: number): Promise<{ samples: number[] }> {
  const s = await connectTo(port);
  s.write('E');
  const msg = Buffer.alloc(64, 0x42);
  const samples: number[] = [];
  const deadline = Date.now() + TIME_CAP_MS;
  let pending = 0;
  let wake: (() => void) | undefined;
  s.on('data', (c: Buffer) => {
    pending -= c.length;
    if (pending <= 0) wake?.();
  });
  for (let i = 0; i < trips && Date.now() < deadline; i++) {
    const t0 = process.hrtime.bigint();
    pending = msg.length;
    const echoed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    s.write(msg);
    await echoed;
    samples.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  s.destroy();
  return { samples };
}

/** CPU seconds (user + system) a process has used, from /proc (any process, no cooperation). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
}

interface Path {
  name: string;
  port: number;
  hops: Child[];
  up: Array<{ mibs: number; cpuMsPerMiB: number[]; bytes: number }>;
  down: Array<{ mibs: number; cpuMsPerMiB: number[]; bytes: number }>;
  rtt: number[];
}

async function timed(path: Path, run: () => Promise<[number, number]>) {
  const pids = path.hops.map((h) => h.proc.pid!);
  const before = pids.map(cpuSeconds);
  const [bytes, seconds] = await run();
  const cpu = pids.map((pid, i) => cpuSeconds(pid) - (before[i] ?? 0));
  return { bytes, mibs: bytes / MiB / seconds, cpuMsPerMiB: cpu.map((c) => (c * 1000) / (bytes / MiB)) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
};
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

async function main(): Promise<void> {
  const total = Number(arg('bytes', String(1024 * MiB)));
  const trips = Number(arg('trips', '10000'));
  const rounds = Number(arg('rounds', '3'));
  const windowBytes = Number(arg('window', String(TUNNEL_DEFAULTS.sessionWindowBytes)));
  let uploadResolve: ((n: number) => void) | undefined;
  const nextUpload = () =>
    new Promise<number>((resolve) => {
      uploadResolve = resolve;
    });
  const back = backend((n) => uploadResolve?.(n));
  const backPort = await listen(back);
  const load0 = loadavg();

  const r2 = child(['--role', 'relay', '--target', String(backPort)]);
  const r1 = child(['--role', 'relay', '--target', String((await r2.first)['port'])]);
  const key = generateAgentKey();
  const gw = child(['--role', 'gateway', '--key-hash', hashAgentKey(key), '--window', String(windowBytes)]);
  const gwInfo = await gw.first;
  const agent = child([
    '--role',
    'agent',
    '--gateway',
    String(gwInfo['tunnelPort']),
    '--key',
    key,
    '--target',
    String(backPort),
  ]);
  await agent.first;
  const paths: Path[] = [
    { name: 'tcp relay (2 hops)', port: (await r1.first)['port'] as number, hops: [r1, r2], up: [], down: [], rtt: [] },
    { name: 'ward tunnel', port: gwInfo['port'] as number, hops: [gw, agent], up: [], down: [], rtt: [] },
  ];
  try {
    // Warm-up, so JIT and connection set-up are not in the figures.
    for (const path of paths) {
      await upload(path.port, 32 * MiB, nextUpload);
      await download(path.port, 32 * MiB);
    }
    // Rounds interleave the two paths so a change in machine load hits both alike.
    for (let round = 0; round < rounds; round++) {
      for (const path of paths) {
        path.up.push(await timed(path, () => upload(path.port, total, nextUpload)));
        path.down.push(await timed(path, () => download(path.port, total)));
      }
    }
    const block = Math.max(1, Math.ceil(trips / 10));
    for (let done = 0; done < trips; done += block) {
      for (const path of paths) path.rtt.push(...(await latency(path.port, Math.min(block, trips - done))).samples);
    }
  } finally {
    await Promise.all([r1, r2, gw, agent].map(stopChild));
    back.close();
  }
  const load1 = loadavg();

  console.log(
    `tunnel bench: ${total / MiB} MiB per direction per round (30 s cap), ${rounds} rounds interleaved, ` +
      `${trips} × 64 B round trips per path; session window ${windowBytes / 1024} KiB, ` +
      `max frame ${TUNNEL_DEFAULTS.maxFrameBytes / 1024} KiB, HTTP/2 window ${TUNNEL_DEFAULTS.http2WindowBytes / MiB} MiB`,
  );
  console.log(
    '| path | upload MiB/s | download MiB/s | hop CPU ms/MiB up (hop1+hop2) | hop CPU ms/MiB down | RTT p50 µs | RTT p99 µs |',
  );
  console.log('|---|---|---|---|---|---|---|');
  const cpu = (runs: Path['up'], hop: number) => median(runs.map((r) => r.cpuMsPerMiB[hop] ?? Number.NaN)).toFixed(2);
  for (const p of paths) {
    console.log(
      `| ${p.name} | ${median(p.up.map((r) => r.mibs)).toFixed(0)} | ${median(p.down.map((r) => r.mibs)).toFixed(0)} ` +
        `| ${cpu(p.up, 0)}+${cpu(p.up, 1)} | ${cpu(p.down, 0)}+${cpu(p.down, 1)} ` +
        `| ${quantile(p.rtt, 0.5).toFixed(0)} | ${quantile(p.rtt, 0.99).toFixed(0)} |`,
    );
  }
  const [relay, tunnel] = paths;
  if (relay && tunnel) {
    const ratio = (a: Path['up'], b: Path['up']) =>
      (median(a.map((r) => r.mibs)) / median(b.map((r) => r.mibs))).toFixed(2);
    console.log(
      `tunnel/relay throughput (medians): upload ${ratio(tunnel.up, relay.up)}×, download ${ratio(tunnel.down, relay.down)}×`,
    );
    console.log(
      `per-round upload MiB/s relay/tunnel: ${relay.up.map((r, i) => `${r.mibs.toFixed(0)}/${tunnel.up[i]?.mibs.toFixed(0)}`).join(' ')}`,
    );
    console.log(
      `per-round download MiB/s relay/tunnel: ${relay.down.map((r, i) => `${r.mibs.toFixed(0)}/${tunnel.down[i]?.mibs.toFixed(0)}`).join(' ')}`,
    );
  }
  for (const p of paths) {
    for (const r of [...p.up, ...p.down])
      if (r.bytes < total) console.log(`note: ${p.name} hit the 30 s cap at ${r.bytes} bytes`);
  }
  console.log(
    `load average before: ${load0.map((x) => x.toFixed(2)).join(' ')}, after: ${load1.map((x) => x.toFixed(2)).join(' ')} (${cpus().length} CPUs)`,
  );
}

const role = arg('role', '');
if (role === 'relay') await relayRole(Number(arg('target', '0')));
else if (role === 'gateway')
  await gatewayRole(arg('key-hash', ''), Number(arg('window', String(TUNNEL_DEFAULTS.sessionWindowBytes))));
else if (role === 'agent') agentRole(Number(arg('gateway', '0')), arg('key', ''), Number(arg('target', '0')));
else await main();

if (role) {
  // A hop lives until the parent closes its stdin (or dies).
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
