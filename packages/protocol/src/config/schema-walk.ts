// Finds the zod schema(s) that govern a path in the config, so an error can list the keys
// allowed there (did-you-mean) and reuse a field's description as the "Fix:" hint. This reads
// zod's `_zod.def`, which zod documents as the way to introspect schemas in v4.
import type * as z from 'zod';

type Def = { type: string } & Record<string, unknown>;
type Schema = z.ZodType;

function defOf(schema: Schema): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch']);

/** Peels wrappers (optional, default, pipe input, lazy…) off a schema, outermost first. */
export function unwrapChain(schema: Schema): Schema[] {
  const chain: Schema[] = [schema];
  let current = schema;
  for (let guard = 0; guard < 32; guard++) {
    const def = defOf(current);
    let next: unknown;
    if (WRAPPERS.has(def.type)) next = def['innerType'];
    else if (def.type === 'pipe') next = def['in'];
    else if (def.type === 'lazy') next = (def['getter'] as () => unknown)();
    if (!next) break;
    current = next as Schema;
    chain.push(current);
  }
  return chain;
}

function core(schema: Schema): Schema {
  const chain = unwrapChain(schema);
  return chain[chain.length - 1] ?? schema;
}

function branches(schema: Schema, raw: unknown): Schema[] {
  const base = core(schema);
  const def = defOf(base);
  if (def.type === 'union') {
    let options = (def['options'] as Schema[]).flatMap((o) => branches(o, raw));
    const disc = def['discriminator'];
    if (typeof disc === 'string' && raw !== null && typeof raw === 'object') {
      const chosen = (raw as Record<string, unknown>)[disc];
      const matching = options.filter((o) => literalValues(fieldOf(o, disc)).includes(chosen));
      if (matching.length > 0) options = matching;
    }
    return options;
  }
  if (def.type === 'intersection')
    return [...branches(def['left'] as Schema, raw), ...branches(def['right'] as Schema, raw)];
  return [base];
}

function fieldOf(schema: Schema, key: string | number): Schema | undefined {
  const def = defOf(core(schema));
  if (def.type === 'object') return (def['shape'] as Record<string, Schema>)[String(key)];
  if (def.type === 'array' && typeof key === 'number') return def['element'] as Schema;
  if (def.type === 'record') return def['valueType'] as Schema;
  return undefined;
}

function literalValues(schema: Schema | undefined): unknown[] {
  if (!schema) return [];
  const def = defOf(core(schema));
  if (def.type === 'literal') return def['values'] as unknown[];
  if (def.type === 'enum') return Object.values(def['entries'] as Record<string, unknown>);
  return [];
}

/** The schemas that may apply at `path` (several when a union has not been narrowed). */
export function schemasAt(root: Schema, path: readonly PropertyKey[], rawRoot: unknown): Schema[] {
  let current: Schema[] = [root];
  let raw = rawRoot;
  for (const seg of path) {
    if (typeof seg === 'symbol') return [];
    current = current.flatMap((s) => branches(s, raw)).flatMap((s) => fieldOf(s, seg) ?? []);
    raw = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[String(seg)] : undefined;
    if (current.length === 0) return [];
  }
  return current;
}

/** Keys an object at `path` accepts (union of all candidate branches). */
export function knownKeysAt(root: Schema, path: readonly PropertyKey[], rawRoot: unknown): string[] {
  let raw: unknown = rawRoot;
  for (const seg of path)
    raw = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[String(seg)] : undefined;
  const keys = new Set<string>();
  for (const s of schemasAt(root, path, rawRoot).flatMap((x) => branches(x, raw))) {
    const def = defOf(s);
    if (def.type === 'object') for (const k of Object.keys(def['shape'] as object)) keys.add(k);
  }
  return [...keys];
}

/** The first `.describe()` text found on the schema at `path` or its wrappers. */
export function descriptionAt(root: Schema, path: readonly PropertyKey[], rawRoot: unknown): string | undefined {
  for (const s of schemasAt(root, path, rawRoot)) {
    for (const link of unwrapChain(s)) {
      const text = (link as { description?: string }).description;
      if (text) return text;
    }
  }
  return undefined;
}
