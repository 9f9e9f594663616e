/**
 * CPU time of processes read from /proc, so each process's share is measured apart from the
 * others on the same cores (and holds on a loaded machine, where wall-clock rates do not).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Stat {
  ppid: number;
  /** utime + stime of the process (all its threads), in seconds. */
  own: number;
  /** cutime + cstime: children it has already waited for, in seconds. */
  reaped: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseStat(text);
}

/** Parses /proc/PID/stat; the command name may hold spaces and parentheses, hence the last ')'. */
export function parseStat(text: string): Stat {
  // Fields after the name start at field 3 (state); field n is rest[n - 3] (proc(5)).
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number) => Number(rest[n - 3] ?? 'NaN');
  return {
    ppid: field(4),
    own: (field(14) + field(15)) / CLK_TCK,
    reaped: (field(16) + field(17)) / CLK_TCK,
  };
}

/** CPU seconds a live process has used so far (all threads). */
export function processSeconds(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone: cannot read its CPU time`);
  return stat.own;
}

/**
 * CPU seconds of a process and all its children, live or exited: a parent's cutime/cstime
 * holds what its reaped children used, so backends that ended between two readings are still
 * counted (the postmaster reaps every backend). A child reaped while the children are being
 * read would be missed or counted twice, so the scan is repeated until the parent's reaped
 * time did not move during it.
 */
export function treeSeconds(rootPid: number): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const before = readStat(rootPid);
    if (!before) throw new Error(`process ${rootPid} is gone: cannot read its CPU time`);
    let total = before.own + before.reaped;
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === rootPid) continue;
      const stat = readStat(pid);
      if (stat?.ppid === rootPid) total += stat.own + stat.reaped;
    }
    if (readStat(rootPid)?.reaped === before.reaped) return total;
  }
  throw new Error(`the children of process ${rootPid} never held still long enough to be counted`);
}

export interface Measured {
  code: number | null;
  /** Whole stdout, or only its last 4 KiB when `countOnly`. */
  stdout: string;
  stdoutBytes: number;
  stderr: string;
  /** CPU seconds the command used (from its parent shell's cutime/cstime after the wait). */
  cpuSeconds: number;
  wallSeconds: number;
}

/**
 * Runs a command under `sh`, which reports the command's CPU time from its own /proc stat once
 * the command has been reaped (written on fd 3). Bounded by `timeoutMs`.
 */
export function runMeasured(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number; countOnly?: boolean },
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('sh', ['-c', '"$@"; rc=$?; cat /proc/$$/stat >&3; exit $rc', 'sh', cmd, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stdoutBytes = 0;
    let stderr = '';
    let stat = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdoutBytes += d.byteLength;
      stdout = options.countOnly ? (stdout + d.toString('latin1')).slice(-4096) : stdout + d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (stat += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const cpuSeconds = stat ? parseStat(stat).reaped : Number.NaN;
      resolve({ code, stdout, stdoutBytes, stderr, cpuSeconds, wallSeconds });
    });
  });
}

/** A port nobody listens on right now (a race remains; callers retry or fail loudly). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port; rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}
