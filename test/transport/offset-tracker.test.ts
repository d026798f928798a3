/**
 * The low watermark of a partition: against a plain model (a map of offset to
 * holds), over random sequences of holds and releases in and out of order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OffsetTracker } from '../../src/transport/offset-tracker.ts';
import { prng } from '../helpers/prng.ts';

class Model {
  readonly pending = new Map<bigint, number>();
  next: bigint | undefined;
  hold(offset: bigint, holds: number): void {
    this.pending.set(offset, (this.pending.get(offset) ?? 0) + holds);
    if (this.next === undefined || offset + 1n > this.next) this.next = offset + 1n;
  }
  release(offset: bigint): void {
    const n = this.pending.get(offset);
    if (n === undefined) return;
    if (n <= 1) this.pending.delete(offset);
    else this.pending.set(offset, n - 1);
  }
  committable(): bigint | undefined {
    if (this.next === undefined) return undefined;
    let min = this.next;
    for (const o of this.pending.keys()) if (o < min) min = o;
    return min;
  }
}

describe('OffsetTracker', () => {
  it('commits up to the lowest offset still held, one past the highest seen when none is', () => {
    const t = new OffsetTracker();
    assert.equal(t.committable(0), undefined);
    t.hold(0, 5n);
    t.hold(0, 6n);
    t.hold(0, 7n, 2);
    assert.equal(t.committable(0), 5n);
    t.release(0, 6n);
    assert.equal(t.committable(0), 5n, 'a later record done does not move the watermark');
    t.release(0, 5n);
    assert.equal(t.committable(0), 7n, 'past both done records');
    t.release(0, 7n);
    assert.equal(t.committable(0), 7n, 'one of two holds left');
    t.release(0, 7n);
    t.release(0, 7n); // a release too many is ignored
    assert.equal(t.committable(0), 8n);
    t.release(0, 100n); // never held
    assert.equal(t.committable(0), 8n);
    assert.deepEqual(t.partitions(), [0]);
    t.forget(0);
    assert.deepEqual(t.partitions(), []);
    assert.equal(t.committable(0), undefined);
  });

  it('agrees with a plain model over random holds and releases, in and out of order, past its initial room', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = prng(seed);
      const t = new OffsetTracker();
      const m = [new Model(), new Model()];
      const held: Array<[number, bigint]> = [];
      const next = [0n, 0n];
      for (let step = 0; step < 20_000; step++) {
        const r = rnd();
        const p = rnd() < 0.5 ? 0 : 1;
        if (r < 0.5 || held.length === 0) {
          // Mostly the next offset (with gaps: transaction markers, compaction), now and then an older one again.
          let offset: bigint;
          if (rnd() < 0.05 && next[p]! > 0n) offset = BigInt(Math.floor(rnd() * Number(next[p]!)));
          else {
            offset = next[p]! + BigInt(Math.floor(rnd() * 3));
            next[p] = offset + 1n;
          }
          const holds = rnd() < 0.1 ? 2 : 1;
          t.hold(p, offset, holds);
          m[p]!.hold(offset, holds);
          for (let k = 0; k < holds; k++) held.push([p, offset]);
        } else {
          // Released in any order; sometimes one that was never held, or is done already.
          const i = Math.floor(rnd() * held.length);
          const [hp, offset] = rnd() < 0.02 ? [p, BigInt(Math.floor(rnd() * 50_000))] : held.splice(i, 1)[0]!;
          t.release(hp, offset);
          m[hp]!.release(offset);
        }
        if (step % 97 === 0 || step > 19_900) {
          for (const q of [0, 1]) assert.equal(t.committable(q), m[q]!.committable(), `seed ${seed}, step ${step}, partition ${q}`);
        }
      }
    }
  });
});
