/**
 * SSH benchmark (issue #5): the same OpenSSH server reached with the real OpenSSH client
 * directly, through an OpenSSH ProxyJump bastion, and through ward, side by side in one run on
 * loopback.
 *
 *   direct:     ssh ─────────────────────────────────────────────────────────> sshd (target)
 *   proxyjump:  ssh ─> (ssh -W) ─> sshd (bastion, AllowTcpForwarding yes) ─────> sshd (target)
 *   ward:       ssh ─> ward gateway (SSH listener) ══gRPC tunnel══> ward agent ─> sshd (target)
 *   ward-norec: the same, with the asciicast cap at 0 (sessions recorded, terminal bytes not)
 *
 * Measured for each path, with `ssh -F <generated config>` (public-key login everywhere: the
 * target's and the bastion's authorized_keys; for ward a key registered with `ward keys add`):
 *
 *   1. bulk upload and download of `--bytes` random bytes (default 512 MiB, a file in the page
 *      cache): `ssh H 'wc -c' < FILE` and `ssh H 'cat FILE' | wc -c`, both byte counts checked;
 *      MB/s over the whole ssh command (login included, ~0.1 s) and CPU-seconds of every process;
 *   2. `ssh H true` set-up time, `--setup` runs in sequence, p50/p95 of the command's wall time;
 *   3. one-byte echo round trips: one `ssh -T H cat` (GNU cat writes back whatever one read()
 *      returns), driven through its stdin/stdout pipes by this process: the time from writing one
 *      byte to ssh's stdin to reading it back from ssh's stdout, `--trips` times after 200 warm-up
 *      trips, p50/p99. This includes both pipes to the ssh client and the client itself.
 *
 * Rounds (`--rounds`) alternate the paths so that a change in machine load hits every path;
 * figures are medians of the rounds. The load average is printed at the start and the end.
 *
 *   node bench/dist/ssh.js [--bytes 536870912] [--setup 40] [--trips 2000] [--rounds 3]
 *     [--paths direct,proxyjump,ward,ward-norec] [--only bulk,setup,echo] [--profile DIR]
 *
 * `--profile DIR` runs both ward gateways and agents under `node --cpu-prof`
 * (summarise with bench/dist/pg/profile-top.js).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Sshd, startSshd } from '@ward/agent/testing';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';
import { processSeconds, runMeasured, treeSeconds } from './pg/proc.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

type PathName = 'direct' | 'proxyjump' | 'ward' | 'ward-norec';
const ALL_PATHS: PathName[] = ['direct', 'proxyjump', 'ward', 'ward-norec'];

const BYTES = Number(arg('bytes', String(512 * 1024 * 1024)));
const SETUP_RUNS = Number(arg('setup', '40'));
const TRIPS = Number(arg('trips', '2000'));
const WARMUP_TRIPS = 200;
const ROUNDS = Number(arg('rounds', '3'));
const PATHS = arg('paths', ALL_PATHS.join(','))
  .split(',')
  .map((p) => {
    if (!ALL_PATHS.includes(p as PathName)) throw new Error(`--paths: unknown path "${p}" (${ALL_PATHS.join(', ')})`);
    return p as PathName;
  });
const ONLY = new Set(arg('only', 'bulk,setup,echo').split(','));
const PROFILE = process.argv.includes('--profile') ? resolve(arg('profile', 'ward-profile')) : undefined;
const repoRoot = new URL('../..', import.meta.url).pathname;
const CONNECTION = 'benchssh';
/** A bulk transfer slower than this (4 MB/s) is a failure, not a figure. */
const BULK_TIMEOUT_MS = Math.max(120_000, (BYTES / 4e6) * 1000);
/** The whole run must end; a hung peer fails it instead of holding the machine. */
const RUN_LIMIT_MS =
  ROUNDS * PATHS.length * (2 * BULK_TIMEOUT_MS + SETUP_RUNS * 10_000 + (TRIPS + WARMUP_TRIPS) * 50) + 300_000;

const log = (line: string) => process.stderr.write(`${line}\n`);
const loadLine = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const median = (xs: number[]) => quantile(xs, 0.5);

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

interface Proc {
  label: string;
  read: () => number;
}

interface Path {
  name: PathName;
  /** The Host alias in the generated ssh config. */
  host: string;
  /** CPU-second counters of the processes on this path besides the client (ssh and its helpers). */
  processes: Proc[];
}

