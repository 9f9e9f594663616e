import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WardError } from '@ward/protocol';
import { createSshKeyRepository } from '../store/ssh-keys.js';
import { tempDir, tempStore } from '../store/test-support.js';
import { loadOrCreateHostKey } from './host-key.js';
import { parsePublicKeyLine } from './public-key.js';

function keygen(dir: string, name: string, type = 'ed25519'): { pub: string; priv: string; fingerprint: string } {
  const path = join(dir, name);
  const r = spawnSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `${name} comment`, '-f', path]);
  assert.equal(r.status, 0, r.stderr?.toString());
  const fp = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' });
  return {
    pub: readFileSync(`${path}.pub`, 'utf8'),
    priv: readFileSync(path, 'utf8'),
    fingerprint: fp.stdout.split(' ')[1] ?? '',
  };
}

const owner = { subject: 'bob', kind: 'user' as const, roles: ['user'], groups: ['ops'], issuer: 'urn:ward:gateway' };

test('public keys parse with the fingerprint ssh-keygen prints; private keys and junk are refused', (t) => {
  const dir = tempDir(t);
  for (const type of ['ed25519', 'ecdsa', 'rsa']) {
    const k = keygen(dir, `k-${type}`, type);
    const info = parsePublicKeyLine(k.pub);
    assert.equal(info.fingerprint, k.fingerprint, type);
    assert.equal(info.comment, `k-${type} comment`);
    assert.equal(info.publicKey, k.pub.split(' ').slice(0, 2).join(' '));
  }
  const k = keygen(dir, 'k');
  for (const bad of [
    k.priv,
    '',
    'ssh-dss AAAA',
    'ssh-ed25519 !!!',
    `${k.pub}\n${k.pub}`,
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5',
  ])
    assert.throws(
      () => parsePublicKeyLine(bad),
      (e: WardError) => e.code === 'ERR_SSH_KEY_INVALID',
    );
});

test('ssh_keys: add, list, find, touch, remove; one identity per key', (t) => {
  const { store, dir } = tempStore(t);
  const keys = createSshKeyRepository(store.db);
  const k1 = parsePublicKeyLine(keygen(dir, 'a').pub);
  const k2 = parsePublicKeyLine(keygen(dir, 'b').pub);
  const added = keys.add({ ...k1, owner });
  assert.equal(added.identity, 'user:bob');
  keys.add({ ...k2, owner });
  assert.deepEqual(
    keys
      .list('user:bob')
      .map((k) => k.fingerprint)
      .sort(),
    [k1.fingerprint, k2.fingerprint].sort(),
  );
  assert.deepEqual(keys.list('user:alice'), []);
  assert.throws(
    () => keys.add({ ...k1, owner: { ...owner, subject: 'alice' } }),
    (e: WardError) => e.code === 'ERR_SSH_KEY_EXISTS',
  );
  const found = keys.findByFingerprint(k1.fingerprint);
  assert.deepEqual(found?.owner, owner);
  assert.equal(found?.lastUsedAt, null);
  keys.touch(k1.fingerprint);
  assert.ok(keys.findByFingerprint(k1.fingerprint)?.lastUsedAt);
  assert.equal(keys.remove('user:alice', k1.fingerprint), false, 'someone else cannot remove it');
  assert.equal(keys.remove('user:bob', k1.fingerprint), true);
  assert.equal(keys.findByFingerprint(k1.fingerprint), undefined);
  assert.equal(keys.list('user:bob').length, 1);
});

test('the host key is created once (mode 0600) and reused; a readable key is refused', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ssh-host-key');
  const first = loadOrCreateHostKey(path);
  const second = loadOrCreateHostKey(path);
  assert.equal(second.fingerprint, first.fingerprint);
  assert.match(first.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  const { chmodSync, statSync } = await import('node:fs');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  chmodSync(path, 0o644);
  assert.throws(
    () => loadOrCreateHostKey(path),
    (e: WardError) => e.code === 'ERR_SSH_HOST_KEY_INSECURE',
  );
});
