/**
 * ward as users run it: `ward gateway --config` and `ward agent --config` from the CLI, each in
 * its own process (so their CPU is measured apart from the load generator and from each other),
 * with generated YAML configs in a temp dir and a token from `ward token issue --data-dir`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateAgentKey, hashAgentKey } from '@ward/protocol';

export interface WardProcs {
  postgresPort: number;
  /** The gateway's Postgres connection name (what clients give as the database name). */
  connection: string;
  /** A user token for the direct listener (the password). */
  token: string;
  gatewayPid: number;
  agentPid: number;
  /** Where the gateway's and the agent's JSON logs go. */
  dir: string;
  stop(): Promise<void>;
}

export interface WardProcsOptions {
  repoRoot: string;
  backendPort: number;
  database: string;
  user: string;
  password: string;
  /** The gateway's `store.path` (default `ward.db` in its data dir; `:memory:` skips the disk). */
  storePath?: string;
  /** Write V8 CPU profiles of both processes here (node --cpu-prof). */
  profileDir?: string;
}

const CONNECTION = 'benchdb';

function execCli(cli: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`ward ${args.join(' ')} failed: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
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

export async function startWardProcs(options: WardProcsOptions): Promise<WardProcs> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-bench-'));
  const cli = join(options.repoRoot, 'packages/cli/bin/ward.js');
  const nodeFlags = (name: string) =>
    options.profileDir
      ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir, '--cpu-prof-name', `${name}.cpuprofile`]
      : [];
  const agentKey = generateAgentKey();
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `listen:
  http: 127.0.0.1:0
  tunnel: 127.0.0.1:0
  postgres: 127.0.0.1:0
  ssh: 127.0.0.1:0
dataDir: ./data
tunnel:
  insecure: true
store:
  path: ${JSON.stringify(options.storePath ?? 'ward.db')}
  durability: group
agents:
  - name: bench-agent
    keyHash: ${hashAgentKey(agentKey)}
connections:
  - name: ${CONNECTION}
    type: postgres
    agent: bench-agent
access:
  grants:
    - { id: bench, identities: ["user:bench"], connections: [${CONNECTION}] }
`,
  );
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const gateway = spawn(
      process.execPath,
      [...nodeFlags('gateway'), cli, 'gateway', '--config', join(dir, 'gateway.yaml')],
      { stdio: ['ignore', openSync(join(dir, 'gateway.log'), 'w'), 'pipe'] },
    );
    children.push(gateway);
    const ports = await new Promise<{ tunnel: number; postgres: number }>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`ward gateway did not start within 30 s:\n${stderr}`)), 30_000);
      gateway.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /agent tunnel port (\d+), postgres port (\d+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve({ tunnel: Number(m[1]), postgres: Number(m[2]) });
        }
      });
      gateway.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ward gateway exited (${code}) at start:\n${stderr}`));
      });
    });
    gateway.stderr?.resume();

    writeFileSync(
      join(dir, 'agent.yaml'),
      `gateway:
  address: 127.0.0.1:${ports.tunnel}
  insecure: true
key: { env: WARD_AGENT_KEY }
connections:
  - name: ${CONNECTION}
    type: postgres
    host: 127.0.0.1
    port: ${options.backendPort}
    database: ${options.database}
    user: ${options.user}
    password: { env: BENCH_PG_PASSWORD }
    tls: { mode: disable }
`,
    );
    const agentLog = openSync(join(dir, 'agent.log'), 'w');
    const agent = spawn(process.execPath, [...nodeFlags('agent'), cli, 'agent', '--config', join(dir, 'agent.yaml')], {
      stdio: ['ignore', agentLog, agentLog],
      env: { ...process.env, WARD_AGENT_KEY: agentKey, BENCH_PG_PASSWORD: options.password },
    });
    children.push(agent);

    const token = (
      await execCli(cli, ['token', 'issue', '--data-dir', join(dir, 'data'), '--subject', 'bench', '--ttl', '3600'])
    ).trim();
    if (gateway.pid === undefined || agent.pid === undefined) throw new Error('ward processes did not start');
    return {
      postgresPort: ports.postgres,
      connection: CONNECTION,
      token,
      gatewayPid: gateway.pid,
      agentPid: agent.pid,
      dir,
      stop,
    };
  } catch (err) {
    const agentLog = (() => {
      try {
        return readFileSync(join(dir, 'agent.log'), 'utf8');
      } catch {
        return '';
      }
    })();
    await stop();
    throw agentLog ? new Error(`${(err as Error).message}\nagent log:\n${agentLog}`, { cause: err }) : err;
  }
}