// ------------------------------------------------------------------ ward processes

interface WardInstance {
  sshPort: number;
  hostPublicKey: string;
  gatewayPid: number;
  agentPid: number;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  // A graceful stop writes the CPU profile; a stuck one is killed rather than waited on.
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function execNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolvePromise, reject) =>
    execFile(
      process.execPath,
      args,
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`node ${args.join(' ')} failed: ${stderr || err.message}`)) : resolvePromise(stdout),
    ),
  );
}

/**
 * One ward: a gateway (bench/dist/ssh/gateway-proc.js, the library calls of `ward gateway`) and
 * `ward agent --config` serving one SSH connection to the target, the client key registered with
 * `ward keys add`.
 */
async function startWard(
  name: string,
  dir: string,
  target: Sshd,
  clientPublicKeyPath: string,
  maxRecordingBytes: number | undefined,
  children: ChildProcess[],
): Promise<WardInstance> {
  const wardDir = join(dir, name);
  const cli = join(repoRoot, 'packages/cli/bin/ward.js');
  const nodeFlags = (who: string) =>
    PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE, '--cpu-prof-name', `${name}-${who}.cpuprofile`] : [];
  mkdirSync(wardDir, { recursive: true, mode: 0o700 });
  const agentKey = generateAgentKey();
  const gateway = spawn(
    process.execPath,
    [
      ...nodeFlags('gateway'),
      join(repoRoot, 'bench/dist/ssh/gateway-proc.js'),
      '--dir',
      wardDir,
      '--agent-key-hash',
      hashAgentKey(agentKey),
      '--connection',
      CONNECTION,
      ...(maxRecordingBytes !== undefined ? ['--max-recording-bytes', String(maxRecordingBytes)] : []),
    ],
    { stdio: ['ignore', 'pipe', openSync(join(wardDir, 'gateway.stderr'), 'w')] },
  );
  children.push(gateway);
  const info = await new Promise<{
    httpUrl: string;
    tunnelPort: number;
    sshPort: number;
    hostPublicKey: string;
    token: string;
  }>((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} gateway did not start within 30 s`)), 30_000);
    gateway.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolvePromise(JSON.parse(out.slice(0, nl)));
      }
    });
    gateway.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} gateway exited (${code}) at start: ${readFileSync(join(wardDir, 'gateway.stderr'))}`));
    });
  });
  gateway.stdout?.resume();

  writeFileSync(
    join(wardDir, 'agent.yaml'),
    `gateway:
  address: 127.0.0.1:${info.tunnelPort}
  insecure: true
key: { env: WARD_AGENT_KEY }
connections:
  - name: ${CONNECTION}
    type: ssh
    host: 127.0.0.1
    port: ${target.port}
    user: ${target.user}
    privateKey: { file: ${JSON.stringify(target.clientKeyPath)} }
    hostKey: { fingerprint: "${target.hostKeyFingerprint}" }
`,
  );
  const agentLog = openSync(join(wardDir, 'agent.log'), 'w');
  const agent = spawn(
    process.execPath,
    [...nodeFlags('agent'), cli, 'agent', '--config', join(wardDir, 'agent.yaml')],
    {
      stdio: ['ignore', agentLog, agentLog],
      env: { ...process.env, WARD_AGENT_KEY: agentKey },
    },
  );
  children.push(agent);
  await execNode([cli, 'keys', 'add', clientPublicKeyPath, '--gateway', info.httpUrl, '--comment', 'bench'], {
    WARD_TOKEN: info.token,
  });
  if (gateway.pid === undefined || agent.pid === undefined) throw new Error(`${name}: processes did not start`);
  return { sshPort: info.sshPort, hostPublicKey: info.hostPublicKey, gatewayPid: gateway.pid, agentPid: agent.pid };
}

// ------------------------------------------------------------------ the client side

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function sshConfig(
  entries: Array<{ host: string; port: number; user: string; key: string; jump?: string }>,
  knownHosts: string,
): string {
  const blocks = entries.map((e) =>
    [
      `Host ${e.host}`,
      `  Port ${e.port}`,
      `  User ${e.user}`,
      `  IdentityFile ${e.key}`,
      ...(e.jump ? [`  ProxyJump ${e.jump}`] : []),
    ].join('\n'),
  );
  // First value wins in ssh_config: the per-host blocks come before the defaults.
  return `${blocks.join('\n')}
Host *
  HostName 127.0.0.1
  BatchMode yes
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  UserKnownHostsFile ${knownHosts}
  GlobalKnownHostsFile /dev/null
  UpdateHostKeys no
  ControlMaster no
  ControlPath none
  ForwardAgent no
  ForwardX11 no
  Compression no
  LogLevel ERROR
`;
}

