/**
 * HTTP/LLM benchmark: the same OpenAI-style chat completion sent directly to the demo upstream,
 * through Portkey's open-source gateway (`@portkey-ai/gateway`), and through ward (gateway +
 * agent as `ward` CLI processes, recording every exchange to the audit store), in one run.
 *
 *   1. max requests/s, 0 ms upstream, 64 connections, 10 s per path (wrk; a bounded Node
 *      keep-alive client when wrk is not installed);
 *   2. added latency p50/p99 at a fixed 200 req/s against a 60 ms upstream (open loop: each
 *      request leaves at its scheduled time whatever the previous ones do; hrtime);
 *   3. added time to the first streamed token (first SSE event with content), sequential.
 *
 * Every server runs in its own process: each upstream, Portkey, the ward gateway and agent.
 *
 *   node bench/dist/http.js [--seconds 10] [--rate 200] [--rate-seconds 10] [--ttft 300] [--profile DIR]
 *     [--idle-streams 4]   (the agent's idleStreams: tunnel streams kept open for new sessions)
 *     [--paths direct,portkey,ward]   (a subset, for quick runs; "added" needs direct)
 *     [--store FILE]   (the audit store's path; e.g. /dev/shm/… to see ward without the disk: diagnostic)
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import { processSeconds } from './pg/proc.js';

const UPSTREAM_KEY = 'sk-bench-upstream';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello to the benchmark' }],
});
const STREAM_BODY = JSON.stringify({
  model: 'gpt-4o-mini',
  stream: true,
  messages: [{ role: 'user', content: 'Say hello to the benchmark' }],
});

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

interface Target {
  name: string;
  /** Full URL of /chat/completions on this path. */
  url: (upstream: 'fast' | 'slow') => string;
  headers: Record<string, string>;
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '10'));
  const rate = Number(arg('rate', '200'));
  const rateSeconds = Number(arg('rate-seconds', '10'));
  const ttftCount = Number(arg('ttft', '300'));
  const profileDir = process.argv.includes('--profile') ? arg('profile', '') : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-http-'));
  const children: ChildProcess[] = [];
  const load0 = loadavg();
  try {
    const fast = await startUpstream(0, children);
    const fastPid = children.at(-1)?.pid ?? 0;
    const slow = await startUpstream(60, children);
    const portkeyPort = await startPortkey(children, dir);
    const portkeyPid = children.at(-1)?.pid ?? 0;
    // --store FILE puts the audit store elsewhere, e.g. on tmpfs (diagnostic: not durable).
    const storePath = arg('store', 'ward.db');
    const ward = await startWard(dir, fast, slow, children, profileDir, storePath, Number(arg('idle-streams', '4')));
    // The processes whose CPU time each path's max-rate run is charged with (besides the upstream).
    const cpuOf: Record<string, Record<string, number>> = {
      direct: { upstream: fastPid },
      portkey: { upstream: fastPid, portkey: portkeyPid },
      ward: { upstream: fastPid, gateway: ward.gatewayPid, agent: ward.agentPid },
    };

    const allTargets: Target[] = [
      {
        name: 'direct',
        url: (u) => `http://127.0.0.1:${u === 'fast' ? fast : slow}/v1/chat/completions`,
        headers: { authorization: `Bearer ${UPSTREAM_KEY}` },
      },
      {
        name: 'portkey',
        url: () => `http://127.0.0.1:${portkeyPort}/v1/chat/completions`,
        headers: { authorization: `Bearer ${UPSTREAM_KEY}`, 'x-portkey-provider': 'openai' },
      },
      {
        name: 'ward',
        url: (u) => `${ward.httpUrl}/c/${u}/v1/chat/completions`,
        headers: { authorization: `Bearer ${ward.token}` },
      },
    ];
    // --paths direct,ward skips Portkey (quicker runs while working; the report compares all three).
    const only = arg('paths', 'direct,portkey,ward').split(',');
    const targets = allTargets.filter((t) => only.includes(t.name));
    // Portkey is told where the upstream is per request.
    const portkeyHost = (u: 'fast' | 'slow') => `http://127.0.0.1:${u === 'fast' ? fast : slow}/v1`;
    const headersFor = (t: Target, u: 'fast' | 'slow') =>
      t.name === 'portkey' ? { ...t.headers, 'x-portkey-custom-host': portkeyHost(u) } : t.headers;

    for (const t of targets) {
      const r = await request(t.url('fast'), headersFor(t, 'fast'), BODY);
      if (r.status !== 200) throw new Error(`${t.name}: warm-up answered ${r.status}: ${r.body.slice(0, 300)}`);
    }

    const wrk = hasWrk();
    console.log(
      `load generator: ${wrk ? 'wrk -t2 -c64' : 'node keep-alive client, 64 connections'}; ${cpus().length} CPUs`,
    );
    const throughput: Record<string, number> = {};
    const cpuLines: string[] = [];
    for (const t of targets) {
      const pids = cpuOf[t.name] ?? {};
      const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processSeconds(pid)]));
      const { rps, requests } = wrk
        ? await wrkRun(t.url('fast'), headersFor(t, 'fast'), seconds, dir)
        : await nodeMaxRate(t.url('fast'), headersFor(t, 'fast'), seconds);
      const perK = Object.entries(pids).map(
        ([k, pid]) => `${k} ${(((processSeconds(pid) - (before[k] ?? 0)) * 1000) / requests).toFixed(3)}`,
      );
      throughput[t.name] = rps;
      cpuLines.push(`| ${t.name} | ${perK.join(', ')} |`);
      console.log(`max req/s  ${t.name.padEnd(8)} ${rps.toFixed(0)}  CPU-s per 1k requests: ${perK.join(', ')}`);
    }

    const latency: Record<string, { p50: number; p99: number; errors: number }> = {};
    for (const t of targets) {
      latency[t.name] = await openLoop(t.url('slow'), headersFor(t, 'slow'), rate, rateSeconds);
      const l = latency[t.name];
      console.log(
        `200 req/s  ${t.name.padEnd(8)} p50 ${l?.p50.toFixed(2)} ms  p99 ${l?.p99.toFixed(2)} ms  errors ${l?.errors}`,
      );
    }

    const ttft: Record<string, { p50: number; p99: number }> = {};
    for (const t of targets) {
      ttft[t.name] = await firstToken(t.url('fast'), headersFor(t, 'fast'), ttftCount);
      console.log(
        `TTFT       ${t.name.padEnd(8)} p50 ${ttft[t.name]?.p50.toFixed(2)} ms  p99 ${ttft[t.name]?.p99.toFixed(2)} ms`,
      );
    }

    const load1 = loadavg();
    const d = latency['direct'];
    const added = (name: string) => ({
      p50: (latency[name]?.p50 ?? 0) - (d?.p50 ?? 0),
      p99: (latency[name]?.p99 ?? 0) - (d?.p99 ?? 0),
    });
    const ttftAdded = (name: string) => (ttft[name]?.p50 ?? 0) - (ttft['direct']?.p50 ?? 0);
    const w = added('ward');
    const p = added('portkey');
    const ratio = (throughput['ward'] ?? 0) / (throughput['portkey'] ?? 1);
    console.log('');
    console.log(
      `| path | max req/s (0 ms, c=64) | p50 / p99 at ${rate} req/s, 60 ms upstream | added p50 / p99 | TTFT p50 | added TTFT |`,
    );
    console.log('|---|---|---|---|---|---|');
    for (const t of targets) {
      const a = added(t.name);
      const l = latency[t.name];
      console.log(
        `| ${t.name} | ${throughput[t.name]?.toFixed(0)} | ${l?.p50.toFixed(2)} / ${l?.p99.toFixed(2)} ms | ${t.name === 'direct' ? '–' : `+${a.p50.toFixed(2)} / +${a.p99.toFixed(2)} ms`} | ${ttft[t.name]?.p50.toFixed(2)} ms | ${t.name === 'direct' ? '–' : `+${ttftAdded(t.name).toFixed(2)} ms`} |`,
      );
    }
    console.log('');
    console.log('| path (max req/s run) | CPU-seconds per 1 000 requests, per process |');
    console.log('|---|---|');
    for (const line of cpuLines) console.log(line);
    console.log('');
    console.log(`ward / portkey req/s: ${ratio.toFixed(2)}x (target >= 2x: ${ratio >= 2 ? 'met' : 'MISSED'})`);
    console.log(
      `ward added p50 ${w.p50.toFixed(2)} ms (target <= 1.5: ${w.p50 <= 1.5 ? 'met' : 'MISSED'}), p99 ${w.p99.toFixed(2)} ms (target <= 6: ${w.p99 <= 6 ? 'met' : 'MISSED'})`,
    );
    console.log(
      `ward added TTFT ${ttftAdded('ward').toFixed(2)} ms (target <= 2: ${ttftAdded('ward') <= 2 ? 'met' : 'MISSED'}); portkey +${p.p50.toFixed(2)}/+${p.p99.toFixed(2)} ms, TTFT +${ttftAdded('portkey').toFixed(2)} ms`,
    );
    console.log(
      `load average ${load0.map((x) => x.toFixed(2)).join(' ')} -> ${load1.map((x) => x.toFixed(2)).join(' ')}`,
    );
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Waits for `pattern` on a child's stream; resolves with the first capture group. */
function waitFor(child: ChildProcess, stream: 'stdout' | 'stderr', pattern: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 60 s:\n${text}`)), 60_000);
    child[stream]?.on('data', (d: Buffer) => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m.slice(1).join(' '));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) at start:\n${text}`));
    });
  });
}

