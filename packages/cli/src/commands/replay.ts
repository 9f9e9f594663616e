import { setTimeout as sleep } from 'node:timers/promises';
import { WardError } from '@ward/protocol';
import type { Command } from 'commander';
import { apiGet, resolveTarget } from '../api-client.js';

export interface ReplayOptions {
  /** Playback speed factor (2 = twice as fast). Default 1. */
  speed?: number;
  /** Longest pause kept between two events, in seconds (asciinema's idle_time_limit). Default 2. */
  maxIdleSeconds?: number;
  signal?: AbortSignal;
}

function parseEvents(text: string): Array<[number, string, string]> {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = JSON.parse(lines.shift() ?? 'null') as { version?: unknown } | null;
  if (header?.version !== 2) {
    throw new WardError('ERR_CLI_BAD_RECORDING', 'invalid_argument', 'the recording is not asciicast v2');
  }
  return lines.map((line, i) => {
    const e = JSON.parse(line) as unknown;
    if (!Array.isArray(e) || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string') {
      throw new WardError('ERR_CLI_BAD_RECORDING', 'invalid_argument', `event ${i + 1} is not [time, code, data]`);
    }
    return [e[0], e[1], e[2]];
  });
}

/**
 * Plays an asciicast v2 recording to a terminal (or any writable): output events in order,
 * with their pauses divided by `speed` and capped at `maxIdleSeconds`. Input, resize and
 * marker events are not written (the terminal output already shows their effect).
 *
 * @example
 * await replayAsciicast(await readFile('session.cast', 'utf8'), process.stdout, { speed: 2 });
 */
export async function replayAsciicast(
  text: string,
  out: NodeJS.WritableStream,
  options: ReplayOptions = {},
): Promise<void> {
  const speed = options.speed ?? 1;
  const maxIdle = options.maxIdleSeconds ?? 2;
  if (!(speed > 0)) throw new WardError('ERR_CLI_BAD_OPTION', 'invalid_argument', '--speed must be above 0');
  if (!(maxIdle >= 0)) throw new WardError('ERR_CLI_BAD_OPTION', 'invalid_argument', '--max-idle must be 0 or more');
  let previous = 0;
  for (const [time, code, data] of parseEvents(text)) {
    if (code !== 'o') continue;
    const pause = Math.min(Math.max(0, time - previous), maxIdle) / speed;
    previous = time;
    if (pause > 0.001) await sleep(pause * 1000, undefined, options.signal ? { signal: options.signal } : undefined);
    if (!out.write(data)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
}

/** Adds `replay` under `ward sessions`. */
export function registerReplay(sessions: Command): void {
  sessions
    .command('replay')
    .description(
      'Play back a recorded SSH terminal session (asciicast v2) in this terminal, with its timing.\n' +
        'Admins and auditors may replay any session; users their own. --raw prints the asciicast file\n' +
        'instead (for `asciinema play`).',
    )
    .argument('<id>', 'session id, as printed by `ward sessions list`')
    .option('--speed <n>', 'playback speed factor (2 = twice as fast)', '1')
    .option('--max-idle <seconds>', 'longest pause kept between two outputs', '2')
    .option('--raw', 'print the asciicast v2 file instead of playing it')
    .option('--gateway <url>', 'gateway URL (default: from the token cache or WARD_GATEWAY)')
    .action(async (id: string, opts: { speed: string; maxIdle: string; raw?: boolean; gateway?: string }) => {
      const res = await apiGet(resolveTarget(opts), `/api/v1/sessions/${encodeURIComponent(id)}/recording`);
      const text = await res.text();
      if (opts.raw) {
        process.stdout.write(text);
        return;
      }
      await replayAsciicast(text, process.stdout, { speed: Number(opts.speed), maxIdleSeconds: Number(opts.maxIdle) });
    });
}
