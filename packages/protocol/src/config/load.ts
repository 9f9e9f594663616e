import { readFileSync } from 'node:fs';
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type * as z from 'zod';
import { WardError } from '../errors.js';
import { closestMatch } from './edit-distance.js';
import { endSentence, FIX_MARKER, problem, showValue } from './problem.js';
import { descriptionAt, knownKeysAt, schemasAt, unwrapChain } from './schema-walk.js';

/** A problem found by a schema-independent check on the raw YAML data (see `rawCheck`). */
export interface ConfigProblem {
  readonly path: readonly (string | number)[];
  /** `what is wrong. Fix: what to write instead.` (build it with `problem()`). */
  readonly message: string;
}

export interface ParseConfigOptions {
  /**
   * Runs on the raw parsed YAML, before and independently of the schema, for rules that must
   * see keys a strict schema would only call "unknown" (e.g. credentials in the gateway file).
   * An unknown-key report for the same path is dropped in favour of this problem.
   */
  rawCheck?: (raw: unknown) => ConfigProblem[];
}

export interface LoadConfigOptions extends ParseConfigOptions {
  /** Which program's config this is; used in "file not found" advice. */
  what: 'gateway' | 'agent';
}

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * Reads a YAML config file, validates it against `schema` and returns the result deep-frozen.
 * Every problem in the file is reported at once, one per line, as
 * `FILE:LINE:COL: field.path: what is wrong. Fix: what to write instead.`
 *
 * @example
 * const config = loadConfigFile('gateway.yaml', gatewaySchema, { what: 'gateway' });
 * @throws WardError ERR_CONFIG_NOT_FOUND, ERR_CONFIG_UNREADABLE, ERR_CONFIG_INVALID
 */
export function loadConfigFile<S extends z.ZodType>(
  path: string,
  schema: S,
  options: LoadConfigOptions,
): DeepReadonly<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new WardError(
        'ERR_CONFIG_NOT_FOUND',
        'not_found',
        problem(
          `${path}: the ${options.what} config file does not exist`,
          `pass the right path with --config, or start from examples/${options.what}.yaml`,
        ),
        { cause: err },
      );
    }
    throw new WardError(
      'ERR_CONFIG_UNREADABLE',
      'invalid_argument',
      problem(
        `${path}: cannot read the ${options.what} config file (${code ?? String(err)})`,
        'check that it is a readable file',
      ),
      { cause: err },
    );
  }
  return parseConfigText(text, path, schema, options);
}

/**
 * Same as `loadConfigFile` for text already in memory; `path` is only used in messages (and
 * by schemas that resolve relative paths, which capture their base directory themselves).
 *
 * @example
 * parseConfigText('listen: { http: 7400 }\n', 'gateway.yaml', gatewaySchema);
 * // throws: gateway.yaml:1:17: listen.http: expected host:port, found 7400. Fix: write e.g. 127.0.0.1:7401 …
 */
