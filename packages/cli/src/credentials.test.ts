import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  credentialsPath,
  deleteCredentials,
  ensureFresh,
  loadCredentials,
  needsRefresh,
  REFRESH_MARGIN_MS,
  type RefreshedTokens,
  type SavedCredentials,
  saveCredentials,
} from './credentials.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');

function creds(overrides: Partial<SavedCredentials> = {}): SavedCredentials {
  return {
    gateway: 'http://127.0.0.1:7400',
    token: 'access-1',
    subject: 'alice',
    expiresAt: new Date(NOW + 10 * 60_000).toISOString(),
    issuer: 'http://127.0.0.1:9000',
    clientId: 'ward-cli',
    resource: 'urn:ward',
    refreshToken: 'refresh-1',
    ...overrides,
  };
}

describe('token cache', () => {
  let dir: string;
  const saved = process.env['WARD_CONFIG_DIR'];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ward-creds-'));
    process.env['WARD_CONFIG_DIR'] = join(dir, 'ward');
  });
  afterEach(() => {
    if (saved === undefined) delete process.env['WARD_CONFIG_DIR'];
    else process.env['WARD_CONFIG_DIR'] = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a 0600 file in a 0700 directory, with no temporary file left behind', () => {
    const path = saveCredentials(creds());
    assert.equal(path, credentialsPath());
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'ward')).mode & 0o777, 0o700);
    saveCredentials(creds({ token: 'access-2' }));
    assert.deepEqual(readdirSync(join(dir, 'ward')), ['credentials.json']);
    assert.equal(loadCredentials()?.token, 'access-2');
  });

  it('reads as absent when missing or unreadable; delete is idempotent', () => {
    assert.equal(loadCredentials(), undefined);
    assert.equal(deleteCredentials(), false);
    saveCredentials(creds());
    assert.equal(deleteCredentials(), true);
    assert.equal(deleteCredentials(), false);
    assert.equal(loadCredentials(), undefined);
  });

  it('needs a refresh within a minute of expiry, or with no readable expiry', () => {
    assert.equal(needsRefresh(creds(), NOW), false);
    assert.equal(
      needsRefresh(creds({ expiresAt: new Date(NOW + REFRESH_MARGIN_MS + 1000).toISOString() }), NOW),
      false,
    );
    assert.equal(needsRefresh(creds({ expiresAt: new Date(NOW + REFRESH_MARGIN_MS - 1000).toISOString() }), NOW), true);
    assert.equal(needsRefresh(creds({ expiresAt: new Date(NOW - 1000).toISOString() }), NOW), true);
    assert.equal(needsRefresh(creds({ expiresAt: 'soon' }), NOW), true);
  });

  it('leaves a token that is good for more than a minute alone', async () => {
    let calls = 0;
    const c = creds();
    const out = await ensureFresh(
      c,
      async () => {
        calls += 1;
        throw new Error('must not be called');
      },
      () => NOW,
    );
    assert.equal(out, c);
    assert.equal(calls, 0);
  });

  it('refreshes near expiry, keeps a rotated refresh token and rewrites the cache', async () => {
    const c = creds({ expiresAt: new Date(NOW + 30_000).toISOString() });
    saveCredentials(c);
    const seen: string[] = [];
    const out = await ensureFresh(
      c,
      async (from): Promise<RefreshedTokens> => {
        seen.push(from.refreshToken ?? '');
        return { token: 'access-2', expiresAt: new Date(NOW + 600_000).toISOString(), refreshToken: 'refresh-2' };
      },
      () => NOW,
    );
    assert.deepEqual(seen, ['refresh-1']);
    assert.equal(out.token, 'access-2');
    assert.equal(out.refreshToken, 'refresh-2');
    const onDisk = loadCredentials();
    assert.equal(onDisk?.token, 'access-2');
    assert.equal(onDisk?.refreshToken, 'refresh-2');
    assert.equal(onDisk?.issuer, c.issuer);
    assert.equal(statSync(credentialsPath()).mode & 0o777, 0o600);
  });

  it('keeps the old refresh token when the IdP does not rotate it', async () => {
    const c = creds({ expiresAt: new Date(NOW - 1).toISOString() });
    const out = await ensureFresh(
      c,
      async () => ({ token: 'access-2', expiresAt: new Date(NOW + 600_000).toISOString() }),
      () => NOW,
    );
    assert.equal(out.refreshToken, 'refresh-1');
    assert.equal(loadCredentials()?.refreshToken, 'refresh-1');
  });

  it('adopts a refresh another process already saved instead of refreshing again', async () => {
    const stale = creds({ expiresAt: new Date(NOW + 10_000).toISOString() });
    saveCredentials(
      creds({ token: 'access-other', refreshToken: 'refresh-other', expiresAt: new Date(NOW + 600_000).toISOString() }),
    );
    let calls = 0;
    const out = await ensureFresh(
      stale,
      async () => {
        calls += 1;
        throw new Error('must not be called');
      },
      () => NOW,
    );
    assert.equal(calls, 0);
    assert.equal(out.token, 'access-other');
  });

  it('after a refused refresh, adopts the token of the process that won the race', async () => {
    const stale = creds({ expiresAt: new Date(NOW + 10_000).toISOString() });
    saveCredentials(stale);
    const out = await ensureFresh(
      stale,
      async () => {
        // The other process rotated the refresh token first; the IdP refuses ours.
        saveCredentials(
          creds({ token: 'access-won', refreshToken: 'refresh-won', expiresAt: new Date(NOW + 600_000).toISOString() }),
        );
        throw Object.assign(new Error('refused'), { error: 'invalid_grant' });
      },
      () => NOW,
    );
    assert.equal(out.token, 'access-won');
  });

  it('says to run ward login when the refresh is refused', async () => {
    const c = creds({ expiresAt: new Date(NOW + 10_000).toISOString() });
    saveCredentials(c);
    await assert.rejects(
      ensureFresh(
        c,
        async () => {
          throw Object.assign(new Error('grant request is invalid'), { error: 'invalid_grant' });
        },
        () => NOW,
      ),
      (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'ERR_CLI_LOGIN_REFRESH_FAILED');
        assert.match(err.message ?? '', /ward login/);
        assert.doesNotMatch(err.message ?? '', /refresh-1|access-1/);
        return true;
      },
    );
    assert.equal(loadCredentials()?.token, 'access-1', 'a failed refresh leaves the cache as it was');
  });

  it('uses an IdP token without a refresh token while it lasts, then refuses it with ERR_CLI_LOGIN_REFRESH_FAILED', async () => {
    const never = async (): Promise<RefreshedTokens> => {
      throw new Error('must not be called');
    };
    const demo = creds({ expiresAt: new Date(NOW + 30_000).toISOString() });
    delete demo.refreshToken;
    assert.equal(await ensureFresh(demo, never, () => NOW), demo);
    await assert.rejects(
      ensureFresh({ ...demo, expiresAt: new Date(NOW - 1).toISOString() }, never, () => NOW),
      {
        code: 'ERR_CLI_LOGIN_REFRESH_FAILED',
      },
    );
    // Not from an IdP (ward demo's gateway token): passed on as it is; the gateway judges it.
    const gatewayToken = {
      gateway: demo.gateway,
      token: 't',
      subject: 's',
      expiresAt: new Date(NOW - 1).toISOString(),
    };
    assert.equal(await ensureFresh(gatewayToken, never, () => NOW), gatewayToken);
  });

  it('is never seen torn while two other processes rewrite it', async () => {
    saveCredentials(creds());
    const writer = `
      const { saveCredentials } = await import(${JSON.stringify(new URL('./credentials.js', import.meta.url).href)});
      for (let i = 0; i < 150; i++) saveCredentials({ gateway: 'g', token: 'x'.repeat(1000 + (i % 7) * 5000), subject: 's', expiresAt: 'e' });
    `;
    const children = [0, 1].map(
      () =>
        new Promise<number | null>((resolve) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', writer], {
            env: { ...process.env },
            stdio: 'ignore',
          });
          child.on('close', resolve);
        }),
    );
    let reads = 0;
    let running = true;
    const done = Promise.all(children).then((codes) => {
      running = false;
      return codes;
    });
    while (running) {
      // JSON.parse throws on a torn file; loadCredentials would hide that, so read raw.
      JSON.parse(readFileSync(credentialsPath(), 'utf8'));
      reads += 1;
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await done, [0, 0]);
    assert.ok(reads > 0);
    assert.deepEqual(readdirSync(join(dir, 'ward')), ['credentials.json']);
  });
});
