// Field builders both config schemas use, so that a duration, size, address, name or path is
// checked, and complained about, the same way in the gateway's file and the agent's.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { WardError } from '../errors.js';
import { type HostPort, parseHostPort } from './host-port.js';
import { problem, showValue } from './problem.js';
import { parseByteSize, parseDuration } from './units.js';

function fromParser<T>(
  parse: (input: never) => T,
  accepts: (input: unknown) => boolean,
  wrong: (v: unknown) => string,
) {
  return z.unknown().transform((input, ctx): T => {
    if (input === undefined) {
      // Reported like any absent required field ("is missing. Fix: add …").
      ctx.addIssue({ code: 'invalid_type', expected: 'string', input, message: 'required' });
      return z.NEVER;
    }
    if (!accepts(input)) {
      ctx.addIssue({ code: 'custom', message: wrong(input) });
      return z.NEVER;
    }
    try {
      return parse(input as never);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof WardError ? err.message : String(err) });
      return z.NEVER;
    }
  });
}

/** A duration (`250ms`, `30s`, `5m`, `1h`) parsed to milliseconds. */
export function durationField() {
  return fromParser(
    parseDuration,
    (v) => typeof v === 'string',
    (v) =>
      typeof v === 'number'
        ? problem(`${v} has no unit`, `write ${v}s for seconds or ${v}ms for milliseconds`)
        : problem(`expected a duration, found ${showValue(v)}`, 'write a number with a unit, e.g. 250ms, 30s, 5m, 1h'),
  ).describe('a duration such as 250ms, 30s, 5m or 1h');
}

/** A byte size (`1MiB`, `512KiB`, `64KB`, or a number of bytes) parsed to bytes. */
export function byteSizeField() {
  return fromParser(
    parseByteSize,
    (v) => typeof v === 'string' || typeof v === 'number',
    (v) => problem(`expected a byte size, found ${showValue(v)}`, 'write e.g. 256KiB, 1MiB or a number of bytes'),
  ).describe('a size such as 256KiB or 1MiB');
}

/** A `host:port` address parsed to `{ host, port }`. */
export function hostPortField() {
  return fromParser<HostPort>(
    parseHostPort,
    (v) => typeof v === 'string',
    (v) =>
      problem(`expected host:port, found ${showValue(v)}`, 'write e.g. 127.0.0.1:7401 (a port alone is not enough)'),
  ).describe('host:port, e.g. 127.0.0.1:7401');
}

/** One of a fixed set of words; `noun` names the set in the error ("a connection type"). */
export function enumField<const T extends readonly [string, ...string[]]>(values: T, noun: string) {
  return z.enum(values, {
    error: (issue) =>
      issue.input === undefined
        ? undefined
        : problem(`${showValue(issue.input)} is not ${noun}`, `use one of ${values.join(', ')}`),
  });
}

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A name people type in commands and URLs: lower-case, digits, `-`, `_`, at most 63 chars. */
export function nameField(noun: string) {
  return z.string().regex(NAME_PATTERN, {
    error: (issue) =>
      problem(
        `${showValue(issue.input)} is not a valid ${noun} name`,
        'use 1-63 characters from a-z, 0-9, "-" and "_", starting with a letter or digit',
      ),
  });
}

export interface PathFieldOptions {
  /** Refuse the config unless the path exists and is this kind of entry. */
  mustExist?: 'file' | 'directory';
}

/**
 * A filesystem path, resolved against `baseDir` (the config file's directory) so that a
 * config means the same thing whatever directory the process starts in.
 */
export function pathField(baseDir: string, options: PathFieldOptions = {}) {
  return z
    .string()
    .min(1)
    .transform((input, ctx) => {
      if (input === '~' || input.startsWith('~/')) {
        ctx.addIssue({
          code: 'custom',
          message: problem(
            `"${input}": "~" is not expanded here`,
            'write the full path, or a path relative to the config file',
          ),
        });
        return z.NEVER;
      }
      const full = isAbsolute(input) ? resolve(input) : resolve(baseDir, input);
      if (options.mustExist) {
        const kind = entryKind(full);
        if (kind !== options.mustExist) {
          const what =
            kind === 'missing'
              ? `${options.mustExist} ${full} does not exist`
              : `${full} is a ${kind}, not a ${options.mustExist}`;
          const relativeNote = isAbsolute(input) ? '' : " (relative paths start from the config file's directory)";
          ctx.addIssue({ code: 'custom', message: problem(what + relativeNote, `create it or correct the path`) });
          return z.NEVER;
        }
      }
      return full;
    });
}

function entryKind(path: string): 'file' | 'directory' | 'missing' | 'special file' {
  try {
    const st = statSync(path);
    return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'special file';
  } catch {
    return 'missing';
  }
}