export function parseConfigText<S extends z.ZodType>(
  text: string,
  path: string,
  schema: S,
  options: ParseConfigOptions = {},
): DeepReadonly<z.output<S>> {
  const lineCounter = new LineCounter();
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number): string => {
    const pos = lineCounter.linePos(offset);
    return `${path}:${pos.line}:${pos.col}`;
  };

  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => ({
      offset: e.pos[0],
      text: `${where(e.pos[0])}: YAML syntax: ${problem(firstLine(e.message), yamlFix(e.code))}`,
    }));
    throw invalid(lines);
  }

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // Only alias expansion can fail here (a "billion laughs" file); the parser accepted the rest.
    throw invalid([
      {
        offset: 0,
        text: `${where(0)}: YAML: ${problem(firstLine(String((err as Error).message)), 'use fewer aliases (*name)')}`,
      },
    ]);
  }

  const found: Array<{ path: readonly PropertyKey[]; key: boolean; message: string }> = [];
  const rawProblems = options.rawCheck?.(raw) ?? [];
  for (const p of rawProblems) found.push({ path: p.path, key: true, message: p.message });

  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success && found.length === 0) return deepFreeze(result.data) as DeepReadonly<z.output<S>>;

  const claimed = new Set(rawProblems.map((p) => fieldPath(p.path)));
  // A misspelt required key is reported once, as the unknown key with its did-you-mean, not
  // a second time as the required key being missing.
  // Likewise a problem about the object holding the misspelt key ("names no source" for
  // `{ evn: X }`) is the typo's consequence, not a second mistake.
  const suggested = new Set<string>();
  const hasTypo = new Set<string>();
  for (const issue of result.error?.issues ?? []) {
    if (issue.code !== 'unrecognized_keys') continue;
    const known = knownKeysAt(schema, issue.path, raw);
    for (const key of issue.keys) {
      const keyPath = [...issue.path, key];
      if (claimed.has(fieldPath(keyPath))) continue;
      const guess = closestMatch(key, known);
      if (guess) {
        suggested.add(fieldPath([...issue.path, guess]));
        hasTypo.add(fieldPath(issue.path));
      }
      found.push({ path: keyPath, key: true, message: unknownKeyMessage(key, guess, known) });
    }
  }
  for (const issue of result.error?.issues ?? []) {
    if (issue.code === 'unrecognized_keys') continue;
    if (suggested.has(fieldPath(issue.path)) && isMissing(issue, raw)) continue;
    if (issue.code === 'custom' && hasTypo.has(fieldPath(issue.path))) continue;
    found.push({ path: issue.path, key: false, message: describeIssue(issue, schema, raw) });
  }

  const seen = new Set<string>();
  const lines: Array<{ offset: number; text: string }> = [];
  for (const f of found) {
    const offset = locate(doc, f.path, f.key);
    const text = `${where(offset)}: ${fieldPath(f.path) || '(top level)'}: ${f.message}`;
    if (seen.has(text)) continue;
    seen.add(text);
    lines.push({ offset, text });
  }
  throw invalid(lines);
}

function invalid(lines: Array<{ offset: number; text: string }>): WardError {
  const sorted = [...lines].sort((a, b) => a.offset - b.offset);
  return new WardError('ERR_CONFIG_INVALID', 'invalid_argument', sorted.map((l) => l.text).join('\n'));
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/\s*at line \d+, column \d+:?$/, '');
}

function yamlFix(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'keep only one of the two entries with this key';
    case 'TAB_AS_INDENT':
      return 'indent with spaces, not tabs';
    case 'BAD_INDENT':
    case 'MULTILINE_IMPLICIT_KEY':
      return 'line this entry up with its siblings (same number of spaces)';
    case 'MULTIPLE_DOCS':
      return 'keep a single document (remove the extra "---")';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MISSING_CHAR':
    case 'UNEXPECTED_TOKEN':
      return 'check the punctuation here; quote values that contain ": ", "#" or start with a special character';
    default:
      return 'correct the YAML syntax at this point';
  }
}

