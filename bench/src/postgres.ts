/**
 * Postgres benchmark: the same PostgreSQL cluster reached directly, through PgBouncer and
 * through ward (gateway and agent as two CLI processes), side by side in one run on loopback.
 *
 *   direct:    pgbench/psql ───────────────────────────────────> postgres
 *   pgbouncer: pgbench/psql ──> pgbouncer (transaction pool 20) ──> postgres
 *   ward:      pgbench/psql ──> ward gateway ══gRPC tunnel══> ward agent ──> postgres
 *
 * For each path: `pgbench -S` at 1 client (simple protocol) and 16 clients / 2 threads (simple
 * and extended), TPS, average latency and the CPU seconds per 10 000 transactions of every
 * process involved (read from /proc, so they hold on a loaded machine); then one 1-million-row
 * result read with psql, in MB/s of Postgres wire bytes. The load average is printed at the
 * start and the end. Everything is bounded in time (about 4 minutes at the defaults).
 *
 *   node bench/dist/postgres.js [--seconds 15] [--scale 10] [--rows 1000000] [--profile DIR] [--store FILE]
 *                               [--modes c=1,c=16]
 *
 * `--modes` runs only the pgbench modes whose label starts with one of the given prefixes
 * (e.g. `c=1` for a profile of the single-client case); `--rows 0` skips the bulk reads.
 *
 * `--store FILE` puts the gateway's audit store elsewhere, e.g. on tmpfs
 * (`/dev/shm/ward-bench.db`) to see what the audit commits' fsyncs cost: a diagnostic only,
 * since a store on tmpfs is not durable.
 *
 * `--profile DIR` runs the gateway and the agent under `node --cpu-prof` and leaves
 * gateway.cpuprofile / agent.cpuprofile there (summarise with bench/dist/pg/profile-top.js).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { type PgCluster, startPgCluster } from '@ward/agent/testing';
import pg from 'pg';
import { findPgBouncer, type PgBouncer, startPgBouncer } from './pg/pgbouncer.js';
import { processSeconds, runMeasured, treeSeconds } from './pg/proc.js';
import { startWardProcs, type WardProcs } from './pg/ward-procs.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const SECONDS = Number(arg('seconds', '15'));
const SCALE = Number(arg('scale', '10'));
const ROWS = Number(arg('rows', '1000000'));
const PROFILE = process.argv.includes('--profile') ? resolve(arg('profile', 'ward-profile')) : undefined;
/** The gateway's audit store file; default: ward.db in its temp data dir (the real, durable set-up). */
const STORE = process.argv.includes('--store') ? resolve(arg('store', 'ward.db')) : undefined;
const repoRoot = new URL('../..', import.meta.url).pathname;

const USER = 'bench';
const DATABASE = 'bench';
const PASSWORD = 'bench-password-known-to-agent-and-pgbouncer';
/** The whole run must end; a hung peer fails it instead of holding the machine. */
const RUN_LIMIT_MS = (SECONDS * 9 + 300) * 1000;

type PathName = 'direct' | 'pgbouncer' | 'ward';

interface Endpoint {
  name: PathName;
  port: number;
  database: string;
  password: string;
  /** CPU-seconds counters of the processes on this path, besides pgbench and postgres. */
  processes: Array<{ label: string; read: () => number }>;
}

interface Mode {
  label: string;
  args: string[];
}

const ALL_MODES: Mode[] = [
  { label: 'c=1 simple', args: ['-c', '1', '-j', '1', '-M', 'simple'] },
  { label: 'c=16 -j 2 simple', args: ['-c', '16', '-j', '2', '-M', 'simple'] },
  { label: 'c=16 -j 2 extended', args: ['-c', '16', '-j', '2', '-M', 'extended'] },
];
const MODE_PREFIXES = process.argv.includes('--modes') ? arg('modes', '').split(',') : undefined;
const MODES = ALL_MODES.filter(
  (m) => !MODE_PREFIXES || MODE_PREFIXES.some((prefix) => prefix !== '' && `${m.label} `.startsWith(`${prefix} `)),
);

