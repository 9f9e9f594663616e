// HTTP sessions per client connection: the exchanges of one keep-alive client connection ride
// one tunnel session (one session.start, one http.exchange each, one session.end), and every
// way such a session can end leaves the client with a clean answer and no session behind.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveHttpSession, TunnelClient } from '@ward/agent';
import { type RunningGateway, startGateway } from '@ward/gateway';
import { create, generateAgentKey, hashAgentKey, SessionFrameSchema, WardError } from '@ward/protocol';
import pino from 'pino';
import { BOB_EVERYWHERE, eventually, startStack, type WardStack } from './helpers/ward-stack.js';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

/** A small OpenAI-shaped upstream; `/v1/reset` cuts the connection mid-response. */
async function startUpstream(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/reset') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setImmediate(() => res.destroy());
        return;
      }
      const body = JSON.stringify({
        object: 'chat.completion',
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Answer {
  status: number;
  body: string;
  /** Local port of the client socket: equal ports mean one client connection. */
  port: number;
}

function post(baseUrl: string, path: string, token: string, agent: http.Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${baseUrl}${path}`,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(BODY),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            port: req.socket?.localPort ?? 0,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
}

describe('HTTP sessions per client connection (keep-alive agent)', () => {
  let stack: WardStack;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: string;

  before(async () => {
    upstream = await startUpstream();
    stack = await startStack({
      gatewayConnections: [
        { name: 'llm', type: 'http', agent: 'e2e-agent', llm: 'openai' },
        { name: 'plain', type: 'http', agent: 'e2e-agent' },
      ],
      agentConnections: [
        { type: 'http', name: 'llm', url: upstream.url, timeoutMs: 10_000 },
        { type: 'http', name: 'plain', url: upstream.url, timeoutMs: 10_000 },
      ],
      access: { grants: [BOB_EVERYWHERE, { ...BOB_EVERYWHERE, id: 'e2e-carol', identities: ['user:carol'] }] },
    });
    base = stack.gateway.httpUrl;
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
  });

  const exchangesOf = (sessionId: string) =>
    stack.gateway.store.audit.listRecords({ sessionId, kind: 'http.exchange', limit: 1000 });

  test("a connection's exchanges share one session, which ends when the client closes", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const answers: Answer[] = [];
    for (let i = 0; i < 5; i++) answers.push(await post(base, '/c/llm/v1/chat/completions', stack.userToken, agent));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200],
    );
    assert.equal(new Set(answers.map((a) => a.port)).size, 1, 'the client kept one connection');
    await stack.gateway.store.audit.flush();
    const records = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 });
    const ids = new Set(records.slice(-5).map((r) => r.sessionId));
    assert.equal(ids.size, 1, 'one session for the five exchanges');
    const [sessionId] = [...ids] as [string];
    assert.equal(exchangesOf(sessionId).length, 5);
    assert.equal(stack.gateway.store.sessions.get(sessionId)?.status, 'active');

    agent.destroy();
    await eventually(() => stack.gateway.store.sessions.get(sessionId)?.status === 'ok', 10_000, 'the session to end');
    const ended = stack.gateway.store.sessions.get(sessionId);
    assert.deepEqual(ended?.summary, { exchanges: 5 });
    const kinds = stack.gateway.store.audit.listRecords({ sessionId, limit: 100 }).map((r) => r.kind);
    assert.deepEqual(kinds, ['session.start', ...Array(5).fill('http.exchange'), 'session.end']);
  });

  test('another identity or another connection on the same client connection gets a session of its own', async () => {
    const other = await stack.gateway.tokens.issue({ subject: 'carol', roles: ['user'], ttlSeconds: 600 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const a = await post(base, '/c/llm/v1/chat/completions', stack.userToken, agent);
    const b = await post(base, '/c/llm/v1/chat/completions', other, agent);
    const c = await post(base, '/c/plain/v1/chat/completions', other, agent);
    assert.deepEqual([a.status, b.status, c.status], [200, 200, 200]);
    assert.equal(new Set([a.port, b.port, c.port]).size, 1);
    await stack.gateway.store.audit.flush();
    const last = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).slice(-3);
    assert.deepEqual(
      last.map((r) => [r.identity, r.connection]),
      [
        ['user:bob', 'llm'],
        ['user:carol', 'llm'],
        ['user:carol', 'plain'],
      ],
    );
    assert.equal(new Set(last.map((r) => r.sessionId)).size, 3);
    // The first two ended when the next request did not fit them; the third ends with the connection.
    for (const r of last.slice(0, 2)) assert.equal(stack.gateway.store.sessions.get(r.sessionId ?? '')?.status, 'ok');
    agent.destroy();
    await eventually(
      () => stack.gateway.store.sessions.get(last[2]?.sessionId ?? '')?.status === 'ok',
      10_000,
      'the last session to end',
    );
  });

  test('a failed exchange ends its session with the error; the next request on that connection gets a fresh one', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(base, '/c/plain/v1/chat/completions', stack.userToken, agent);
    assert.equal(first.status, 200);
    // The upstream cuts the body after the head: the client sees the cut (no silently short body).
    await assert.rejects(post(base, '/c/plain/v1/reset', stack.userToken, agent), { code: 'ECONNRESET' });
    const again = await post(base, '/c/plain/v1/chat/completions', stack.userToken, agent);
    assert.equal(again.status, 200);
    await stack.gateway.store.audit.flush();
    const last = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).slice(-3);
    assert.equal(last[0]?.sessionId, last[1]?.sessionId, 'the failing exchange ran in the open session');
    assert.notEqual(last[2]?.sessionId, last[1]?.sessionId, 'the next request got a new session');
    assert.equal(last[1]?.data['errorCode'], 'ERR_UPSTREAM_RESET');
    const failed = stack.gateway.store.sessions.get(last[1]?.sessionId ?? '');
    assert.equal(failed?.status, 'error');
    assert.equal(failed?.errorCode, 'ERR_UPSTREAM_RESET');
    agent.destroy();
  });

  test('a session cut while idle is ended and replaced; the client never sees it', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await post(base, '/c/llm/v1/chat/completions', stack.userToken, agent);
    assert.equal(first.status, 200);
    await stack.gateway.store.audit.flush();
    const firstId = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).at(-1)?.sessionId;
    stack.gateway.tunnel.closeAllSessions(new WardError('ERR_GATEWAY_SHUTDOWN', 'unavailable', 'test cut'));
    await eventually(
      () => stack.gateway.store.sessions.get(firstId ?? '')?.status === 'error',
      10_000,
      'the cut session to end',
    );
    const second = await post(base, '/c/llm/v1/chat/completions', stack.userToken, agent);
    assert.equal(second.status, 200);
    assert.equal(second.port, first.port, 'same client connection');
    await stack.gateway.store.audit.flush();
    const secondId = stack.gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 1000 }).at(-1)?.sessionId;
    assert.notEqual(secondId, firstId);
    assert.equal(stack.gateway.store.sessions.get(firstId ?? '')?.errorCode, 'ERR_GATEWAY_SHUTDOWN');
    agent.destroy();
  });

  test('sessions end with their client connections: none is left open, on either side', async () => {
    const before = upstream.requests();
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => post(base, '/c/llm/v1/chat/completions', stack.userToken, false)),
    );
    assert.ok(answers.every((a) => a.status === 200));
    assert.equal(upstream.requests() - before, 40);
    await eventually(() => stack.gateway.tunnel.sessionCount === 0, 10_000, 'every tunnel session to close');
    await eventually(() => stack.agent.client.activeSessions === 0, 10_000, "the agent's sessions to close");
    await stack.gateway.store.audit.flush();
    assert.deepEqual(
      stack.gateway.store.sessions.list({ activeOnly: true, limit: 1000 }).map((s) => s.id),
      [],
    );
  });
});

describe('HTTP sessions with an agent that serves one exchange per session (older agent)', () => {
  let gateway: RunningGateway;
  let client: TunnelClient;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dataDir: string;
  let token: string;

  before(async () => {
    upstream = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), 'ward-e2e-'));
    const key = generateAgentKey();
    gateway = await startGateway({
      dataDir,
      listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0' },
      tunnel: { insecure: true },
      store: { path: join(dataDir, 'ward.db'), durability: 'group' },
      agents: [{ name: 'old-agent', keyHash: hashAgentKey(key) }],
      connections: [{ name: 'llm', type: 'http', agent: 'old-agent', llm: 'openai' }],
      access: { grants: [BOB_EVERYWHERE] },
      logger: pino({ level: 'silent' }),
    });
    // What an agent before keep-alive did: no start options, so ready without keepAlive and a
    // close after the first response.
    client = new TunnelClient({
      address: `127.0.0.1:${gateway.tunnelPort}`,
      insecure: true,
      key,
      connections: [{ name: 'llm', type: 'http' }],
      onSession: (_start, channel) => serveHttpSession(channel, { name: 'llm', url: upstream.url, timeoutMs: 10_000 }),
    });
    const online = new Promise((resolve) => client.once('online', resolve));
    client.start();
    await online;
    token = await gateway.tokens.issue({ subject: 'bob', roles: ['user'], ttlSeconds: 600 });
  });

  after(async () => {
    await client?.stop();
    await gateway?.stop();
    await upstream?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('each exchange gets its own session, as before', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const a = await post(gateway.httpUrl, '/c/llm/v1/chat/completions', token, agent);
    const b = await post(gateway.httpUrl, '/c/llm/v1/chat/completions', token, agent);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(a.port, b.port);
    await eventually(
      () => gateway.store.sessions.list({ limit: 10 }).filter((s) => s.status === 'ok').length === 2,
      10_000,
      'both sessions to end',
    );
    const sessions = gateway.store.sessions.list({ limit: 10 });
    assert.equal(sessions.length, 2);
    for (const s of sessions) {
      assert.equal(gateway.store.audit.listRecords({ sessionId: s.id, kind: 'http.exchange' }).length, 1);
      assert.deepEqual(s.summary, { exchanges: 1 });
    }
    agent.destroy();
  });
});

describe('HTTP request sent right behind the session start', () => {
  let gateway: RunningGateway;
  let client: TunnelClient;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let dataDir: string;
  let token: string;
  /** While true the agent refuses new sessions, after reading what the gateway sent. */
  let refusing = true;
  /** Frames each refused session received before the refusal. */
  const seenBeforeRefusal: string[][] = [];

  before(async () => {
    upstream = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), 'ward-e2e-'));
    const key = generateAgentKey();
    gateway = await startGateway({
      dataDir,
      listen: { http: '127.0.0.1:0', tunnel: '127.0.0.1:0' },
      tunnel: { insecure: true },
      store: { path: join(dataDir, 'ward.db'), durability: 'group' },
      agents: [{ name: 'picky-agent', keyHash: hashAgentKey(key) }],
      connections: [{ name: 'llm', type: 'http', agent: 'picky-agent', llm: 'openai' }],
      access: { grants: [BOB_EVERYWHERE] },
      logger: pino({ level: 'silent' }),
    });
    client = new TunnelClient({
      address: `127.0.0.1:${gateway.tunnelPort}`,
      insecure: true,
      key,
      connections: [{ name: 'llm', type: 'http' }],
      onSession: (start, channel) => {
        if (!refusing) {
          const http = start.target.case === 'http' ? start.target.value : {};
          serveHttpSession(channel, { name: 'llm', url: upstream.url, timeoutMs: 10_000 }, http);
          return;
        }
        // Not ready yet: whatever arrives now was sent behind the start. Refuse once the
        // request's body has ended (or after 5 s, which the assertion below then catches).
        const seen: string[] = [];
        seenBeforeRefusal.push(seen);
        const refuse = () =>
          channel.close(new WardError('ERR_AGENT_REFUSED_SESSION', 'unavailable', 'this agent says no'));
        const timer = setTimeout(refuse, 5_000);
        channel.onFrame((frame) => {
          seen.push(frame.frame.case ?? '');
          if (frame.frame.case === 'body' && frame.frame.value.end) {
            clearTimeout(timer);
            refuse();
          }
        });
      },
    });
    const online = new Promise((resolve) => client.once('online', resolve));
    client.start();
    await online;
    token = await gateway.tokens.issue({ subject: 'bob', roles: ['user'], ttlSeconds: 600 });
  });

  after(async () => {
    await client?.stop();
    await gateway?.stop();
    await upstream?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the agent refusing after the request was sent: a clean 503 JSON error; the next session is unaffected', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const refused = await post(gateway.httpUrl, '/c/llm/v1/chat/completions', token, agent);
    assert.equal(refused.status, 503);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'ERR_AGENT_REFUSED_SESSION');
    assert.deepEqual(seenBeforeRefusal[0], ['httpRequestHead', 'body'], 'head and body came before ready');

    refusing = false;
    const ok = await post(gateway.httpUrl, '/c/llm/v1/chat/completions', token, agent);
    assert.equal(ok.status, 200);
    assert.equal(ok.port, refused.port, 'the client connection survived the refusal');
    await gateway.store.audit.flush();
    const [a, b] = gateway.store.audit.listRecords({ kind: 'http.exchange', limit: 10 });
    assert.equal(a?.data['errorCode'], 'ERR_AGENT_REFUSED_SESSION');
    assert.equal(b?.data['status'], 200);
    assert.equal(b?.data['errorCode'], undefined);
    assert.notEqual(a?.sessionId, b?.sessionId);
    assert.equal(gateway.store.sessions.get(a?.sessionId ?? '')?.status, 'error');
    agent.destroy();
  });

  test('many refused sessions leave nothing open behind them', async () => {
    refusing = true;
    const answers = await Promise.all(
      Array.from({ length: 30 }, () => post(gateway.httpUrl, '/c/llm/v1/chat/completions', token, false)),
    );
    assert.ok(answers.every((a) => a.status === 503));
    assert.ok(seenBeforeRefusal.slice(1).every((seen) => seen.join() === 'httpRequestHead,body'));
    await eventually(() => gateway.tunnel.sessionCount === 0, 10_000, 'every tunnel session to close');
    await eventually(() => client.activeSessions === 0, 10_000, "the agent's sessions to close");
    await gateway.store.audit.flush();
    assert.deepEqual(
      gateway.store.sessions.list({ activeOnly: true, limit: 1000 }).map((s) => s.id),
      [],
    );
  });
});

describe('an agent of this version, for a gateway that does not ask for keep-alive (older gateway)', () => {
  let stack: WardStack;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;

  before(async () => {
    upstream = await startUpstream();
    stack = await startStack({
      gatewayConnections: [{ name: 'plain', type: 'http', agent: 'e2e-agent' }],
      agentConnections: [{ type: 'http', name: 'plain', url: upstream.url, timeoutMs: 10_000 }],
    });
  });

  after(async () => {
    await stack?.stop();
    await upstream?.close();
  });

  test('answers ready without keepAlive and closes the session after the one response, as before', async () => {
    // What an older gateway sends: HttpStart without keep_alive, then one exchange.
    const { channel, ready } = await stack.gateway.tunnel.openSession({
      connection: 'plain',
      identity: 'bob',
      target: { case: 'http', value: {} },
    });
    assert.equal(ready.detail.case, 'http');
    assert.equal(ready.detail.case === 'http' && ready.detail.value.keepAlive, false);
    const frames: string[] = [];
    const closed = new Promise<WardError | undefined>((resolve) => channel.onClose(resolve));
    channel.onFrame((frame) => {
      frames.push(frame.frame.case === 'body' && frame.frame.value.end ? 'body(end)' : (frame.frame.case ?? ''));
      if (frame.frame.case === 'body') channel.delivered(frame.frame.value.data.byteLength);
    });
    channel.send(
      create(SessionFrameSchema, {
        frame: {
          case: 'httpRequestHead',
          value: {
            method: 'POST',
            path: '/v1/chat/completions',
            headers: [{ name: 'content-type', value: 'application/json' }],
          },
        },
      }),
    );
    await channel.sendData(Buffer.from(BODY), (data) =>
      create(SessionFrameSchema, { frame: { case: 'body', value: { data, end: true } } }),
    );
    assert.equal(await closed, undefined, 'a normal close');
    assert.deepEqual(frames, ['httpResponseHead', 'body(end)']);
  });
});
