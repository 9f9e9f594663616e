// The README's "two terminals": `ward gateway` and `ward agent` from examples/, as real
// processes. The agent comes online; the gateway is killed and restarted; the agent is back by
// itself.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from './helpers/ward-stack.js';

const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;
const ward = join(root, 'packages/cli/bin/ward.js');
const exec = promisify(execFile);
const EXAMPLE_AGENT_KEY =
  /WARD_AGENT_KEY=(wak_[A-Za-z0-9_-]+)/.exec(readFileSync(join(root, 'examples/README.md'), 'utf8'))?.[1] ?? '';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

function start(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [ward, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exited };
}

test('a gateway and an agent from examples/ talk to each other, and the agent survives a gateway restart', async () => {
  assert.ok(EXAMPLE_AGENT_KEY, 'examples/README.md shows the demo agent key');
  const dir = mkdtempSync(join(tmpdir(), 'ward-examples-'));
  try {
    const ports: Record<string, number> = {
      '7400': await freePort(),
      '7401': await freePort(),
      '7432': await freePort(),
      '7422': await freePort(),
    };
    for (const file of ['gateway.yaml', 'agent.yaml']) {
      let text = readFileSync(join(root, 'examples', file), 'utf8');
      for (const [from, to] of Object.entries(ports)) text = text.replaceAll(`127.0.0.1:${from}`, `127.0.0.1:${to}`);
      writeFileSync(join(dir, file), text);
    }
    mkdirSync(join(dir, 'keys'));
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'keys', 'id_ed25519')]);
    assert.equal(keygen.status, 0, String(keygen.stderr));

    let gateway = start(['gateway', '--config', join(dir, 'gateway.yaml')]);
    await eventually(
      () => gateway.output().includes('ward gateway: http'),
      30_000,
      `the gateway to start: ${gateway.output()}`,
    );
    const agent = start(['agent', '--config', join(dir, 'agent.yaml')], {
      WARD_AGENT_KEY: EXAMPLE_AGENT_KEY,
      DEMO_PG_PASSWORD: 'app',
      OPENAI_API_KEY: 'sk-demo',
    });

    const { stdout: token } = await exec(process.execPath, [
      ward,
      'token',
      'issue',
      '--data-dir',
      join(dir, 'ward-data'),
      '--subject',
      'ops',
      '--role',
      'admin',
    ]);
    const agents = async () => {
      const res = await fetch(`http://127.0.0.1:${ports['7400']}/api/v1/agents`, {
        headers: { authorization: `Bearer ${token.trim()}` },
      }).catch(() => undefined);
      if (!res?.ok) return [];
      return ((await res.json()) as { agents: Array<{ name: string; connections: string[] }> }).agents;
    };
    await eventually(
      async () => (await agents()).some((a) => a.name === 'dc1'),
      30_000,
      `the agent to come online: ${agent.output()}`,
    );
    const online = (await agents()).find((a) => a.name === 'dc1');
    assert.deepEqual(online?.connections.sort(), ['demo-openai', 'demo-pg', 'demo-ssh']);

    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0, gateway.output());
    gateway = start(['gateway', '--config', join(dir, 'gateway.yaml')]);
    await eventually(() => gateway.output().includes('ward gateway: http'), 30_000, 'the gateway to restart');
    await eventually(
      async () => (await agents()).some((a) => a.name === 'dc1'),
      30_000,
      `the agent to reconnect by itself: ${agent.output()}`,
    );

    agent.child.kill('SIGTERM');
    gateway.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0, agent.output());
    assert.equal(await gateway.exited, 0, gateway.output());
    // The gateway recorded both arrivals of the agent in its audit log.
    const { stdout } = await exec(process.execPath, [
      ward,
      'audit',
      'verify',
      '--data-dir',
      join(dir, 'ward-data'),
      '--json',
    ]);
    const result = JSON.parse(stdout) as { ok: boolean; records: number };
    assert.equal(result.ok, true);
    assert.ok(result.records >= 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
