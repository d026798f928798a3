import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { CHECK_PENDING_REQUESTS_MS } from '../../src/transport/kafkajs.ts';

const require = createRequire(import.meta.url);

interface Queue {
  throttledUntil: number;
  pending: unknown[];
  checkPendingRequests: () => void;
  scheduleCheckPendingRequests: () => void;
}
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as new (options: object) => Queue;

test('kafkajs schedules its check of queued requests never with a negative delay', (t) => {
  const scheduled: { run: () => void; delay: number }[] = [];
  t.mock.method(globalThis, 'setTimeout', (run: () => void, delay: number) => {
    scheduled.push({ run, delay });
    return { unref() {}, ref() {} };
  });
  const now = Date.now();
  t.mock.method(Date, 'now', () => now);
  const at = (i: number): { run: () => void; delay: number } => {
    const s = scheduled[i];
    assert.ok(s, `no timeout number ${i}`);
    return s;
  };
  const queue = (): { q: Queue; checks: () => number } => {
    const q = new RequestQueue({ maxInFlightRequests: null, requestTimeout: 30_000, clientId: 'test', broker: 'none', logger: null });
    let checks = 0;
    q.checkPendingRequests = () => checks++;
    return { q, checks: () => checks };
  };

  // Nothing throttled, nothing queued: the state after every response.
  const idle = queue();
  idle.q.scheduleCheckPendingRequests();
  assert.equal(scheduled.length, 1);
  assert.ok(at(0).delay >= 1, `delay ${at(0).delay}`);
  at(0).run();
  assert.equal(idle.checks(), 1);

  // Queued, not throttled: kafkajs's interval.
  const queued = queue();
  queued.q.pending.push({});
  queued.q.scheduleCheckPendingRequests();
  assert.equal(at(1).delay, CHECK_PENDING_REQUESTS_MS);

  // Throttled by the broker: checked when the throttle ends, scheduled once until then.
  const throttled = queue();
  throttled.q.throttledUntil = now + 250;
  throttled.q.scheduleCheckPendingRequests();
  throttled.q.scheduleCheckPendingRequests();
  assert.equal(scheduled.length, 3);
  assert.equal(at(2).delay, 250);
  at(2).run();
  assert.equal(throttled.checks(), 1);
  throttled.q.scheduleCheckPendingRequests();
  assert.equal(scheduled.length, 4, 'a new check is scheduled once the last one ran');
});