interface BenchResult {
  path: PathName;
  mode: string;
  transactions: number;
  tps: number;
  latencyMs: number;
  failed: number;
  /** CPU seconds per 10 000 transactions, by process. */
  cpuPer10k: Record<string, number>;
}

interface BulkResult {
  path: PathName;
  query: string;
  rows: number;
  wireBytes: number;
  psqlOutputBytes: number;
  queryMs: number;
  wallMs: number;
  cpuSeconds: Record<string, number>;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '–';
const loadLine = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function pgEnv(endpoint: Endpoint): NodeJS.ProcessEnv {
  return { PGPASSWORD: endpoint.password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
}

function connArgs(endpoint: Endpoint): string[] {
  return ['-h', '127.0.0.1', '-p', String(endpoint.port), '-U', USER];
}

function number(text: string, re: RegExp, what: string): number {
  const m = re.exec(text);
  if (!m) throw new Error(`pgbench output has no ${what}:\n${text}`);
  return Number(m[1]);
}

async function runPgbench(endpoint: Endpoint, mode: Mode, postmaster: number): Promise<BenchResult> {
  const before = endpoint.processes.map((p) => p.read());
  const pgBefore = treeSeconds(postmaster);
  const r = await runMeasured(
    'pgbench',
    ['-n', '-S', '-T', String(SECONDS), ...mode.args, ...connArgs(endpoint), endpoint.database],
    { env: pgEnv(endpoint), timeoutMs: (SECONDS + 60) * 1000 },
  );
  const pgAfter = treeSeconds(postmaster);
  const after = endpoint.processes.map((p) => p.read());
  if (r.code !== 0) throw new Error(`pgbench ${mode.label} via ${endpoint.name} failed (${r.code}):\n${r.stderr}`);
  const transactions = number(r.stdout, /number of transactions actually processed: (\d+)/, 'transaction count');
  const per10k = (seconds: number) => (seconds / transactions) * 10_000;
  const cpuPer10k: Record<string, number> = { pgbench: per10k(r.cpuSeconds), postgres: per10k(pgAfter - pgBefore) };
  endpoint.processes.forEach((p, i) => {
    cpuPer10k[p.label] = per10k((after[i] ?? 0) - (before[i] ?? 0));
  });
  return {
    path: endpoint.name,
    mode: mode.label,
    transactions,
    tps: number(r.stdout, /tps = ([\d.]+)/, 'tps'),
    latencyMs: number(r.stdout, /latency average = ([\d.]+) ms/, 'latency'),
    failed: Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0),
    cpuPer10k,
  };
}

interface BulkQuery {
  label: string;
  sql: string;
}

/**
 * The same rows twice: computed by the server (generate_series and md5 per row, which alone
 * holds psql to ~20-25 MB/s here, a limit of the server and not of the path), and read from a
 * table filled beforehand, which leaves the path as the bottleneck. Wire bytes are identical.
 */
const BULK_QUERIES: BulkQuery[] = [
  { label: 'generated', sql: `select * from generate_series(1,${ROWS}) g, lateral (select md5(g::text)) m` },
  { label: 'table', sql: 'select * from bulk_rows' },
];

/** Bytes the server sends for the bulk result, counted on the client's socket (node-postgres). */
async function wireBytes(endpoint: Endpoint, sql: string): Promise<{ bytes: number; rows: number }> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: endpoint.port,
    user: USER,
    password: endpoint.password,
    database: endpoint.database,
  });
  await client.connect();
  try {
    // node-postgres keeps its socket on `connection.stream`; a second 'data' listener sees
    // every chunk without changing how the client reads.
    const stream = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
    let bytes = 0;
    const count = (chunk: Buffer) => {
      bytes += chunk.byteLength;
    };
    stream.on('data', count);
    const result = await client.query({ text: sql, rowMode: 'array' });
    stream.off('data', count);
    return { bytes, rows: result.rowCount ?? 0 };
  } finally {
    await client.end();
  }
}