interface BulkResult {
  path: PathName;
  direction: 'upload' | 'download';
  round: number;
  seconds: number;
  /** CPU-seconds of the transfer, by process. */
  cpu: Record<string, number>;
}

interface SetupResult {
  path: PathName;
  round: number;
  ms: number[];
  cpu: Record<string, number>;
}

interface EchoResult {
  path: PathName;
  round: number;
  us: number[];
}

function cpuAround(path: Path, target: Sshd, bastion: Sshd | undefined) {
  const readers: Proc[] = [
    { label: 'sshd', read: () => treeSeconds(target.pid) },
    ...(bastion && path.name === 'proxyjump' ? [{ label: 'bastion', read: () => treeSeconds(bastion.pid) }] : []),
    ...path.processes,
  ];
  const before = readers.map((r) => r.read());
  return (clientSeconds: number): Record<string, number> => {
    const cpu: Record<string, number> = { client: clientSeconds };
    readers.forEach((r, i) => {
      cpu[r.label] = r.read() - (before[i] ?? 0);
    });
    return cpu;
  };
}

async function bulk(
  path: Path,
  direction: 'upload' | 'download',
  round: number,
  config: string,
  file: string,
  target: Sshd,
  bastion: Sshd | undefined,
): Promise<BulkResult> {
  const ssh = `ssh -F ${shellQuote(config)} ${path.host}`;
  const command =
    direction === 'upload'
      ? `${ssh} 'wc -c' < ${shellQuote(file)}`
      : `${ssh} ${shellQuote(`cat ${shellQuote(file)}`)} | wc -c`;
  const cpu = cpuAround(path, target, bastion);
  const r = await runMeasured('sh', ['-c', command], { timeoutMs: BULK_TIMEOUT_MS });
  const used = cpu(r.cpuSeconds);
  if (r.code !== 0 || Number(r.stdout.trim()) !== BYTES) {
    throw new Error(
      `${direction} via ${path.name}: exit ${r.code}, ${r.stdout.trim()} bytes of ${BYTES}:\n${r.stderr}`,
    );
  }
  return { path: path.name, direction, round, seconds: r.wallSeconds, cpu: used };
}

