#!/usr/bin/env node
// Runs every compiled test file (unit tests beside the code, end-to-end tests in test/)
// with node's own test runner. Its closing lines report the counts.
//   node scripts/run-tests.mjs [filter…]   only files whose path contains a filter
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['packages/protocol', 'packages/gateway', 'packages/agent', 'packages/demo', 'packages/cli', 'test'];

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = roots
  .flatMap((r) => walk(join(root, r, 'dist'), []))
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no compiled test files found; did `tsc -b` run?');
  process.exit(1);
}

const concurrency = process.env.WARD_TEST_CONCURRENCY ?? '2';
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, WARD_REPO_ROOT: root } },
);
process.exit(result.status ?? 1);
