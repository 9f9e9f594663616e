// Service accounts end to end: an admin creates one with the CLI, an AI agent gets a token from
// POST /api/v1/token and calls an LLM connection with the real openai SDK; disabling the account
// ends its streamed answer and refuses its token; the token endpoint's errors; token exchange.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream } from '@ward/demo';
import OpenAI, { APIError } from 'openai';
import { runWard } from './helpers/ward-cli.js';
import { eventually, startStack, type WardStack } from './helpers/ward-stack.js';

const UPSTREAM_KEY = 'sk-upstream-secret-held-by-the-agent-only';

/** A token endpoint answer: a token or an OAuth error. */
interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
  error: string;
  code: string;
}

describe('service accounts and the token endpoint', () => {
  let upstream: Awaited<ReturnType<typeof startDemoUpstream>>;
  let stack: WardStack;
  let secret = '';

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.1', port: 0, apiKey: UPSTREAM_KEY, tokenDelayMs: 400 });
    stack = await startStack({
      gatewayConnections: [{ name: 'llm', type: 'http', agent: 'e2e-agent' }],
      agentConnections: [
        {
          type: 'http',
          name: 'llm',
          url: upstream.url,
          auth: { header: 'authorization', scheme: 'Bearer', secret: UPSTREAM_KEY },
          timeoutMs: 60_000,
        },
      ],
      access: {
        grants: [
          {
            id: 'llm-agents',
            identities: [],
            groups: ['llm-agents'],
            connections: ['llm'],
            actions: ['connect'],
            windows: [],
          },
        ],
      },
    });
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
  });

  /** The ward CLI in-process, as the stack's admin. */
  const ward = (...args: string[]) => runWard(stack.gateway.httpUrl, stack.adminToken, ...args);

  async function token(body: Record<string, string>, init: { json?: boolean; headers?: Record<string, string> } = {}) {
    const res = await fetch(`${stack.gateway.httpUrl}/api/v1/token`, {
      method: 'POST',
      headers: {
        'content-type': init.json ? 'application/json' : 'application/x-www-form-urlencoded',
        ...init.headers,
      },
      body: init.json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
    });
    return { status: res.status, headers: res.headers, json: (await res.json()) as TokenAnswer };
  }

  const clientCredentials = (client_secret: string, client_id = 'support-bot') =>
    token({ grant_type: 'client_credentials', client_id, client_secret });

  const records = (kind: string) => stack.gateway.store.audit.listRecords({ kind, limit: 10_000 });

  test('an admin creates a service account with the CLI; the secret is printed once and stored as a hash', async () => {
    const out = await ward(
      'service-accounts',
      'create',
      'support-bot',
      '--group',
      'llm-agents',
      '--description',
      'triage',
    );
    const m = /(wsa_[A-Za-z0-9_-]{43})/.exec(out);
    assert.ok(m, out);
    secret = m[1] ?? '';
    const listed = JSON.parse(await ward('service-accounts', 'list', '--json')) as Array<Record<string, unknown>>;
    assert.deepEqual(
      listed.map((a) => [a['name'], a['groups'], a['roles'], a['disabled']]),
      [['support-bot', ['llm-agents'], ['user'], false]],
    );
    assert.equal(readFileSync(stack.gateway.store.path).includes(secret), false, 'the secret is not in the store');
    // Only admins manage service accounts.
    const res = await fetch(`${stack.gateway.httpUrl}/api/v1/service-accounts`, {
      headers: { authorization: `Bearer ${stack.userToken}` },
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_ACCESS_DENIED');
  });

  test('an AI agent gets a token with client_credentials and uses the LLM connection with the openai SDK', async () => {
    const t = await clientCredentials(secret);
    assert.equal(t.status, 200, JSON.stringify(t.json));
    assert.equal(t.json.token_type, 'Bearer');
    assert.equal(t.json.expires_in, 600);
    assert.equal(t.headers.get('cache-control'), 'no-store');
    const client = new OpenAI({
      baseURL: `${stack.gateway.httpUrl}/c/llm/v1`,
      apiKey: t.json.access_token,
      maxRetries: 0,
    });
    const answer = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'triage ticket 42' }],
    });
    assert.match(answer.choices[0]?.message.content ?? '', /triage ticket 42/);
    // The exchange record is written once the answer has gone out.
    await eventually(
      () => records('http.exchange').some((r) => r.identity === 'service:support-bot'),
      10_000,
      'the exchange record',
    );
    const exchange = records('http.exchange').find((r) => r.identity === 'service:support-bot');
    assert.ok(exchange, 'the exchange is recorded as the service account');
    assert.equal(exchange.rule, 'grant:llm-agents');
    const issued = records('token.issued').find((r) => r.identity === 'service:support-bot');
    assert.equal(issued?.rule, 'token.client_credentials');
    // HTTP Basic and a JSON body work too.
    const basic = await token(
      { grant_type: 'client_credentials' },
      { headers: { authorization: `Basic ${Buffer.from(`support-bot:${secret}`).toString('base64')}` } },
    );
    assert.equal(basic.status, 200);
    const json = await token(
      { grant_type: 'client_credentials', client_id: 'support-bot', client_secret: secret },
      { json: true },
    );
    assert.equal(json.status, 200);
  });

  test('token endpoint errors are OAuth JSON with a code, say little, and are recorded without the secret', async () => {
    const before = records('token.denied').length;
    const wrong = await clientCredentials(`${secret.slice(0, -2)}xx`);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error, 'invalid_client');
    assert.equal(wrong.json.code, 'ERR_TOKEN_INVALID_CLIENT');
    const unknown = await clientCredentials(secret, 'no-such-bot');
    assert.equal(unknown.status, 401);
    assert.deepEqual(unknown.json, wrong.json, 'unknown account and bad secret look the same');
    const grantType = await token({ grant_type: 'password', username: 'x', password: 'y' });
    assert.equal(grantType.status, 400);
    assert.equal(grantType.json.error, 'unsupported_grant_type');
    assert.equal(grantType.json.code, 'ERR_TOKEN_UNSUPPORTED_GRANT_TYPE');
    const missing = await token({});
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error, 'invalid_request');
    assert.equal(missing.json.code, 'ERR_TOKEN_INVALID_REQUEST');
    const badSubject = await token({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'x.y.z',
    });
    assert.equal(badSubject.status, 400);
    assert.equal(badSubject.json.error, 'invalid_grant');
    assert.equal(badSubject.json.code, 'ERR_TOKEN_INVALID_GRANT');
    const denied = records('token.denied').slice(before);
    assert.deepEqual(
      denied.map((r) => r.data['code']),
      [
        'ERR_TOKEN_INVALID_CLIENT',
        'ERR_TOKEN_INVALID_CLIENT',
        'ERR_TOKEN_UNSUPPORTED_GRANT_TYPE',
        'ERR_TOKEN_INVALID_REQUEST',
        'ERR_TOKEN_INVALID_GRANT',
      ],
    );
    assert.ok(denied.every((r) => r.decision === 'deny' && /^127\.0\.0\.1:/.test(r.source ?? '')));
    const everything = JSON.stringify(records('token.denied')) + readFileSync(stack.logFile, 'utf8');
    assert.equal(everything.includes(secret.slice(4)), false, 'no secret in the audit log or the logs');
  });

  test('disabling the account ends its streamed answer at once and refuses its token; enable and rotate', async () => {
    const t = await clientCredentials(secret);
    const client = new OpenAI({
      baseURL: `${stack.gateway.httpUrl}/c/llm/v1`,
      apiKey: t.json.access_token,
      maxRetries: 0,
    });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'a long answer please about many things' }],
      stream: true,
    });
    let chunks = 0;
    let disabled: Promise<string> | undefined;
    await assert.rejects(
      (async () => {
        for await (const _ of stream) {
          chunks++;
          if (chunks === 1) disabled = ward('service-accounts', 'disable', 'support-bot');
        }
      })(),
      (err: unknown) => {
        assert.ok(err instanceof APIError, String(err));
        assert.equal(err.code, 'ERR_SERVICE_ACCOUNT_DISABLED');
        return true;
      },
    );
    // The streamed answer's session, and the idle keep-alive session of the account's earlier
    // calls if the SDK's connection is still open: HTTP sessions live as long as their connection.
    const ended = /(\d+) open session\(s\) ended/.exec((await disabled) ?? '');
    assert.ok(Number(ended?.[1]) >= 1, String(await disabled));
    // The same (unexpired) token is refused; so is a new one.
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => err instanceof APIError && err.code === 'ERR_SERVICE_ACCOUNT_DISABLED',
    );
    const refused = await clientCredentials(secret);
    assert.equal(refused.json.code, 'ERR_TOKEN_INVALID_CLIENT');
    assert.ok(records('access.revoked').some((r) => r.identity === 'service:support-bot'));
    assert.ok(records('service_account.disable').length > 0);

    await ward('service-accounts', 'enable', 'support-bot');
    assert.equal((await clientCredentials(secret)).status, 200);
    const rotated = /(wsa_[A-Za-z0-9_-]{43})/.exec(await ward('service-accounts', 'rotate-secret', 'support-bot'))?.[1];
    assert.ok(rotated);
    assert.equal((await clientCredentials(secret)).status, 401, 'the old secret stops working');
    assert.equal((await clientCredentials(rotated)).status, 200);
  });

  test('token exchange: a federated identity gets its service account; a person gets a short token for themselves', async () => {
    await ward(
      'service-accounts',
      'create',
      'ci-bot',
      '--group',
      'llm-agents',
      '--federated-issuer',
      stack.gateway.tokens.issuer,
      '--federated-subject',
      'ci-runner',
    );
    const exchange = (subject_token: string) =>
      token({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      });
    const ciToken = await stack.gateway.tokens.issue({ subject: 'ci-runner', roles: [], ttlSeconds: 60 });
    const asService = await exchange(ciToken);
    assert.equal(asService.status, 200, JSON.stringify(asService.json));
    const svc = await stack.gateway.tokens.verify(asService.json.access_token);
    assert.deepEqual([svc.kind, svc.subject, svc.groups], ['service', 'ci-bot', ['llm-agents']]);

    const person = await stack.gateway.tokens.issue({
      subject: 'bob',
      roles: ['user'],
      groups: ['eng'],
      ttlSeconds: 120,
    });
    const short = await exchange(person);
    assert.equal(short.status, 200);
    assert.ok(short.json.expires_in <= 120, 'never outlives the token it came from');
    assert.ok(short.json.access_token.length < 1023, 'fits an OpenSSH password');
    const who = await stack.gateway.tokens.verify(short.json.access_token);
    assert.deepEqual(
      [who.kind, who.subject, who.roles, who.groups, who.issuer],
      ['user', 'bob', ['user'], ['eng'], stack.gateway.tokens.issuer],
    );
    assert.ok(records('token.issued').some((r) => r.rule === 'token.exchange:identity' && r.identity === 'user:bob'));
  });
});