async function setup(
  path: Path,
  round: number,
  config: string,
  target: Sshd,
  bastion: Sshd | undefined,
): Promise<SetupResult> {
  const ms: number[] = [];
  const cpu = cpuAround(path, target, bastion);
  let client = 0;
  for (let i = 0; i < SETUP_RUNS; i++) {
    const r = await runMeasured('ssh', ['-F', config, path.host, 'true'], { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`ssh ${path.host} true: exit ${r.code}:\n${r.stderr}`);
    ms.push(r.wallSeconds * 1000);
    client += r.cpuSeconds;
  }
  return { path: path.name, round, ms, cpu: cpu(client) };
}

/** `ssh -T H cat`, one byte at a time through its pipes: the time until that byte is back. */
async function echo(path: Path, round: number, config: string): Promise<EchoResult> {
  const child = spawn('ssh', ['-F', config, '-T', path.host, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let waiter: ((chunk: Buffer) => void) | undefined;
  let failed: Error | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    const w = waiter;
    waiter = undefined;
    if (w) w(chunk);
    else failed ??= new Error(`${chunk.length} unexpected bytes from ssh ${path.host} cat`);
  });
  const exited = once(child, 'exit');
  const us: number[] = [];
  try {
    for (let i = 0; i < WARMUP_TRIPS + TRIPS; i++) {
      const byte = i % 256;
      const started = process.hrtime.bigint();
      const back = await new Promise<Buffer>((resolvePromise, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no echo from ssh ${path.host} cat within 15 s (trip ${i}):\n${stderr}`)),
          15_000,
        );
        waiter = (chunk) => {
          clearTimeout(timer);
          resolvePromise(chunk);
        };
        child.stdin.write(Buffer.of(byte));
      });
      const elapsed = Number(process.hrtime.bigint() - started) / 1000;
      if (failed) throw failed;
      if (back.length !== 1 || back[0] !== byte)
        throw new Error(`echo via ${path.name}: sent ${byte}, got ${back.toString('hex')}`);
      if (i >= WARMUP_TRIPS) us.push(elapsed);
    }
  } finally {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  return { path: path.name, round, us };
}

// ------------------------------------------------------------------ report

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–';

const CPU_LABELS = ['client', 'sshd', 'bastion', 'gateway', 'agent'];

function medianCpu(results: Array<{ cpu: Record<string, number> }>, label: string): number {
  const xs = results.filter((r) => label in r.cpu).map((r) => r.cpu[label] as number);
  return xs.length > 0 ? median(xs) : Number.NaN;
}

function bulkTable(results: BulkResult[]): string {
  const lines = [
    `| direction | path | MB/s (median) | per round | vs proxyjump | CPU-s: ${CPU_LABELS.join(' | ')} |`,
    `|---|---|---:|---|---:|${CPU_LABELS.map(() => '---:').join('|')}|`,
  ];
  for (const direction of ['upload', 'download'] as const) {
    const jump = results.filter((r) => r.direction === direction && r.path === 'proxyjump');
    const jumpRate = median(jump.map((r) => BYTES / 1e6 / r.seconds));
    for (const path of PATHS) {
      const rs = results.filter((r) => r.direction === direction && r.path === path);
      if (rs.length === 0) continue;
      const rates = rs.map((r) => BYTES / 1e6 / r.seconds);
      const rate = median(rates);
      lines.push(
        `| ${direction} | ${path} | ${fmt(rate, 1)} | ${rates.map((x) => fmt(x)).join(' / ')} | ${
          jump.length > 0 ? (rate / jumpRate).toFixed(2) : '–'
        } | ${CPU_LABELS.map((l) => fmt(medianCpu(rs, l), 2)).join(' | ')} |`,
      );
    }
  }
  return lines.join('\n');
}

function setupTable(results: SetupResult[]): string {
  const lines = [
    `| path | p50 ms | p95 ms | vs proxyjump (p50) | CPU-ms per login: ${CPU_LABELS.join(' | ')} |`,
    `|---|---:|---:|---:|${CPU_LABELS.map(() => '---:').join('|')}|`,
  ];
  const jump = results.filter((r) => r.path === 'proxyjump').flatMap((r) => r.ms);
  for (const path of PATHS) {
    const rs = results.filter((r) => r.path === path);
    if (rs.length === 0) continue;
    const ms = rs.flatMap((r) => r.ms);
    const perLogin = (l: string) => (medianCpu(rs, l) / SETUP_RUNS) * 1000;
    lines.push(
      `| ${path} | ${fmt(quantile(ms, 0.5), 1)} | ${fmt(quantile(ms, 0.95), 1)} | ${
        jump.length > 0 ? (quantile(ms, 0.5) / quantile(jump, 0.5)).toFixed(2) : '–'
      } | ${CPU_LABELS.map((l) => fmt(perLogin(l), 1)).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

function echoTable(results: EchoResult[]): string {
  const lines = ['| path | p50 µs | p90 µs | p99 µs | added p50 vs direct |', '|---|---:|---:|---:|---:|'];
  const direct = results.filter((r) => r.path === 'direct').flatMap((r) => r.us);
  for (const path of PATHS) {
    const us = results.filter((r) => r.path === path).flatMap((r) => r.us);
    if (us.length === 0) continue;
    lines.push(
      `| ${path} | ${fmt(quantile(us, 0.5))} | ${fmt(quantile(us, 0.9))} | ${fmt(quantile(us, 0.99))} | ${
        direct.length > 0 && path !== 'direct' ? `+${fmt(quantile(us, 0.5) - quantile(direct, 0.5))}` : '–'
      } |`,
    );
  }
  return lines.join('\n');
}

function targets(bulkResults: BulkResult[], setupResults: SetupResult[], echoResults: EchoResult[]): string[] {
  const out: string[] = [];
  const rate = (path: PathName, direction: string) =>
    median(bulkResults.filter((r) => r.path === path && r.direction === direction).map((r) => BYTES / 1e6 / r.seconds));
  const verdict = (ok: boolean) => (ok ? '**met**' : '**missed**');
  for (const direction of ['upload', 'download']) {
    const w = rate('ward', direction);
    const j = rate('proxyjump', direction);
    if (Number.isFinite(w) && Number.isFinite(j))
      out.push(
        `- bulk ${direction}: ward ${fmt(w, 1)} MB/s = ${(w / j).toFixed(2)}× ProxyJump's ${fmt(j, 1)} (target ≥ 0.7×): ${verdict(w / j >= 0.7)}`,
      );
  }
  const p50 = (path: PathName) =>
    quantile(
      setupResults.filter((r) => r.path === path).flatMap((r) => r.ms),
      0.5,
    );
  if (Number.isFinite(p50('ward')) && Number.isFinite(p50('proxyjump'))) {
    const ratio = p50('ward') / p50('proxyjump');
    out.push(
      `- set-up: ward p50 ${fmt(p50('ward'), 1)} ms = ${ratio.toFixed(2)}× ProxyJump's ${fmt(p50('proxyjump'), 1)} ms (target ≤ 1.3×): ${verdict(ratio <= 1.3)}`,
    );
  }
  const echoP50 = quantile(
    echoResults.filter((r) => r.path === 'ward').flatMap((r) => r.us),
    0.5,
  );
  if (Number.isFinite(echoP50))
    out.push(
      `- echo: ward p50 ${fmt(echoP50)} µs, client pipes and ssh client included (target ≤ 500 µs): ${verdict(echoP50 <= 500)}`,
    );
  for (const direction of ['upload', 'download']) {
    const on = rate('ward', direction);
    const off = rate('ward-norec', direction);
    if (Number.isFinite(on) && Number.isFinite(off)) {
      const cost = 1 - on / off;
      out.push(
        `- recording cost, ${direction}: ward ${fmt(on, 1)} MB/s vs ${fmt(off, 1)} with the asciicast cap at 0: ${(cost * 100).toFixed(1)} % (target ≤ 10 %): ${verdict(cost <= 0.1)}`,
      );
    }
  }
  return out;
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const loadStart = loadLine();
  log(`load average at start: ${loadStart} (${cpus().length} CPUs)`);
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-ssh-'));
  const children: ChildProcess[] = [];
  let target: Sshd | undefined;
  let bastion: Sshd | undefined;
  const cleanup = async () => {
    for (const child of children.reverse()) await stopChild(child).catch(() => {});
    await bastion?.stop().catch(() => {});
    await target?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  const limit = setTimeout(() => {
    log(`the run took longer than ${Math.round(RUN_LIMIT_MS / 1000)} s: stopping`);
    void cleanup().finally(() => process.exit(2));
  }, RUN_LIMIT_MS);
  limit.unref();
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    log('starting the target sshd and the bastion sshd…');
    target = await startSshd();
    bastion = await startSshd({ config: ['AllowTcpForwarding yes'] });
    const wardKey = join(dir, 'ward_ed25519');
    const kg = await runMeasured('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench@ward', '-f', wardKey], {
      timeoutMs: 30_000,
    });
    if (kg.code !== 0) throw new Error(`ssh-keygen failed: ${kg.stderr}`);

    const wards: Partial<Record<PathName, WardInstance>> = {};
    for (const name of ['ward', 'ward-norec'] as const) {
      if (!PATHS.includes(name)) continue;
      log(`starting ${name} (gateway + agent)…`);
      wards[name] = await startWard(
        name,
        dir,
        target,
        `${wardKey}.pub`,
        name === 'ward-norec' ? 0 : undefined,
        children,
      );
    }

    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(
      knownHosts,
      [
        readFileSync(target.knownHostsPath, 'utf8').trim(),
        readFileSync(bastion.knownHostsPath, 'utf8').trim(),
        ...Object.values(wards).map((w) => `[127.0.0.1]:${w.sshPort} ${w.hostPublicKey}`),
      ].join('\n') + '\n',
    );
    const config = join(dir, 'ssh_config');
    writeFileSync(
      config,
      sshConfig(
        [
          { host: 'direct', port: target.port, user: target.user, key: target.clientKeyPath },
          { host: 'bastion', port: bastion.port, user: bastion.user, key: bastion.clientKeyPath },
          { host: 'proxyjump', port: target.port, user: target.user, key: target.clientKeyPath, jump: 'bastion' },
          ...Object.entries(wards).map(([name, w]) => ({
            host: name,
            port: w.sshPort,
            user: CONNECTION,
            key: wardKey,
          })),
        ],
        knownHosts,
      ),
    );

    const paths: Path[] = PATHS.map((name) => {
      const w = wards[name];
      return {
        name,
        host: name,
        processes: w
          ? [
              { label: 'gateway', read: () => processSeconds(w.gatewayPid) },
              { label: 'agent', read: () => processSeconds(w.agentPid) },
            ]
          : [],
      };
    });

    // Every path answers before anything is measured (the agents dial in by themselves).
    for (const path of paths) {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await runMeasured('ssh', ['-F', config, path.host, 'echo', 'ok'], { timeoutMs: 15_000 });
        if (probe.code === 0 && probe.stdout.trim() === 'ok') break;
        if (Date.now() > deadline) throw new Error(`${path.name} never ran a command:\n${probe.stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    const file = join(dir, 'bulk.bin');
    if (ONLY.has('bulk')) {
      log(`writing ${fmt(BYTES / 1e6)} MB of random bytes to ${file}…`);
      const w = await runMeasured('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${shellQuote(file)}`], {
        timeoutMs: 300_000,
      });
      if (w.code !== 0) throw new Error(`writing the bulk file failed: ${w.stderr}`);
    }

    const bulkResults: BulkResult[] = [];
    const setupResults: SetupResult[] = [];
    const echoResults: EchoResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order so that no path always goes first after the others' work.
      const order = round % 2 === 1 ? paths : [...paths].reverse();
      if (ONLY.has('bulk')) {
        for (const direction of ['upload', 'download'] as const) {
          for (const path of order) {
            const r = await bulk(path, direction, round, config, file, target, bastion);
            log(
              `round ${round} ${direction} via ${path.name}: ${fmt(BYTES / 1e6 / r.seconds, 1)} MB/s (load ${loadLine()})`,
            );
            bulkResults.push(r);
          }
        }
      }
      if (ONLY.has('setup')) {
        for (const path of order) {
          const r = await setup(path, round, config, target, bastion);
          log(`round ${round} set-up via ${path.name}: p50 ${fmt(quantile(r.ms, 0.5), 1)} ms`);
          setupResults.push(r);
        }
      }
      if (ONLY.has('echo')) {
        for (const path of order) {
          const r = await echo(path, round, config);
          log(
            `round ${round} echo via ${path.name}: p50 ${fmt(quantile(r.us, 0.5))} µs, p99 ${fmt(quantile(r.us, 0.99))} µs`,
          );
          echoResults.push(r);
        }
      }
    }
    const loadEnd = loadLine();
    log(`load average at end: ${loadEnd}`);

    const report = [
      `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, OpenSSH client ${(await runMeasured('ssh', ['-V'], { timeoutMs: 10_000 })).stderr.trim()}`,
      `load average (1/5/15 min): ${loadStart} at start, ${loadEnd} at end; ${ROUNDS} round(s), medians`,
      '',
    ];
    if (bulkResults.length > 0)
      report.push(
        `Bulk: ${fmt(BYTES / 1e6)} MB (${fmt(BYTES)} bytes) of random data; upload \`ssh H 'wc -c' < FILE\`, download \`ssh H 'cat FILE' | wc -c\`; MB/s = 10^6 bytes / wall s of the whole command; CPU-s per transfer (client = ssh + wc; sshd = the target's sshd and its children).`,
        '',
        bulkTable(bulkResults),
        '',
      );
    if (setupResults.length > 0)
      report.push(
        `Set-up: \`ssh H true\`, ${SETUP_RUNS} runs per round, wall time of the command.`,
        '',
        setupTable(setupResults),
        '',
      );
    if (echoResults.length > 0)
      report.push(
        `Echo: one byte written to \`ssh -T H cat\`'s stdin until read back from its stdout, ${fmt(TRIPS)} trips per round after ${WARMUP_TRIPS} warm-up.`,
        '',
        echoTable(echoResults),
        '',
      );
    report.push('Targets:', ...targets(bulkResults, setupResults, echoResults));
    process.stdout.write(`${report.join('\n')}\n`);
  } finally {
    clearTimeout(limit);
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`ssh bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