async function startUpstream(latencyMs: number, children: ChildProcess[]): Promise<number> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'upstream', String(latencyMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const port = Number(await waitFor(child, 'stdout', /port (\d+)/, `upstream (${latencyMs} ms)`));
  child.stdout?.resume();
  return port;
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

async function startPortkey(children: ChildProcess[], dir: string): Promise<number> {
  const require = createRequire(join(REPO, 'bench/package.json'));
  const pkg = require.resolve('@portkey-ai/gateway/package.json');
  const port = await freePort();
  const log = openSync(join(dir, 'portkey.log'), 'w');
  const child = spawn(process.execPath, [join(dirname(pkg), 'build/start-server.js'), `--port=${port}`, '--headless'], {
    stdio: ['ignore', log, log],
  });
  children.push(child);
  // Portkey listens on all interfaces; only loopback traffic is sent to it.
  let lastError: unknown;
  for (let i = 0; i < 200; i++) {
    try {
      await request(`http://127.0.0.1:${port}/`, {}, null, 'GET');
      return port;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(
    `portkey (${String(lastError)}) did not start:\n${readFileSync(join(dir, 'portkey.log'), 'utf8').slice(-2000)}`,
  );
}

interface WardHandle {
  httpUrl: string;
  token: string;
  gatewayPid: number;
  agentPid: number;
}

async function startWard(
  dir: string,
  fast: number,
  slow: number,
  children: ChildProcess[],
  profileDir: string | undefined,
  storePath: string,
  idleStreams: number,
): Promise<WardHandle> {
  const cli = join(REPO, 'packages/cli/bin/ward.js');
  const prof = (name: string) =>
    profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}.cpuprofile`] : [];
  const agentKey = generateAgentKey();
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `listen: { http: 127.0.0.1:0, tunnel: 127.0.0.1:0, postgres: 127.0.0.1:0, ssh: 127.0.0.1:0 }
dataDir: ./data
tunnel: { insecure: true }
store: { path: ${JSON.stringify(storePath)}, durability: group }
agents:
  - { name: bench-agent, keyHash: "${hashAgentKey(agentKey)}" }
connections:
  - { name: fast, type: http, agent: bench-agent, llm: openai }
  - { name: slow, type: http, agent: bench-agent, llm: openai }
access:
  grants:
    - { id: bench, identities: ["user:bench"], connections: [fast, slow] }
`,
  );
  const gateway = spawn(process.execPath, [...prof('gateway'), cli, 'gateway', '--config', join(dir, 'gateway.yaml')], {
    stdio: ['ignore', openSync(join(dir, 'gateway.log'), 'w'), 'pipe'],
  });
  children.push(gateway);
  const [httpUrl = '', tunnel = ''] = (
    await waitFor(gateway, 'stderr', /http (http:\/\/[^,\s]+), agent tunnel port (\d+)/, 'ward gateway')
  ).split(' ');
  const tunnelPort = Number(tunnel);
  gateway.stderr?.resume();
  writeFileSync(
    join(dir, 'agent.yaml'),
    `gateway: { address: 127.0.0.1:${tunnelPort}, insecure: true }
key: { env: WARD_AGENT_KEY }
idleStreams: ${idleStreams}
connections:
  - { name: fast, type: http, url: "http://127.0.0.1:${fast}", auth: { header: authorization, scheme: Bearer, secret: { env: UPSTREAM_KEY } }, timeout: 60s }
  - { name: slow, type: http, url: "http://127.0.0.1:${slow}", auth: { header: authorization, scheme: Bearer, secret: { env: UPSTREAM_KEY } }, timeout: 60s }
`,
  );
  const agentLog = openSync(join(dir, 'agent.log'), 'w');
  const agent = spawn(process.execPath, [...prof('agent'), cli, 'agent', '--config', join(dir, 'agent.yaml')], {
    stdio: ['ignore', agentLog, agentLog],
    env: { ...process.env, WARD_AGENT_KEY: agentKey, UPSTREAM_KEY },
  });
  children.push(agent);
  const token = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [cli, 'token', 'issue', '--data-dir', join(dir, 'data'), '--subject', 'bench', '--ttl', '3600'],
      { encoding: 'utf8' },
      (err, out, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(out.trim())),
    ),
  );
  for (let i = 0; i < 200; i++) {
    const r = await request(`${httpUrl}/healthz`, {}, null, 'GET');
    if (r.status === 200 && (JSON.parse(r.body) as { agents: number }).agents > 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return { httpUrl, token, gatewayPid: gateway.pid ?? 0, agentPid: agent.pid ?? 0 };
}

// ---------------------------------------------------------------------------------------------
// Load

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });

function request(
  url: string,
  headers: Record<string, string>,
  body: string | null = BODY,
  method = 'POST',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent: keepAlive,
        headers: body
          ? { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
          : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version.
    return (err as { status?: number }).status === 1;
  }
}

function wrkRun(
  url: string,
  headers: Record<string, string>,
  seconds: number,
  dir: string,
): Promise<{ rps: number; requests: number }> {
  const script = join(dir, 'post.lua');
  const hdrs = Object.entries({ ...headers, 'content-type': 'application/json' })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(BODY)}\n${hdrs}\n` +
      `local non2xx = 0\nresponse = function(status) if status ~= 200 then non2xx = non2xx + 1 end end\n`,
  );
  return new Promise((resolve, reject) =>
    execFile('wrk', ['-t2', '-c64', `-d${seconds}s`, '-s', script, url], { encoding: 'utf8' }, (err, out) => {
      if (err) return reject(err);
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const n = /(\d+) requests in/.exec(out);
      const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
      if (bad) return reject(new Error(`wrk saw ${bad[1]} non-2xx answers from ${url}:\n${out}`));
      resolve({ rps: Number(m?.[1] ?? 0), requests: Number(n?.[1] ?? 0) });
    }),
  );
}

async function nodeMaxRate(
  url: string,
  headers: Record<string, string>,
  seconds: number,
): Promise<{ rps: number; requests: number }> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const r = await request(url, headers);
      if (r.status !== 200) throw new Error(`${url} answered ${r.status}`);
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: 64 }, worker));
  return { rps: done / ((performance.now() - start) / 1000), requests: done };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Open loop: request i leaves at start + i/rate whatever happened to the others. */