/** `connections[1].auth.secret`, the way the docs name fields. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function unknownKeyMessage(key: string, guess: string | undefined, known: readonly string[]): string {
  if (guess) return `"${key}" is not a known key. Fix: did you mean "${guess}"?`;
  const allowed = known.length > 0 ? `; keys allowed here: ${known.join(', ')}` : '';
  return problem(`"${key}" is not a known key`, `remove it${allowed}`);
}

const TYPE_NAMES: Readonly<Record<string, [string, string]>> = {
  string: ['text', 'write text; quote it if YAML reads it as a number or boolean (e.g. "5432")'],
  number: ['a number', 'write a number without quotes'],
  int: ['a whole number', 'write a whole number without quotes'],
  boolean: ['true or false', 'write true or false, without quotes'],
  object: ['a mapping of keys to values', 'write indented "key: value" lines under it, or { key: value }'],
  array: ['a list', 'write one "- item" line per entry, or [a, b]'],
};

function describeIssue(issue: z.core.$ZodIssue, schema: z.ZodType, raw: unknown): string {
  const value = valueAt(raw, issue.path);
  const last = issue.path[issue.path.length - 1];
  const missing = isMissing(issue, raw);
  const description = descriptionAt(schema, issue.path, raw);

  if (missing) {
    const allowed = allowedValues(issue, schema, raw);
    const hint = allowed ? `one of ${allowed.join(', ')}` : (description ?? typeName(issue)[0]);
    return problem('is missing', `add ${String(last)}: ${hint}`);
  }
  if (issue.message.includes(FIX_MARKER)) return endSentence(issue.message);

  switch (issue.code) {
    case 'invalid_type': {
      if (issue.path.length === 0) {
        return problem(
          `the file holds ${showValue(value)}, not a mapping of settings`,
          'write "key: value" lines at the top level',
        );
      }
      const [expected, fix] = typeName(issue);
      return problem(`expected ${expected}, found ${showValue(value)}`, description ? `write ${description}` : fix);
    }
    case 'invalid_value':
    case 'invalid_union': {
      const allowed = allowedValues(issue, schema, raw);
      if (allowed) {
        const target = issue.code === 'invalid_union' ? valueAt(raw, issue.path) : value;
        return problem(
          `${showValue(target)} is not a valid ${String(last ?? 'value')}`,
          allowed.length === 1 ? `write ${allowed[0]}` : `use one of ${allowed.join(', ')}`,
        );
      }
      return problem(
        `${showValue(value)} does not match any accepted form`,
        description ? `write ${description}` : 'see docs/configuration.md',
      );
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small ? issue.minimum : issue.maximum;
      const bound = issue.inclusive === false ? (small ? 'greater than' : 'less than') : small ? 'at least' : 'at most';
      if (issue.origin === 'string') {
        if (small && Number(limit) === 1)
          return problem('must not be empty', description ? `write ${description}` : 'write a value');
        return problem(`must be ${bound} ${limit} characters long`, `shorten or lengthen ${showValue(value)}`);
      }
      if (issue.origin === 'array') {
        return problem(`needs ${bound} ${limit} entries`, small ? 'add entries' : 'remove entries');
      }
      return problem(`must be ${bound} ${limit}, found ${showValue(value)}`, `write a number ${bound} ${limit}`);
    }
    case 'invalid_format':
      return problem(
        `${showValue(value)} is not a valid ${issue.format}`,
        description ? `write ${description}` : 'see docs/configuration.md',
      );
    default:
      return problem(issue.message, description ? `write ${description}` : 'see docs/configuration.md');
  }
}

function isMissing(issue: z.core.$ZodIssue, raw: unknown): boolean {
  return (
    issue.path.length > 0 &&
    valueAt(raw, issue.path) === undefined &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union')
  );
}

function typeName(issue: z.core.$ZodIssue): [string, string] {
  const expected = issue.code === 'invalid_type' ? issue.expected : 'value';
  return TYPE_NAMES[expected] ?? [expected, `write ${expected}`];
}

function allowedValues(issue: z.core.$ZodIssue, schema: z.ZodType, raw: unknown): string[] | undefined {
  if (issue.code === 'invalid_value') return issue.values.map((v) => String(v));
  if (issue.code === 'invalid_union') {
    const options = (issue as { options?: unknown[] }).options;
    if (Array.isArray(options)) return options.map((v) => String(v));
  }
  // A missing enum field reports invalid_type; recover the allowed words from the schema.
  for (const s of schemasAt(schema, issue.path, raw)) {
    for (const link of unwrapChain(s)) {
      const options = (link as { options?: unknown }).options;
      const def = (link as unknown as { _zod: { def: { type: string } } })._zod.def;
      if ((def.type === 'enum' || def.type === 'literal') && Array.isArray(options)) return options.map(String);
      if (def.type === 'literal') return ((def as unknown as { values: unknown[] }).values ?? []).map(String);
    }
  }
  return undefined;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** Source offset of the node at `path`; the closest existing ancestor when it is absent. */
function locate(doc: Document, path: readonly PropertyKey[], preferKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return offset;
      if (i === path.length - 1 && preferKey) return rangeStart(pair.key) ?? offset;
      node = pair.value;
      offset = rangeStart(pair.value) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) return offset;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: readonly number[] | null } | null | undefined)?.range;
  return range?.[0];
}

/** Freezes a parsed config all the way down, so no part of the program can change it later. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
