// `ward demo` as a new user runs it: the real binary, its first screen, the commands it
// prints (psql, an OpenAI client, sessions, audit), Ctrl-C, and a second run on the same data.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import OpenAI from 'openai';

const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;
const ward = join(root, 'packages/cli/bin/ward.js');
const exec = promisify(execFile);

interface Demo {
  child: ChildProcess;
  screen: string;
  stderr: () => string;
  httpUrl: string;
  pgPort: number;
  exited: Promise<number | null>;
}

async function startDemo(dataDir: string, env: NodeJS.ProcessEnv): Promise<Demo> {
  const child = spawn(
    process.execPath,
    [
      ward,
      'demo',
      '--data-dir',
      dataDir,
      '--http-port',
      '0',
      '--tunnel-port',
      '0',
      '--pg-port',
      '0',
      '--ssh-port',
      '0',
    ],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 120_000;
  while (!out.includes('Ctrl-C stops everything')) {
    if (child.exitCode !== null) throw new Error(`ward demo exited early (${child.exitCode}): ${err}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ward demo did not print its first screen in time:\n${out}\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const httpUrl = /gateway {2}(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '';
  const pgPort = Number(/Postgres on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  return { child, screen: out, stderr: () => err, httpUrl, pgPort, exited };
}

describe('ward demo', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ward-demo-data-'));
  const configDir = mkdtempSync(join(tmpdir(), 'ward-demo-config-'));
  const env = { WARD_CONFIG_DIR: configDir };
  after(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  test('starts, prints what to try, serves psql and the OpenAI SDK, records, and stops on Ctrl-C', async () => {
    const demo = await startDemo(dataDir, env);
    try {
      assert.ok(demo.httpUrl, demo.screen);
      assert.ok(demo.pgPort > 0, demo.screen);
      for (const expected of [
        'demo-pg (postgres)',
        'demo-openai (http)',
        'ward connect demo-pg',
        'OPENAI_BASE_URL',
        'audit verify',
      ]) {
        assert.ok(demo.screen.includes(expected), `first screen mentions ${expected}`);
      }
      for (const step of ['demo upstream', 'embedded Postgres', 'gateway', 'agent'])
        assert.match(demo.stderr(), new RegExp(`${step}.*ready`), `progress for ${step}`);

      // The token cache is readable by its owner only.
      const credentials = join(configDir, 'credentials.json');
      assert.equal(statSync(credentials).mode & 0o077, 0);
      const { token } = JSON.parse(readFileSync(credentials, 'utf8')) as { token: string };

      const psql = await exec(
        'psql',
        [
          '-X',
          '-A',
          '-t',
          '-h',
          '127.0.0.1',
          '-p',
          String(demo.pgPort),
          '-d',
          'demo-pg',
          '-c',
          'select count(*) from customers',
        ],
        {
          env: { ...process.env, PGPASSWORD: token },
        },
      );
      assert.equal(psql.stdout.trim(), '500');
      // The printed ward exec line, as the user would paste it (csv: one value, no table frame).
      assert.ok(demo.screen.includes("exec demo-pg 'select count(*) from customers'"));
      const viaExec = await exec(
        process.execPath,
        [ward, 'exec', 'demo-pg', '--format', 'csv', 'select count(*) from customers'],
        { env: { ...process.env, ...env } },
      );
      assert.match(viaExec.stdout, /^count\r?\n500\r?\n$/);

      const client = new OpenAI({ baseURL: `${demo.httpUrl}/c/demo-openai/v1`, apiKey: token, maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'Tell me about customer emails' }],
      });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      assert.ok(text.length > 0);

      // SSH to this machine through the demo: register a key with ward keys add, then ssh.
      const sshPort = Number(/SSH on 127\.0\.0\.1:(\d+)/.exec(demo.screen)?.[1]);
      assert.ok(sshPort > 0, 'the demo serves SSH when sshd is installed (.ci/run installs it)');
      const keyPath = join(configDir, 'user_ed25519');
      await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
      await exec(process.execPath, [ward, 'keys', 'add', `${keyPath}.pub`], { env: { ...process.env, ...env } });
      const sshArgs = [
        '-i',
        keyPath,
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        `UserKnownHostsFile=${join(configDir, 'known_hosts')}`,
      ];
      const ssh = await exec('ssh', [
        ...sshArgs,
        '-p',
        String(sshPort),
        '-l',
        'demo-ssh',
        '127.0.0.1',
        'echo through-ward-$((6*7))',
      ]);
      assert.equal(ssh.stdout.trim(), 'through-ward-42');
      const sshExec = await exec(process.execPath, [ward, 'exec', 'demo-ssh', 'echo exec-$((6*7))'], {
        env: { ...process.env, ...env },
      });
      assert.equal(sshExec.stdout.trim(), 'exec-42');

      const listed = await exec(process.execPath, [ward, 'sessions', 'list', '--json'], {
        env: { ...process.env, ...env },
      });
      const sessions = JSON.parse(listed.stdout) as Array<{ id: string; connection: string }>;
      assert.ok(sessions.some((s) => s.connection === 'demo-pg'));
      assert.ok(sessions.some((s) => s.connection === 'demo-openai'));
      assert.ok(sessions.some((s) => s.connection === 'demo-ssh'));
      // The LLM connection records what the model call was, not just bytes.
      const llmSession = (sessions as Array<{ id: string; connection: string }>).find(
        (s) => s.connection === 'demo-openai',
      );
      const shown = await exec(process.execPath, [ward, 'sessions', 'show', llmSession?.id ?? '', '--json'], {
        env: { ...process.env, ...env },
      });
      const { records } = JSON.parse(shown.stdout) as {
        records: Array<{ kind: string; data: Record<string, unknown> }>;
      };
      assert.equal(records.find((r) => r.kind === 'http.exchange')?.data['model'], 'gpt-4o-mini');

      const exportPath = join(dataDir, 'audit.jsonl');
      await exec(process.execPath, [ward, 'audit', 'export', '--out', exportPath], { env: { ...process.env, ...env } });
      const verified = await exec(process.execPath, [ward, 'audit', 'verify', exportPath]);
      assert.match(verified.stdout, /^OK: \d+ records/);
    } finally {
      demo.child.kill('SIGINT');
    }
    assert.equal(await demo.exited, 0, demo.stderr());
    assert.match(demo.stderr(), /stopped\./);
  });

  test('a second run reuses the data dir: earlier sessions and the audit chain carry on', async () => {
    const demo = await startDemo(dataDir, env);
    try {
      const listed = await exec(process.execPath, [ward, 'sessions', 'list', '--json', '--limit', '100'], {
        env: { ...process.env, ...env },
      });
      const sessions = JSON.parse(listed.stdout) as Array<{ connection: string }>;
      assert.ok(sessions.length >= 2, 'the first run’s sessions are still there');
    } finally {
      demo.child.kill('SIGINT');
    }
    assert.equal(await demo.exited, 0, demo.stderr());
    const verified = await exec(process.execPath, [ward, 'audit', 'verify', '--data-dir', dataDir]);
    assert.match(verified.stdout, /^OK: \d+ records/);
  });
});
