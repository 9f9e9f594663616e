import { WardError } from '../errors.js';

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
const DURATION_FIX = 'Fix: write a number followed by a unit (ms, s, m, h, d), e.g. 250ms, 30s, 5m, 1h or 1h30m';

/**
 * Parses a duration into milliseconds. Units: ms, s, m, h, d; parts may be chained, largest
 * first or not (`1h30m`). A bare number is refused: "60" could mean seconds or milliseconds,
 * and guessing wrong by a factor of 1000 is the kind of mistake that only shows in production.
 *
 * @example
 * parseDuration('250ms'); // 250
 * parseDuration('1h30m'); // 5_400_000
 * @throws WardError ERR_CONFIG_BAD_DURATION
 */
export function parseDuration(input: string): number {
  const text = typeof input === 'string' ? input.trim() : '';
  let total = 0;
  let at = 0;
  DURATION_PART.lastIndex = 0;
  while (at < text.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(text);
    if (!m) break;
    total += Number(m[1]) * (DURATION_UNITS_MS[m[2] ?? ''] ?? Number.NaN);
    at = DURATION_PART.lastIndex;
  }
  if (text.length === 0 || at !== text.length) {
    const hint = /^\d+(\.\d+)?$/.test(text) ? ` (a bare number has no unit: write ${text}s or ${text}ms)` : '';
    throw new WardError(
      'ERR_CONFIG_BAD_DURATION',
      'invalid_argument',
      `${show(input)} is not a duration${hint}. ${DURATION_FIX}.`,
    );
  }
  if (!Number.isSafeInteger(total)) {
    const why =
      Number.isFinite(total) && total < Number.MAX_SAFE_INTEGER ? 'is finer than a millisecond' : 'is too long';
    throw new WardError('ERR_CONFIG_BAD_DURATION', 'invalid_argument', `${show(input)} ${why}. ${DURATION_FIX}.`);
  }
  return total;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const SIZE_FIX =
  'Fix: write a whole number of bytes or a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 512KiB or 1MiB';

/**
 * Parses a byte size. KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024 (IEC 80000-13);
 * units are case-insensitive. A number is taken as bytes.
 *
 * @example
 * parseByteSize('1MiB'); // 1_048_576
 * parseByteSize('64KB'); // 64_000
 * parseByteSize(4096); // 4096
 * @throws WardError ERR_CONFIG_BAD_SIZE
 */
export function parseByteSize(input: string | number): number {
  let bytes = Number.NaN;
  if (typeof input === 'number') {
    bytes = input;
  } else if (typeof input === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim());
    const unit = m?.[2] === '' ? 1 : SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
    if (m && unit !== undefined) bytes = Number(m[1]) * unit;
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    const why = Number.isFinite(bytes) && bytes >= 0 ? 'is not a whole number of bytes' : 'is not a byte size';
    throw new WardError('ERR_CONFIG_BAD_SIZE', 'invalid_argument', `${show(input)} ${why}. ${SIZE_FIX}.`);
  }
  return bytes;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}
