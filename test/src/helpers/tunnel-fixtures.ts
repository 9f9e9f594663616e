/**
 * Shared pieces of the tunnel end-to-end tests: a deterministic byte stream both processes can
 * produce and check, a gateway on a loopback port, an agent in a child process whose memory is
 * measured apart from the gateway's, and bounded waits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { TunnelServer, type TunnelServerOptions } from '@ward/gateway';
import { generateAgentKey, hashAgentKey, type SessionChannel } from '@ward/protocol';

export const MiB = 1024 * 1024;
export const CHUNK = 64 * 1024;

const BASE = (() => {
  const out = Buffer.alloc(CHUNK);
  let block = createHash('sha256').update('ward tunnel test').digest();
  for (let i = 0; i < CHUNK; i += block.length) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
})();

/**
 * Chunk `index` of the test stream: a pseudo-random block stamped with its index, so a lost,
 * repeated or reordered chunk changes the digest. A fresh buffer each time: writers may hold it.
 */
export function chunkAt(index: number, size = CHUNK): Buffer {
  const b = Buffer.allocUnsafe(size);
  BASE.copy(b, 0, 0, size);
  b.writeUInt32LE(index >>> 0, 0);
  b[size - 1] = index & 0xff;
  return b;
}

/** Resident set size of a process, from /proc (the kernel's view, GC state notwithstanding). */
export function rssOf(pid: number | 'self'): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Polls `check` until it returns a value other than undefined/false; rejects past the deadline. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  deadlineMs = 15_000,
  everyMs = 20,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface TestGateway {
  server: TunnelServer;
  port: number;
  address: string;
  events: Array<import('@ward/gateway').TunnelEvent>;
}

export async function startGateway(
  options: Partial<TunnelServerOptions> & Pick<TunnelServerOptions, 'agents' | 'connections'>,
): Promise<TestGateway> {
  const events: TestGateway['events'] = [];
  const server = new TunnelServer({
    address: '127.0.0.1:0',
    insecure: true,
    // Short keepalives so a lost agent is noticed within the tests' deadlines.
    keepaliveIntervalMs: 1_000,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const { port } = await server.start();
  return { server, port, address: `127.0.0.1:${port}`, events };
}

export function newAgentKey(name: string): { key: string; entry: { name: string; keyHash: string } } {
  const key = generateAgentKey();
  return { key, entry: { name, keyHash: hashAgentKey(key) } };
}

/** What the agent child does with a session; sent in SessionStart.identity as JSON. */
export type ChildCommand =
  | { mode: 'produce'; bytes: number }
  | { mode: 'both'; bytes: number }
  | { mode: 'tcp'; port: number }
  | { mode: 'hold' };

export interface ChildConfig {
  address: string;
  key: string;
  connections: Array<{ name: string; type: 'postgres' | 'ssh' | 'http' }>;
  /** Bytes the child's own TCP source server streams to each connection it accepts. */
  sourceBytes?: number;
}

export interface ChildStats {
  type: 'stats';
  rss: number;
  state: string;
  sessions: Record<string, { sent: number; received: number }>;
  sourceProduced: number;
}

export interface ChildEvent {
  type: string;
  [k: string]: unknown;
}

/** The agent in its own process, reporting stats every 25 ms and events as JSON lines. */
export class AgentChild {
  readonly proc: ChildProcess;
  readonly events: ChildEvent[] = [];
  stats: ChildStats | undefined;
  maxRss = 0;
  #exited: Promise<void>;

  constructor(config: ChildConfig) {
    const script = new URL('./agent-child.js', import.meta.url).pathname;
    this.proc = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#exited = new Promise((resolve) => this.proc.once('exit', () => resolve()));
    const lines = createInterface({ input: this.proc.stdout! });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as ChildEvent;
      if (msg.type === 'stats') {
        this.stats = msg as unknown as ChildStats;
        this.maxRss = Math.max(this.maxRss, this.stats.rss);
      } else this.events.push(msg);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  event(type: string, session?: string): ChildEvent | undefined {
    return this.events.find((e) => e.type === type && (session === undefined || e['session'] === session));
  }

  session(id: string): { sent: number; received: number } {
    return this.stats?.sessions[id] ?? { sent: 0, received: 0 };
  }

  /** Asks the child to stop its agent and exit; kills it if it does not within 5 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.stdin?.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** Reads a channel's SshData to its SshEof, returning credit as it goes. */
export function drainChannel(channel: SessionChannel): Promise<{ bytes: number; sha256: string }> {
  const h = createHash('sha256');
  let bytes = 0;
  return new Promise((resolve, reject) => {
    channel.onClose((reason) => reject(reason ?? new Error('closed before EOF')));
    channel.onFrame((frame) => {
      if (frame.frame.case === 'sshData') {
        h.update(frame.frame.value.data);
        bytes += frame.frame.value.data.byteLength;
        channel.delivered(frame.frame.value.data.byteLength);
      } else if (frame.frame.case === 'sshEof') resolve({ bytes, sha256: h.digest('hex') });
    });
  });
}
