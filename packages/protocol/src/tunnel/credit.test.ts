import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ReceiveWindow, SendWindow } from './credit.js';

describe('SendWindow', () => {
  test('take never grants more than the window, and grant restores credit', () => {
    const w = new SendWindow(1000);
    assert.equal(w.take(600), 600);
    assert.equal(w.take(600), 400);
    assert.equal(w.take(1), 0);
    assert.equal(w.available, 0);
    w.grant(250);
    assert.equal(w.available, 250);
    assert.equal(w.take(1000), 250);
  });

  test('waitForCredit resolves at once when credit is available, else on grant', async () => {
    const w = new SendWindow(10);
    await w.waitForCredit(new AbortController().signal);
    w.take(10);
    let woke = 0;
    const waiting = [w.waitForCredit(new AbortController().signal), w.waitForCredit(new AbortController().signal)];
    for (const p of waiting) void p.then(() => woke++);
    await Promise.resolve();
    assert.equal(woke, 0);
    w.grant(1);
    await Promise.all(waiting);
    assert.equal(woke, 2);
  });

  test('waitForCredit resolves when the signal aborts, without credit', async () => {
    const w = new SendWindow(0);
    const ac = new AbortController();
    const p = w.waitForCredit(ac.signal);
    ac.abort();
    await p;
    assert.equal(w.available, 0);
    // An already-aborted signal never parks the caller.
    await w.waitForCredit(ac.signal);
  });
});

describe('ReceiveWindow', () => {
  test('receive accepts up to the window and flags the first byte beyond it', () => {
    const r = new ReceiveWindow(1000);
    assert.equal(r.receive(400), true);
    assert.equal(r.receive(600), true);
    assert.equal(r.outstanding, 1000);
    assert.equal(r.receive(1), false);
    assert.equal(r.outstanding, 1001);
  });

  test('delivered batches credit until a quarter of the window is due', () => {
    const r = new ReceiveWindow(1000);
    r.receive(1000);
    const grants: number[] = [];
    for (let i = 0; i < 10; i++) grants.push(r.delivered(100));
    // An update goes out once at least a quarter (250) is pending; the last 100 wait for more:
    // the sender still has that much credit, so nothing is stalled.
    assert.deepEqual(grants, [0, 0, 300, 0, 0, 300, 0, 0, 300, 0]);
    assert.equal(
      grants.reduce((a, b) => a + b, 0),
      900,
    );
    assert.equal(r.outstanding, 0);
  });

  test('small messages cost no WindowUpdate each: credit returns a quarter window at a time', () => {
    const r = new ReceiveWindow(1000);
    let granted = 0;
    for (let i = 0; i < 24; i++) {
      r.receive(10);
      granted += r.delivered(10);
    }
    // 240 bytes delivered: none returned yet (under 250), so no frame per message.
    assert.equal(granted, 0);
    r.receive(10);
    assert.equal(r.delivered(10), 250);
  });

  test('a sender out of credit always resumes once its bytes are delivered', () => {
    const window = 1000;
    const send = new SendWindow(window);
    const recv = new ReceiveWindow(window);
    for (let round = 0; round < 50; round++) {
      const n = send.take(window);
      recv.receive(n);
      assert.equal(send.available, 0);
      // Delivered in small pieces, as small frames would be.
      for (let left = n; left > 0; left -= Math.min(left, 7)) {
        const grant = recv.delivered(Math.min(left, 7));
        if (grant > 0) send.grant(grant);
      }
      assert.ok(send.available > 0, `stalled in round ${round}`);
    }
  });

  test('a sender that honours the returned credit never trips the violation check', () => {
    const window = 64 * 1024;
    const send = new SendWindow(window);
    const recv = new ReceiveWindow(window);
    let moved = 0;
    // Deterministic pseudo-random frame and delivery sizes.
    let x = 12345;
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return 1 + (x % n);
    };
    let inFlight = 0;
    for (let step = 0; step < 20_000; step++) {
      const n = send.take(rnd(20_000));
      if (n > 0) {
        assert.equal(recv.receive(n), true);
        inFlight += n;
        moved += n;
      }
      if (inFlight > 0) {
        const d = Math.min(inFlight, rnd(30_000));
        inFlight -= d;
        const grant = recv.delivered(d);
        if (grant > 0) send.grant(grant);
      }
      assert.ok(recv.outstanding <= window);
    }
    assert.ok(moved > window * 10, `moved ${moved}`);
  });
});
