import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { firstScreen, startDemo } from '../demo/run-demo.js';
import { print } from '../output.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`"${value}" is not a port number (0–65535; 0 picks a free one)`);
  return n;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'Run everything on this machine, on loopback: gateway, agent, an embedded Postgres with fake PII\n' +
        'and an OpenAI-compatible demo upstream. Logs you in as the demo admin and prints what to try.\n' +
        'A second run reuses the data dir (sessions and the audit log carry on). Ctrl-C stops it.',
    )
    .option('--data-dir <dir>', 'where the gateway keeps its store and keys', join(homedir(), '.ward', 'demo'))
    .option('--http-port <port>', 'gateway HTTP port (API, HTTP/LLM connections)', port, 7400)
    .option('--tunnel-port <port>', 'agent tunnel (gRPC) port', port, 7401)
    .option('--pg-port <port>', 'gateway Postgres port (direct psql access)', port, 7432)
    .option('--ssh-port <port>', 'gateway SSH port (when an OpenSSH server is installed)', port, 7422)
    .action(
      async (opts: { dataDir: string; httpPort: number; tunnelPort: number; pgPort: number; sshPort: number }) => {
        process.stderr.write('Starting ward demo:\n');
        const demo = await startDemo({
          dataDir: opts.dataDir,
          host: '127.0.0.1',
          httpPort: opts.httpPort,
          tunnelPort: opts.tunnelPort,
          postgresPort: opts.pgPort,
          sshPort: opts.sshPort,
        });
        print(firstScreen(demo));
        await new Promise<void>((resolve) => {
          const shutdown = (signal: string) => {
            process.stderr.write(`\n${signal}: stopping ward demo…\n`);
            demo.stop().then(
              () => {
                process.stderr.write('stopped.\n');
                resolve();
              },
              (err) => {
                process.stderr.write(`error while stopping: ${err}\n`);
                process.exitCode = 1;
                resolve();
              },
            );
          };
          process.once('SIGINT', () => shutdown('SIGINT'));
          process.once('SIGTERM', () => shutdown('SIGTERM'));
        });
      },
    );
}