async function openLoop(
  url: string,
  headers: Record<string, string>,
  rate: number,
  seconds: number,
): Promise<{ p50: number; p99: number; errors: number }> {
  const total = rate * seconds;
  const latencies: number[] = [];
  let errors = 0;
  const start = process.hrtime.bigint();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + BigInt(Math.round((i * 1e9) / rate));
    let now = process.hrtime.bigint();
    while (now < due) {
      const waitMs = Number(due - now) / 1e6;
      if (waitMs > 1.5) await new Promise((r) => setTimeout(r, waitMs - 1));
      else await new Promise((r) => setImmediate(r));
      now = process.hrtime.bigint();
    }
    pending.push(
      request(url, headers).then(
        (r) => {
          if (r.status === 200) latencies.push(Number(process.hrtime.bigint() - due) / 1e6);
          else errors++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors };
}

/** Sequential streamed completions; the time from sending to the first SSE event carrying content. */
async function firstToken(
  url: string,
  headers: Record<string, string>,
  count: number,
): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    times.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const req = http.request(
          url,
          {
            method: 'POST',
            agent: keepAlive,
            headers: {
              ...headers,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(STREAM_BODY),
            },
          },
          (res) => {
            let text = '';
            let seen: number | undefined;
            res.on('data', (c: Buffer) => {
              if (seen !== undefined) return;
              text += c.toString('utf8');
              if (/"content":"[^"]/.test(text)) seen = Number(process.hrtime.bigint() - t0) / 1e6;
            });
            res.on('end', () =>
              seen === undefined ? reject(new Error(`no token from ${url}: ${text.slice(0, 200)}`)) : resolve(seen),
            );
          },
        );
        req.on('error', reject);
        req.end(STREAM_BODY);
      }),
    );
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

// ---------------------------------------------------------------------------------------------
// Child process mode: one demo upstream, printing its port.
if (process.argv[2] === 'upstream') {
  const { startDemoUpstream } = await import('@ward/demo');
  const up = await startDemoUpstream({ apiKey: UPSTREAM_KEY, latencyMs: Number(process.argv[3] ?? 0) });
  process.stdout.write(`port ${up.port}\n`);
  process.on('SIGTERM', () => void up.close().then(() => process.exit(0)));
} else {
  await main();
}