async function runBulk(endpoint: Endpoint, query: BulkQuery, postmaster: number): Promise<BulkResult> {
  const wire = await wireBytes(endpoint, query.sql);
  if (wire.rows !== ROWS) throw new Error(`bulk via ${endpoint.name}: ${wire.rows} rows, expected ${ROWS}`);
  const before = endpoint.processes.map((p) => p.read());
  const pgBefore = treeSeconds(postmaster);
  // \timing prints the time from sending the query to having the whole result, connection
  // set-up excluded; the wall time around it includes connecting and printing.
  const r = await runMeasured(
    'psql',
    [
      '-X',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      ...connArgs(endpoint),
      '-d',
      endpoint.database,
      '-c',
      '\\timing on',
      '-c',
      query.sql,
    ],
    { env: pgEnv(endpoint), timeoutMs: 120_000, countOnly: true },
  );
  const pgAfter = treeSeconds(postmaster);
  const after = endpoint.processes.map((p) => p.read());
  if (r.code !== 0) throw new Error(`psql bulk via ${endpoint.name} failed (${r.code}):\n${r.stderr}`);
  const queryMs = Number(/Time: ([\d.]+) ms/.exec(r.stdout)?.[1] ?? 'NaN');
  const timingLine = /Time: [^\n]*\n?$/.exec(r.stdout)?.[0] ?? '';
  const cpuSeconds: Record<string, number> = { psql: r.cpuSeconds, postgres: pgAfter - pgBefore };
  endpoint.processes.forEach((p, i) => {
    cpuSeconds[p.label] = (after[i] ?? 0) - (before[i] ?? 0);
  });
  return {
    path: endpoint.name,
    query: query.label,
    rows: ROWS,
    wireBytes: wire.bytes,
    psqlOutputBytes: r.stdoutBytes - Buffer.byteLength(timingLine) - Buffer.byteLength('Timing is on.\n'),
    queryMs,
    wallMs: r.wallSeconds * 1000,
    cpuSeconds,
  };
}

function benchTable(results: BenchResult[]): string {
  const lines = [
    '| mode | path | TPS | vs direct | avg latency ms | added ms vs direct | pgbench | postgres | pgbouncer | gateway | agent |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const direct = results.find((x) => x.mode === r.mode && x.path === 'direct');
    const cpu = (label: string) => (label in r.cpuPer10k ? fmt(r.cpuPer10k[label] ?? Number.NaN, 2) : '–');
    lines.push(
      `| ${r.mode} | ${r.path} | ${fmt(r.tps)} | ${direct ? (r.tps / direct.tps).toFixed(2) : '–'} | ${r.latencyMs.toFixed(3)} | ${
        direct && r.path !== 'direct' ? (r.latencyMs - direct.latencyMs).toFixed(3) : '–'
      } | ${cpu('pgbench')} | ${cpu('postgres')} | ${cpu('pgbouncer')} | ${cpu('gateway')} | ${cpu('agent')} |`,
    );
  }
  return lines.join('\n');
}

function bulkTable(results: BulkResult[]): string {
  const lines = [
    '| query | path | rows | wire MB | query s | wire MB/s | wall s | psql output MB | CPU s: psql | postgres | pgbouncer | gateway | agent |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const cpu = (label: string) => (label in r.cpuSeconds ? (r.cpuSeconds[label] ?? Number.NaN).toFixed(2) : '–');
    lines.push(
      `| ${r.query} | ${r.path} | ${fmt(r.rows)} | ${(r.wireBytes / 1e6).toFixed(1)} | ${(r.queryMs / 1000).toFixed(2)} | ${fmt(
        r.wireBytes / 1e6 / (r.queryMs / 1000),
        1,
      )} | ${(r.wallMs / 1000).toFixed(2)} | ${(r.psqlOutputBytes / 1e6).toFixed(1)} | ${cpu('psql')} | ${cpu('postgres')} | ${cpu(
        'pgbouncer',
      )} | ${cpu('gateway')} | ${cpu('agent')} |`,
    );
  }
  return lines.join('\n');
}

