// Shared by the store and audit tests: a fresh directory (and so a fresh SQLite file and key)
// per test, removed when the test ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { openStoreInternal, type StoreInternals, type StoreOptions } from './open-store.js';

export interface TempStore {
  dir: string;
  options: StoreOptions;
  store: StoreInternals;
  reopen(extra?: Partial<StoreOptions>): StoreInternals;
}

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ward-store-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function tempStore(t: TestContext, extra: Partial<StoreOptions> = {}): TempStore {
  const dir = tempDir(t);
  const options: StoreOptions = { path: join(dir, 'ward.db'), signingKeyPath: join(dir, 'audit-key.pem'), ...extra };
  const opened: StoreInternals[] = [];
  const open = (o: StoreOptions) => {
    const s = openStoreInternal(o);
    opened.push(s);
    return s;
  };
  // Registered before the directory removal hook runs (after hooks run in reverse order).
  t.after(async () => {
    for (const s of opened) await s.close();
  });
  const store = open(options);
  return { dir, options, store, reopen: (more = {}) => open({ ...options, ...more }) };
}
