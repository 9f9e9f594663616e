import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = process.env['WARD_REPO_ROOT'] ?? new URL('../..', import.meta.url).pathname;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist' || name === 'gen') continue;
    if (statSync(path).isDirectory()) sources(path, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// fastify's rule: an error code that users can see must be documented, and docs must not
// list codes that no longer exist.
test('every ERR_ code in the source is documented in docs/errors.md, and no other', () => {
  const used = new Set<string>();
  for (const file of sources(join(root, 'packages'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/['"`](ERR_[A-Z0-9_]*[A-Z0-9])['"`]/g)) used.add(m[1] ?? '');
  }
  const docs = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const documented = new Set([...docs.matchAll(/^\|\s*(ERR_[A-Z0-9_]+)\s*\|/gm)].map((m) => m[1] ?? ''));
  assert.ok(used.size > 20, `expected many error codes in the source, found ${used.size}`);
  const missing = [...used].filter((c) => !documented.has(c)).sort();
  const stale = [...documented].filter((c) => !used.has(c)).sort();
  assert.deepEqual(missing, [], `codes missing from docs/errors.md: ${missing.join(', ')}`);
  assert.deepEqual(stale, [], `codes documented but not used: ${stale.join(', ')}`);
});
