import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WardError } from '@ward/protocol';
import pino from 'pino';
import type { Identity } from '../identity/index.js';
import { StoreRecorder } from '../recording/index.js';
import { type LiveSession, SessionRegistry } from '../sessions/index.js';
import { createAccessGrantRepository } from '../store/access-grants.js';
import type { StoreInternals } from '../store/open-store.js';
import { createServiceAccountRepository } from '../store/service-accounts.js';
import { tempStore } from '../store/test-support.js';
import { AccessControl } from './access-control.js';

const who = (subject: string, roles: Identity['roles'], kind: Identity['kind'] = 'user'): Identity => ({
  subject,
  kind,
  roles,
  groups: [],
  issuer: 'urn:test',
  expiresAt: new Date(Date.now() + 3_600_000),
  tokenId: 't',
});

function control(store: StoreInternals, sessions = new SessionRegistry()) {
  return new AccessControl({
    grants: [],
    maxJitDurationMs: 3_600_000,
    jit: createAccessGrantRepository(store.db),
    accounts: createServiceAccountRepository(store.db),
    sessions,
    recorder: new StoreRecorder(store),
    connectionType: (name) => (name === 'prod-pg' ? 'postgres' : undefined),
    logger: pino({ level: 'silent' }),
  });
}

function fakeSession(identity: Identity, ended: (e: WardError) => void): LiveSession {
  return {
    id: `ses_${Math.random()}`,
    connection: 'prod-pg',
    protocol: 'postgres',
    identity,
    source: '127.0.0.1:1',
    startedAt: new Date(),
    terminate: ended,
  };
}

describe('AccessControl', () => {
  test('a JIT grant survives a restart, and its expiry ends the session on the timer', async (t) => {
    const { store, reopen } = tempStore(t);
    const dave = who('dave', ['user']);
    const first = control(store);
    const req = await first.request(
      dave,
      { connection: 'prod-pg', action: 'connect', durationMs: 1500, reason: 'r' },
      's',
    );
    await first.approve(who('carol', ['approver']), req.id, undefined, 's');
    first.stop();
    await store.close();

    // A new gateway process: the grant comes back from the store.
    const again = reopen();
    let sessions!: SessionRegistry;
    let access!: AccessControl;
    sessions = new SessionRegistry({ onAdd: (s) => access.sessionAdded(s) });
    access = control(again, sessions);
    t.after(() => access.stop());
    const decision = await access.authorize({
      identity: dave,
      connection: 'prod-pg',
      action: 'connect',
      source: 's',
      protocol: 'postgres',
    });
    assert.match(decision.rule, /^jit:grt_/);
    const ended = new Promise<WardError>((resolve) => sessions.add(fakeSession(dave, resolve)));
    // The expiry timer is unref'd (a gateway's listeners keep the process up); the test holds it up here.
    const keepAlive = setTimeout(() => {}, 30_000);
    const error = await ended;
    clearTimeout(keepAlive);
    assert.equal(error.code, 'ERR_ACCESS_GRANT_EXPIRED');
    assert.equal(error.kind, 'permission_denied');
    assert.equal(access.decide(dave, 'prod-pg', 'connect').allow, false);
    await again.audit.flush();
    const kinds = again.audit.listRecords({ limit: 100 }).map((r) => r.kind);
    for (const k of ['access.request', 'access.approve', 'access.allow', 'access.grant_expired', 'access.expired']) {
      assert.ok(kinds.includes(k), `${k} recorded`);
    }
  });

  test('a session whose rule lapsed while it opened ends as it registers', async (t) => {
    const { store } = tempStore(t);
    let access!: AccessControl;
    const sessions = new SessionRegistry({ onAdd: (s) => access.sessionAdded(s) });
    access = control(store, sessions);
    t.after(() => access.stop());
    const ended = new Promise<WardError>((resolve) => sessions.add(fakeSession(who('dave', ['user']), resolve)));
    assert.equal((await ended).code, 'ERR_ACCESS_GRANT_EXPIRED');
  });

  test('roles: admin always, auditor never, a disabled service account never', async (t) => {
    const { store } = tempStore(t);
    const access = control(store);
    t.after(() => access.stop());
    assert.equal(access.decide(who('a', ['admin']), 'prod-pg', 'exec').allow, true);
    const auditor = access.decide(who('b', ['auditor']), 'prod-pg', 'connect');
    assert.equal(auditor.allow ? '' : auditor.error.code, 'ERR_ACCESS_DENIED');
    const accounts = createServiceAccountRepository(store.db);
    accounts.create({ name: 'bot', description: '', roles: ['admin'], groups: [], createdBy: 'user:a' });
    await access.setServiceAccountDisabled(who('a', ['admin']), 'bot', true, 's');
    const bot = who('bot', ['admin'], 'service');
    const v = access.decide(bot, 'prod-pg', 'connect');
    assert.equal(v.allow ? '' : v.error.code, 'ERR_SERVICE_ACCOUNT_DISABLED');
    assert.throws(
      () => access.assertEnabled(bot),
      (err: WardError) => err.code === 'ERR_SERVICE_ACCOUNT_DISABLED',
    );
  });
});