function targets(results: BenchResult[], bulk: BulkResult[]): string[] {
  const find = (path: PathName, mode: string) => results.find((r) => r.path === path && r.mode === mode);
  const out: string[] = [];
  const d1 = find('direct', 'c=1 simple');
  const w1 = find('ward', 'c=1 simple');
  if (d1 && w1) {
    const added = w1.latencyMs - d1.latencyMs;
    out.push(
      `- c=1: ward adds ${added.toFixed(3)} ms per transaction vs direct (target ≤ 0.250 ms): **${added <= 0.25 ? 'met' : 'missed'}**`,
    );
  }
  for (const mode of ['c=16 -j 2 simple', 'c=16 -j 2 extended']) {
    const b = find('pgbouncer', mode);
    const w = find('ward', mode);
    if (b && w) {
      const ratio = w.tps / b.tps;
      out.push(
        `- ${mode}: ward ${fmt(w.tps)} TPS = ${ratio.toFixed(2)}× PgBouncer's ${fmt(b.tps)} (target ≥ 0.5×): **${ratio >= 0.5 ? 'met' : 'missed'}**`,
      );
    }
  }
  const rate = (r: BulkResult) => r.wireBytes / 1e6 / (r.queryMs / 1000);
  for (const query of BULK_QUERIES) {
    const wb = bulk.find((r) => r.path === 'ward' && r.query === query.label);
    const db = bulk.find((r) => r.path === 'direct' && r.query === query.label);
    if (!wb) continue;
    out.push(
      `- bulk (${query.label}): ward ${rate(wb).toFixed(1)} MB/s of wire bytes${db ? ` (direct ${rate(db).toFixed(1)})` : ''} (target ≥ 50 MB/s): **${rate(wb) >= 50 ? 'met' : 'missed'}**`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  findPgBouncer(); // fail before minutes of set-up when a peer is missing
  if (STORE && existsSync(STORE))
    throw new Error(`--store ${STORE} exists: give a new file (each run starts a fresh store)`);
  const loadStart = loadLine();
  log(`load average at start: ${loadStart} (${cpus().length} CPUs)`);

  let cluster: PgCluster | undefined;
  let bouncer: PgBouncer | undefined;
  let ward: WardProcs | undefined;
  const cleanup = async () => {
    await ward?.stop().catch(() => {});
    await bouncer?.stop().catch(() => {});
    await cluster?.stop().catch(() => {});
    if (STORE) for (const suffix of ['', '-wal', '-shm']) rmSync(`${STORE}${suffix}`, { force: true });
  };
  const limit = setTimeout(() => {
    log(`the run took longer than ${RUN_LIMIT_MS / 1000} s: stopping`);
    void cleanup().finally(() => process.exit(2));
  }, RUN_LIMIT_MS);
  limit.unref();
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    log('starting PostgreSQL…');
    cluster = await startPgCluster({
      users: [{ name: USER, password: PASSWORD, method: 'scram-sha-256' }],
      databases: [DATABASE],
      // A fair fight for 16 clients per path; the ward agent and PgBouncer also hold server connections.
      settings: { max_connections: '100', shared_buffers: '128MB' },
    });
    await cluster.sql(`ALTER DATABASE ${DATABASE} OWNER TO ${USER}`);
    // Every backend is a child of the postmaster, whose pid heads postmaster.pid.
    const pmPid = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);

    log(`pgbench -i -s ${SCALE}…`);
    const init = await runMeasured(
      'pgbench',
      ['-i', '-q', '-s', String(SCALE), '-h', '127.0.0.1', '-p', String(cluster.port), '-U', USER, DATABASE],
      { env: { PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' }, timeoutMs: 300_000 },
    );
    if (init.code !== 0) throw new Error(`pgbench -i failed:\n${init.stderr}`);
    const fill = await runMeasured(
      'psql',
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-h',
        '127.0.0.1',
        '-p',
        String(cluster.port),
        '-U',
        USER,
        '-d',
        DATABASE,
        '-c',
        `create table bulk_rows as select g, md5(g::text) m from generate_series(1,${ROWS}) g`,
        '-c',
        'vacuum analyze bulk_rows',
      ],
      { env: { PGPASSWORD: PASSWORD, PGSSLMODE: 'disable' }, timeoutMs: 300_000 },
    );
    if (fill.code !== 0) throw new Error(`filling bulk_rows failed:\n${fill.stderr}`);

    log('starting PgBouncer and ward…');
    bouncer = await startPgBouncer({ backendPort: cluster.port, database: DATABASE, user: USER, password: PASSWORD });
    ward = await startWardProcs({
      repoRoot,
      backendPort: cluster.port,
      database: DATABASE,
      user: USER,
      password: PASSWORD,
      ...(PROFILE ? { profileDir: PROFILE } : {}),
      ...(STORE ? { storePath: STORE } : {}),
    });
    const bouncerPid = bouncer.pid;
    const { gatewayPid, agentPid } = ward;
    const endpoints: Endpoint[] = [
      { name: 'direct', port: cluster.port, database: DATABASE, password: PASSWORD, processes: [] },
      {
        name: 'pgbouncer',
        port: bouncer.port,
        database: DATABASE,
        password: 'unused-trust',
        processes: [{ label: 'pgbouncer', read: () => processSeconds(bouncerPid) }],
      },
      {
        name: 'ward',
        port: ward.postgresPort,
        database: ward.connection,
        password: ward.token,
        processes: [
          { label: 'gateway', read: () => processSeconds(gatewayPid) },
          { label: 'agent', read: () => processSeconds(agentPid) },
        ],
      },
    ];

    // The agent dials in by itself; wait until a query goes through (a liveness bound).
    const wardEndpoint = endpoints[2] as Endpoint;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const probe = await runMeasured(
        'psql',
        [
          '-X',
          '-A',
          '-t',
          ...connArgs(wardEndpoint),
          '-d',
          wardEndpoint.database,
          '-c',
          'select count(*) from pgbench_branches',
        ],
        { env: pgEnv(wardEndpoint), timeoutMs: 15_000 },
      );
      if (probe.code === 0 && Number(probe.stdout.trim()) === SCALE) break;
      if (Date.now() > deadline) throw new Error(`ward never served a query:\n${probe.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const results: BenchResult[] = [];
    for (const mode of MODES) {
      for (const endpoint of endpoints) {
        log(`pgbench -S ${mode.label} via ${endpoint.name} (${SECONDS} s)…`);
        const r = await runPgbench(endpoint, mode, pmPid);
        log(`  ${fmt(r.tps)} TPS, ${r.latencyMs} ms`);
        results.push(r);
      }
    }
    const bulk: BulkResult[] = [];
    for (const query of ROWS > 0 ? BULK_QUERIES : []) {
      for (const endpoint of endpoints) {
        log(`${fmt(ROWS)}-row read (${query.label}) via ${endpoint.name}…`);
        bulk.push(await runBulk(endpoint, query, pmPid));
      }
    }
    const loadEnd = loadLine();
    log(`load average at end: ${loadEnd}`);

    const report = [
      `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, pgbench -S scale ${SCALE}, -T ${SECONDS} per row`,
      `load average (1/5/15 min): ${loadStart} at start, ${loadEnd} at end`,
      `ward's audit store: ${STORE ?? 'ward.db in the gateway data dir (temp dir on local disk)'}, durability group`,
      '',
      'CPU columns: CPU-seconds per 10 000 transactions (utime+stime from /proc).',
      '',
      benchTable(results),
      '',
      `Bulk reads with psql -A -t (MB = 10^6 bytes): generated = \`${BULK_QUERIES[0]?.sql}\`; table = \`${BULK_QUERIES[1]?.sql}\` (the same ${fmt(ROWS)} rows, stored beforehand).`,
      '',
      bulkTable(bulk),
      '',
      'Targets:',
      ...targets(results, bulk),
    ];
    process.stdout.write(`${report.join('\n')}\n`);
    const failed = results.filter((r) => r.failed > 0);
    if (failed.length > 0)
      log(`WARNING: failed transactions in ${failed.map((r) => `${r.path} ${r.mode}`).join(', ')}`);
  } finally {
    clearTimeout(limit);
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`postgres bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
