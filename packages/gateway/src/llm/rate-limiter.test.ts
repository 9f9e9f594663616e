import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimiter } from './rate-limiter.js';

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('RateLimiter (token buckets)', () => {
  test('requestsPerMinute: a burst of the limit, then refusal with the wait, then refill', () => {
    const c = clock();
    const rl = new RateLimiter({ now: c.now });
    const ok = [1, 2, 3].map(() => rl.admit('llm', 'user:bob', { requestsPerMinute: 3 }, { embeddingInputs: 0 }).ok);
    assert.deepEqual(ok, [true, true, true]);
    const denied = rl.admit('llm', 'user:bob', { requestsPerMinute: 3 }, { embeddingInputs: 0 });
    assert.equal(denied.ok, false);
    if (!denied.ok) {
      assert.equal(denied.limit, 'requestsPerMinute');
      assert.equal(denied.retryAfterSeconds, 20); // one request every 20 s at 3/min
    }
    // Another identity and another connection have their own buckets.
    assert.equal(rl.admit('llm', 'user:eve', { requestsPerMinute: 3 }, { embeddingInputs: 0 }).ok, true);
    assert.equal(rl.admit('other', 'user:bob', { requestsPerMinute: 3 }, { embeddingInputs: 0 }).ok, true);
    c.advance(20_000);
    assert.equal(rl.admit('llm', 'user:bob', { requestsPerMinute: 3 }, { embeddingInputs: 0 }).ok, true);
    assert.equal(rl.admit('llm', 'user:bob', { requestsPerMinute: 3 }, { embeddingInputs: 0 }).ok, false);
  });

  test('tokensPerMinute is charged after the answer and may go negative', () => {
    const c = clock();
    const rl = new RateLimiter({ now: c.now });
    const limits = { tokensPerMinute: 600 };
    const a = rl.admit('llm', 'user:bob', limits, { embeddingInputs: 0 });
    assert.equal(a.ok, true);
    if (a.ok) a.charge(1200); // twice the minute's allowance, known only afterwards
    const b = rl.admit('llm', 'user:bob', limits, { embeddingInputs: 0 });
    assert.equal(b.ok, false);
    if (!b.ok) {
      assert.equal(b.limit, 'tokensPerMinute');
      assert.equal(b.retryAfterSeconds, 60); // from -600 back above 0 at 10 tokens/s
    }
    c.advance(61_000);
    assert.equal(rl.admit('llm', 'user:bob', limits, { embeddingInputs: 0 }).ok, true);
  });

  test('embeddingInputsPerMinute counts inputs; a refused request takes nothing from other buckets', () => {
    const c = clock();
    const rl = new RateLimiter({ now: c.now });
    const limits = { requestsPerMinute: 10, embeddingInputsPerMinute: 100 };
    assert.equal(rl.admit('llm', 'svc', limits, { embeddingInputs: 80 }).ok, true);
    const denied = rl.admit('llm', 'svc', limits, { embeddingInputs: 30 });
    assert.equal(denied.ok, false);
    if (!denied.ok) {
      assert.equal(denied.limit, 'embeddingInputsPerMinute');
      assert.equal(denied.retryAfterSeconds, 6); // 10 more inputs at 100/min
    }
    // 9 more requests fit (10 minus the admitted one): the refused one did not spend a request.
    let admitted = 0;
    for (let i = 0; i < 10; i++)
      if (rl.admit('llm', 'svc', { requestsPerMinute: 10 }, { embeddingInputs: 0 }).ok) admitted++;
    assert.equal(admitted, 9);
    // A batch larger than a whole minute's allowance passes once the bucket is full.
    c.advance(60_000);
    assert.equal(rl.admit('llm', 'big', { embeddingInputsPerMinute: 100 }, { embeddingInputs: 500 }).ok, true);
  });

  test('no limits: always admitted, no bucket kept; idle buckets are swept past maxBuckets', () => {
    const c = clock();
    const rl = new RateLimiter({ now: c.now, maxBuckets: 10 });
    assert.equal(rl.admit('llm', 'x', {}, { embeddingInputs: 5 }).ok, true);
    assert.equal(rl.size, 0);
    for (let i = 0; i < 10; i++) rl.admit('llm', `id${i}`, { requestsPerMinute: 60 }, { embeddingInputs: 0 });
    assert.equal(rl.size, 10);
    c.advance(2_000); // every bucket refilled
    rl.admit('llm', 'new', { requestsPerMinute: 60 }, { embeddingInputs: 0 });
    assert.equal(rl.size, 1);
  });
});
