import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from './backoff.js';

test('the ceiling doubles per attempt up to the cap', () => {
  const top = () => 0.999999;
  assert.equal(backoffDelay(0, 250, 10_000, top), 249);
  assert.equal(backoffDelay(1, 250, 10_000, top), 499);
  assert.equal(backoffDelay(3, 250, 10_000, top), 1999);
  assert.equal(backoffDelay(6, 250, 10_000, top), 9999);
  assert.equal(backoffDelay(50, 250, 10_000, top), 9999);
  // Huge attempt counts must not overflow to Infinity/NaN.
  assert.equal(backoffDelay(10_000, 250, 10_000, top), 9999);
});

test('full jitter: the delay spans [floor, ceiling], with a 50 ms floor', () => {
  assert.equal(
    backoffDelay(5, 250, 10_000, () => 0),
    50,
  );
  assert.equal(
    backoffDelay(5, 250, 10_000, () => 0.5),
    4000,
  );
  // A ceiling below the floor is returned as is: never more than the caller's cap.
  assert.equal(
    backoffDelay(0, 20, 30, () => 0),
    20,
  );
  assert.equal(
    backoffDelay(0, 20, 10, () => 0.9),
    10,
  );
});

test('with Math.random, delays stay in bounds and are spread out', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const attempt = i % 12;
    const d = backoffDelay(attempt, 100, 5_000);
    const ceiling = Math.min(5_000, 100 * 2 ** attempt);
    assert.ok(d >= Math.min(50, ceiling) && d <= ceiling, `attempt ${attempt}: ${d}`);
    if (attempt === 11) seen.add(d);
  }
  // 166 draws from [50, 5000]: full jitter gives many distinct values, not a fixed schedule.
  assert.ok(seen.size > 100, `only ${seen.size} distinct delays`);
});
