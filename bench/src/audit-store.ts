/**
 * Audit store benchmark: durable appends per second with group commit (many concurrent
 * appenders sharing transactions) and with strict durability (one transaction, one fsync, per
 * record), then the speed of exporting the log and of verifying it (offline from the export,
 * and over the live database). One temp directory, removed at the end.
 *
 * "Durable" means what `append` promises: the promise resolved after the record's transaction
 * committed and an fdatasync of the WAL that began after the commit completed.
 *
 * "Loop delay" is the event loop's delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution)
 * while appends run: what a relaying session on the same thread would wait. A synchronous
 * fsync in the commit shows up there as its full duration.
 *
 *   node bench/dist/audit-store.js [--records N] [--appenders N] [--strict-records N] [--single-records N]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { exportAuditLog, openStore, type Store, verifyAuditExport, verifyStore } from '@ward/gateway';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    appenders: { type: 'string', default: '64' },
    'strict-records': { type: 'string', default: '5000' },
    'single-records': { type: 'string', default: '2000' },
  },
});
const RECORDS = Number(args.records);
const APPENDERS = Number(args.appenders);
const STRICT_RECORDS = Number(args['strict-records']);
const SINGLE_RECORDS = Number(args['single-records']);

/** Starts watching the event loop's delay; the returned function stops and summarises it. */
function watchLoop(): () => string {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  return () => {
    h.disable();
    const ms = (ns: number) => (ns / 1e6).toFixed(2);
    return `loop delay p50 ${ms(h.percentile(50))} / p99 ${ms(h.percentile(99))} / max ${ms(h.max)} ms`;
  };
}

// Shaped like the records a Postgres session produces: who, where, which rule, the statement.
function input(worker: number, i: number) {
  return {
    kind: 'pg.query',
    sessionId: `sess-${worker}`,
    identity: `user:engineer-${worker}@example.com`,
    source: `10.0.${worker}.7:5${String(i % 10000).padStart(4, '0')}`,
    connection: 'prod-pg',
    rule: 'read-only-default',
    decision: 'allow',
    data: { sql: `SELECT id, email, plan FROM customers WHERE id = $1 LIMIT 50`, params: [i], rows: 1, ms: 0.4 },
  };
}

// CPU seconds this process used (user + system) since `from`: the machine may be shared, and
// records per CPU-second shows what the code costs independently of what else runs.
function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
}

async function appendAll(store: Store, total: number, appenders: number): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: appenders }, async (_, w) => {
      for (let i = next++; i < total; i = next++) await store.audit.append(input(w, i));
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function time<T>(fn: () => T): [T, number] {
  const started = process.hrtime.bigint();
  const out = fn();
  return [out, Number(process.hrtime.bigint() - started) / 1e9];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = process.hrtime.bigint();
  const out = await fn();
  return [out, Number(process.hrtime.bigint() - started) / 1e9];
}

const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US');
const cpuNote = (n: number, cpu: number) =>
  `; process CPU ${cpu.toFixed(2)} s = ${rate(n, cpu)} records per CPU-second`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-audit-'));
  const loadBefore = loadavg();
  try {
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`);
    console.log(`load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

    // One appender awaiting each record: the shape of a single busy session (c=1).
    const single = openStore({ path: join(dir, 'single.db'), signingKeyPath: join(dir, 'key.pem') });
    const latencies: number[] = [];
    let loop = watchLoop();
    let cpu = process.cpuUsage();
    const singleStart = process.hrtime.bigint();
    for (let i = 0; i < SINGLE_RECORDS; i++) {
      const t = process.hrtime.bigint();
      await single.audit.append(input(0, i));
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const singleSecs = Number(process.hrtime.bigint() - singleStart) / 1e9;
    const singleCpu = cpuSince(cpu);
    const singleLoop = loop();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(2);
    console.log(
      `single appender: ${SINGLE_RECORDS} records in ${singleSecs.toFixed(2)} s = ${rate(SINGLE_RECORDS, singleSecs)} records/s, ` +
        `durable append latency p50 ${pct(50)} / p99 ${pct(99)} ms, ${singleLoop}; ${((singleCpu / SINGLE_RECORDS) * 1e6).toFixed(0)} µs CPU per record`,
    );
    await single.close();

    const group = openStore({ path: join(dir, 'group.db'), signingKeyPath: join(dir, 'key.pem') });
    loop = watchLoop();
    cpu = process.cpuUsage();
    const groupSecs = await appendAll(group, RECORDS, APPENDERS);
    const groupCpu = cpuSince(cpu);
    const groupLoop = loop();
    const stats = group.audit.stats();
    console.log(
      `group commit: ${RECORDS} records from ${APPENDERS} appenders in ${groupSecs.toFixed(2)} s = ${rate(RECORDS, groupSecs)} records/s ` +
        `(${stats.commits} transactions, ${(stats.records / stats.commits).toFixed(1)} records each, ${stats.syncs ?? '–'} syncs)${cpuNote(RECORDS, groupCpu)}; ${groupLoop}`,
    );

    const exportPath = join(dir, 'export.jsonl');
    const [exported, exportSecs] = await timeAsync(() => exportAuditLog(group, exportPath));
    const mb = statSync(exportPath).size / 1e6;
    console.log(
      `export: ${exported.records} records, ${exported.checkpoints} checkpoints, ${mb.toFixed(1)} MB in ${exportSecs.toFixed(2)} s = ${rate(exported.records, exportSecs)} records/s`,
    );
    // Default options (worker threads for a file this size, one per CPU, at most 4), then the
    // same file on the calling thread alone. CPU is the whole process, workers included.
    for (const [label, workers] of [
      [`${Math.min(availableParallelism(), 4)} workers`, undefined],
      ['in-thread', 0],
    ] as const) {
      cpu = process.cpuUsage();
      const [verdict, verifySecs] = await timeAsync(() =>
        verifyAuditExport(exportPath, { publicKeyPem: group.audit.publicKeyPem, workers }),
      );
      if (!verdict.ok) throw new Error(`the fresh export did not verify: ${JSON.stringify(verdict.firstBad)}`);
      console.log(
        `verify export (offline, ${label}): ${verdict.records} records, ${verdict.checkpoints} signatures in ${verifySecs.toFixed(2)} s = ${rate(verdict.records, verifySecs)} records/s${cpuNote(verdict.records, cpuSince(cpu))}`,
      );
    }
    cpu = process.cpuUsage();
    const [live, liveSecs] = time(() => verifyStore(group));
    const liveCpu = cpuSince(cpu);
    if (!live.ok) throw new Error(`the live store did not verify: ${JSON.stringify(live.firstBad)}`);
    console.log(
      `verify live store: ${live.records} records in ${liveSecs.toFixed(2)} s = ${rate(live.records, liveSecs)} records/s${cpuNote(live.records, liveCpu)}`,
    );
    await group.close();

    const strict = openStore({
      path: join(dir, 'strict.db'),
      signingKeyPath: join(dir, 'key.pem'),
      durability: 'strict',
    });
    loop = watchLoop();
    const strictSecs = await appendAll(strict, STRICT_RECORDS, APPENDERS);
    console.log(
      `strict: ${STRICT_RECORDS} records from ${APPENDERS} appenders in ${strictSecs.toFixed(2)} s = ${rate(STRICT_RECORDS, strictSecs)} records/s ` +
        `(${strict.audit.stats().commits} transactions); ${loop()}`,
    );
    await strict.close();
    console.log(
      `load average after: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
