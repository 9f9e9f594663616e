/**
 * Audit store benchmark: durable appends per second with group commit (many concurrent
 * appenders sharing transactions) and with strict durability (one transaction, one fsync, per
 * record), then the speed of exporting the log and of verifying it (offline from the export,
 * and over the live database). One temp directory, removed at the end.
 *
 * "Durable" means what `append` promises: the promise resolved after the record's transaction
 * committed with synchronous=FULL in WAL mode (the WAL was fsynced).
 *
 *   node bench/dist/audit-store.js [--records N] [--appenders N] [--strict-records N]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exportAuditLog, openStore, type Store, verifyAuditExport, verifyStore } from '@ward/gateway';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    appenders: { type: 'string', default: '64' },
    'strict-records': { type: 'string', default: '5000' },
  },
});
const RECORDS = Number(args.records);
const APPENDERS = Number(args.appenders);
const STRICT_RECORDS = Number(args['strict-records']);

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

    const group = openStore({ path: join(dir, 'group.db'), signingKeyPath: join(dir, 'key.pem') });
    let cpu = process.cpuUsage();
    const groupSecs = await appendAll(group, RECORDS, APPENDERS);
    const groupCpu = cpuSince(cpu);
    const stats = group.audit.stats();
    console.log(
      `group commit: ${RECORDS} records from ${APPENDERS} appenders in ${groupSecs.toFixed(2)} s = ${rate(RECORDS, groupSecs)} records/s ` +
        `(${stats.commits} transactions, ${(stats.records / stats.commits).toFixed(1)} records each)${cpuNote(RECORDS, groupCpu)}`,
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
    const strictSecs = await appendAll(strict, STRICT_RECORDS, APPENDERS);
    console.log(
      `strict: ${STRICT_RECORDS} records from ${APPENDERS} appenders in ${strictSecs.toFixed(2)} s = ${rate(STRICT_RECORDS, strictSecs)} records/s ` +
        `(${strict.audit.stats().commits} transactions)`,
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
