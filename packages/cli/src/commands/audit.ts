import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { exportAuditLog, openStore, verifyAuditExport, verifyStore } from '@ward/gateway';
import type { Command } from 'commander';
import { apiGet, resolveTarget } from '../api-client.js';
import { print } from '../output.js';

/**
 * A gateway data dir's store, read-only: a tampered store can then be verified (not refused at
 * open), and a running gateway is never given a second writer.
 */
function openDataDirStore(dataDir: string) {
  return openStore({
    path: join(dataDir, 'ward.db'),
    signingKeyPath: join(dataDir, 'audit-signing-key.pem'),
    readOnly: true,
  });
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('Export and verify the tamper-evident audit log');

  audit
    .command('export')
    .description('Write the audit log as JSON Lines with signed checkpoints (for auditors and `ward audit verify`)')
    .requiredOption('-o, --out <file>', 'where to write the export')
    .option('--data-dir <dir>', 'read a gateway data dir directly instead of asking the gateway API')
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (opts: { out: string; dataDir?: string; gateway?: string }) => {
      if (opts.dataDir) {
        const store = openDataDirStore(opts.dataDir);
        try {
          const { records } = await exportAuditLog(store, opts.out);
          print(`wrote ${records} records to ${opts.out}`);
        } finally {
          await store.close();
        }
        return;
      }
      const res = await apiGet(resolveTarget(opts), '/api/v1/audit/export');
      if (!res.body) throw new Error('the gateway sent an empty export');
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        createWriteStream(opts.out),
      );
      print(`wrote the audit log to ${opts.out}`);
    });

  audit
    .command('verify')
    .description(
      'Recompute the hash chain and checkpoint signatures offline and name the first bad record.\n' +
        'Exit status 0 when intact, 1 when not. Needs only the export (and, to pin the signer, its public key).',
    )
    .argument('[file]', 'an export written by `ward audit export`')
    .option('--public-key <pem-file>', 'the gateway audit public key to trust (default: the one in the export header)')
    .option('--data-dir <dir>', 'verify a gateway data dir (live database) instead of an export')
    .option('--json', 'print the result as JSON')
    .action(async (file: string | undefined, opts: { publicKey?: string; dataDir?: string; json?: boolean }) => {
      let result: Awaited<ReturnType<typeof verifyAuditExport>>;
      if (opts.dataDir) {
        const store = openDataDirStore(opts.dataDir);
        try {
          result = verifyStore(store);
        } finally {
          await store.close();
        }
      } else {
        if (!file) throw new Error('name an export file, or pass --data-dir');
        if (!existsSync(file)) throw new Error(`no such file: ${file}`);
        result = await verifyAuditExport(
          file,
          opts.publicKey ? { publicKeyPem: readFileSync(opts.publicKey, 'utf8') } : {},
        );
      }
      if (opts.json) print(JSON.stringify(result, null, 2));
      else if (result.ok)
        print(`OK: ${result.records} records, ${result.checkpoints} signed checkpoints, key ${result.keyId ?? '?'}`);
      else {
        const bad = result.firstBad;
        print(`TAMPERED: first bad record seq ${bad?.seq} (line ${bad?.line}): ${bad?.code}: ${bad?.reason}`);
        print(`${result.records} records verified before it.`);
      }
      if (!result.ok) process.exitCode = 1;
    });
}
