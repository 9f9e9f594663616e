import { createProgram } from '@ward/cli';

/**
 * Runs the ward CLI in-process against `gateway` as the holder of `token` and returns what it
 * printed. One at a time: it borrows process.stdout while it runs.
 */
export async function runWard(gateway: string, token: string, ...args: string[]): Promise<string> {
  const saved = { gateway: process.env['WARD_GATEWAY'], token: process.env['WARD_TOKEN'] };
  process.env['WARD_GATEWAY'] = gateway;
  process.env['WARD_TOKEN'] = token;
  const write = process.stdout.write;
  let out = '';
  // The CLI prints strings; the test runner's own reports (binary, on the same stream) pass through.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (typeof chunk !== 'string') return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await createProgram()
      .exitOverride()
      .parseAsync(['node', 'ward', ...args]);
  } finally {
    process.stdout.write = write;
    for (const [k, v] of [
      ['WARD_GATEWAY', saved.gateway],
      ['WARD_TOKEN', saved.token],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return out;
}
