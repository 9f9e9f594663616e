import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { WardError } from '@ward/protocol';
import { resolveSecret } from './secret-ref.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ward-secret-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): WardError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WardError, String(err));
    assert.match(err.message, / Fix: /);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('resolveSecret', () => {
  test('env: the variable, or ERR_CONFIG_SECRET_MISSING naming the field when unset or empty', () => {
    assert.equal(resolveSecret({ env: 'A' }, { env: { A: 'v' } }), 'v');
    for (const env of [{}, { A: '' }]) {
      const err = refusal(() => resolveSecret({ env: 'A' }, { field: 'connections[2].password', env }));
      assert.equal(err.code, 'ERR_CONFIG_SECRET_MISSING');
      assert.equal(err.kind, 'not_found');
      assert.ok(err.message.startsWith('connections[2].password: environment variable A is '), err.message);
    }
  });

  test('env defaults to process.env', () => {
    const name = `WARD_TEST_SECRET_${process.pid}`;
    process.env[name] = 'from-process';
    try {
      assert.equal(resolveSecret({ env: name }), 'from-process');
    } finally {
      delete process.env[name];
    }
  });

  test('file: content with trailing newlines dropped, inner ones kept', () => {
    const path = join(dir, 's');
    writeFileSync(path, 'line1\nline2\n\n', { mode: 0o600 });
    assert.equal(resolveSecret({ file: path, allowInsecurePermissions: false }), 'line1\nline2');
    writeFileSync(path, '  spaced  ');
    assert.equal(resolveSecret({ file: path, allowInsecurePermissions: false }), '  spaced  ');
  });

  test('file: missing, empty, or a directory is ERR_CONFIG_SECRET_MISSING naming the field', () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n', { mode: 0o600 });
    for (const file of [join(dir, 'absent'), empty, dir]) {
      chmodSync(dir, 0o700);
      const err = refusal(() => resolveSecret({ file, allowInsecurePermissions: false }, { field: 'key' }));
      assert.equal(err.code, 'ERR_CONFIG_SECRET_MISSING');
      assert.ok(err.message.startsWith(`key: secret file ${file} `), err.message);
    }
  });

  test('file: readable by group or others is ERR_CONFIG_SECRET_INSECURE unless allowed', () => {
    const path = join(dir, 's');
    writeFileSync(path, 'x');
    for (const mode of [0o644, 0o640, 0o604, 0o444]) {
      chmodSync(path, mode);
      const err = refusal(() => resolveSecret({ file: path, allowInsecurePermissions: false }, { field: 'key' }));
      assert.equal(err.code, 'ERR_CONFIG_SECRET_INSECURE', `mode ${mode.toString(8)}`);
      assert.equal(err.kind, 'permission_denied');
      assert.ok(err.message.includes(`(mode 0${mode.toString(8)})`), err.message);
      assert.equal(resolveSecret({ file: path, allowInsecurePermissions: true }), 'x');
    }
    for (const mode of [0o600, 0o400]) {
      chmodSync(path, mode);
      assert.equal(resolveSecret({ file: path, allowInsecurePermissions: false }), 'x');
    }
  });

  test('value: returned as written', () => {
    assert.equal(resolveSecret({ value: 'demo' }), 'demo');
  });
});
