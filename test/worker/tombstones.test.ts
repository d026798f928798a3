/** Tombstones remember the latest `max` ids marked, renew an id marked again, and forget what is older than 2 × `max`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tombstones } from '../../src/worker/tombstones.ts';

const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `t${from + i}`);

describe('Tombstones', () => {
  it('always remembers the latest max ids and holds at most 2 × max', () => {
    const t = new Tombstones(100);
    for (let n = 0; n < 1000; n++) {
      t.mark(`t${n}`);
      assert.ok(t.size <= 200, `size ${t.size} after ${n + 1} marks`);
      for (const id of ids(Math.max(0, n - 99), n + 1)) assert.ok(t.has(id), `${id} forgotten after t${n}`);
    }
    for (const id of ids(0, 1000 - 200)) assert.equal(t.has(id), false, `${id} still remembered`);
  });

  it('renews an id marked again', () => {
    const t = new Tombstones(10);
    t.mark('kept');
    for (let n = 0; n < 100; n++) {
      t.mark(`t${n}`);
      if (n % 5 === 0) t.mark('kept');
    }
    assert.ok(t.has('kept'));
    assert.equal(t.has('t0'), false);
  });
});
