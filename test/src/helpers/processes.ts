import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

export interface Run {
  /** Exit status, or null when a signal ended the process. */
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program to its end, feeding `input` on stdin (an empty stdin when none), killed after `timeoutMs`. */
export function run(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {}); // the program may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
