/**
 * A worker keeps the payloads of the traces it assembles in shared memory
 * (PayloadArena), used again once released, and its evaluation threads read
 * them there in place; a payload that is not in shared memory still travels,
 * copied.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { EvaluatorPool } from '../../src/worker/index.ts';
import { PayloadArena } from '../../src/worker/payload-arena.ts';

describe('payloads in shared memory', () => {
  it('are copies, small ones packed into shared slabs, large ones in buffers of their own', () => {
    const arena = new PayloadArena({ slabBytes: 1024 });
    const source = randomBytes(2000);
    const a = arena.copy(source.subarray(0, 200));
    const b = arena.copy(source.subarray(200, 450));
    const c = arena.copy(source.subarray(450, 700));
    const d = arena.copy(source.subarray(700, 950));
    const e = arena.copy(source.subarray(950, 1150)); // does not fit what is left of the slab
    const big = arena.copy(source.subarray(3, 303)); // more than a quarter of a slab, at an odd offset
    const original = Buffer.from(source);
    source.fill(0); // copies: the source may be reused
    assert.deepEqual(
      [a, b, c, d, e, big].map((v) => Buffer.from(v)),
      [original.subarray(0, 200), original.subarray(200, 450), original.subarray(450, 700), original.subarray(700, 950), original.subarray(950, 1150), original.subarray(3, 303)],
    );
    for (const v of [a, b, c, d, e, big]) assert.ok(v.buffer instanceof SharedArrayBuffer);
    assert.equal(b.buffer, a.buffer, 'small payloads share a slab');
    const gap = b.byteOffset - (a.byteOffset + a.length);
    assert.ok(gap >= 0 && gap < 8, `packed back to back but for alignment (a gap of ${gap})`);
    // Each copy is aligned as its source modulo 8 (V8 copies into shared memory word by word only then).
    for (const [v, at] of [[a, 0], [b, 200], [c, 450], [d, 700], [e, 950]] as const) assert.equal(v.byteOffset % 8, (source.byteOffset + at) % 8);
    assert.notEqual(e.buffer, a.buffer, 'a full slab is followed by another');
    const bigAt = (source.byteOffset + 3) % 8; // aligned as its source, as every copy
    assert.equal(big.byteOffset, bigAt);
    assert.equal(big.buffer.byteLength, bigAt + 300, 'a large payload has a buffer of its own');
    assert.equal(arena.bytes, 1024 + 1024 + bigAt + 300);
  });

  it('use a slab again once every payload in it was released, each release counted once', () => {
    const arena = new PayloadArena({ slabBytes: 1024, maxFreeSlabs: 1 });
    const first = [arena.copy(randomBytes(250)), arena.copy(randomBytes(250)), arena.copy(randomBytes(250)), arena.copy(randomBytes(250))];
    const next = arena.copy(randomBytes(250)); // a second slab: the first is full
    assert.notEqual(next.buffer, first[0]!.buffer);
    for (const p of first.slice(0, 3)) arena.release(p);
    arena.release(first[0]!); // released twice: counted once, the fourth payload still holds the slab
    arena.release(first[0]!);
    for (let i = 0; i < 3; i++) arena.copy(randomBytes(250)); // fills the second slab
    const third = arena.copy(randomBytes(250));
    assert.notEqual(third.buffer, first[0]!.buffer, 'the first slab still holds a payload');
    assert.equal(arena.bytes, 3 * 1024);
    arena.release(first[3]!);
    for (let i = 0; i < 3; i++) arena.copy(randomBytes(250)); // fills the third slab
    const reused = arena.copy(Buffer.alloc(250, 7));
    assert.equal(reused.buffer, first[0]!.buffer, 'the first slab is used again');
    assert.equal(reused.byteOffset, 0);
    assert.deepEqual(Buffer.from(reused), Buffer.alloc(250, 7));
    assert.equal(arena.bytes, 3 * 1024, 'no new memory');
  });

  it('keep empty slabs for retainFreeMs after their last use, then give them back', () => {
    let now = 0;
    const arena = new PayloadArena({ slabBytes: 1024, retainFreeMs: 60_000, now: () => now });
    const burst = Array.from({ length: 40 }, () => arena.copy(randomBytes(200))); // 8 slabs of 5
    arena.copy(randomBytes(200)); // the eighth is no longer the slab written to
    assert.equal(arena.bytes, 9 * 1024);
    now = 1000;
    for (const p of burst) arena.release(p);
    assert.equal(arena.freeSlabs, 8, 'kept for the next peak');
    assert.equal(arena.bytes, 9 * 1024);
    now = 30_000;
    const again = Array.from({ length: 15 }, () => arena.copy(randomBytes(200))); // fills the ninth, then takes 3 kept slabs
    assert.equal(arena.bytes, 9 * 1024, 'the next peak finds its memory: no new slab');
    assert.equal(arena.freeSlabs, 5);
    arena.trim();
    assert.equal(arena.freeSlabs, 5, 'nothing given back within retainFreeMs');
    now = 61_000;
    arena.trim();
    assert.equal(arena.freeSlabs, 0, 'unused for 60 s: given back');
    assert.equal(arena.bytes, 4 * 1024, 'the slabs still holding payloads');
    now = 70_000;
    for (const p of again.slice(4, 9)) arena.release(p); // the slab after the ninth
    now = 100_000;
    for (const p of again.slice(9, 14)) arena.release(p); // the next one
    const fill = Array.from({ length: 4 }, () => arena.copy(randomBytes(200))); // fills the slab written to
    const next = arena.copy(randomBytes(200)); // which is full: a kept slab is taken
    assert.equal(next.buffer, again[9]!.buffer, 'the slab freed most recently is used first');
    assert.equal(arena.freeSlabs, 1);
    now = 110_000;
    for (const p of [again[14]!, ...fill]) arena.release(p); // the slab filled above
    assert.equal(arena.freeSlabs, 2);
    now = 130_000;
    arena.trim();
    assert.equal(arena.freeSlabs, 1, 'freed at 70 s: given back at 130 s; freed at 110 s: kept');
    now = 170_000;
    arena.trim();
    assert.deepEqual([arena.freeSlabs, arena.bytes], [0, 2 * 1024], 'the slab written to and the one holding the 41st payload stay');
  });

  it('keep at most maxFreeSlabs empty slabs', () => {
    const arena = new PayloadArena({ slabBytes: 1024, maxFreeSlabs: 1 });
    const payloads = Array.from({ length: 80 }, () => arena.copy(randomBytes(200))); // 16 slabs of 5
    arena.copy(randomBytes(200)); // the sixteenth is no longer the slab written to
    assert.equal(arena.bytes, 17 * 1024);
    for (const p of payloads) arena.release(p);
    assert.equal(arena.bytes, 2 * 1024, 'the one written to and one kept free');
  });

  it('are evaluated in place, beside payloads that are not in shared memory, in one batch', async (t) => {
    const pool = new EvaluatorPool({ threads: 1, logger: createLogger('error') });
    await pool.start();
    t.after(() => pool.shutdown());
    pool.setRules([
      { id: 'pay-before-ship', name: 'pay before ship', description: '', severity: 'high', enabled: true, tags: [], condition: 'trace.has(shipment.initiate) implies trace.has(payment.confirm)' },
    ]);
    const arena = new PayloadArena();
    const traceId = randomBytes(16);
    const request = (name: string) =>
      Buffer.from(
        ExportTraceServiceRequest.encode(
          ExportTraceServiceRequest.fromObject({
            resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }] }, scopeSpans: [{ spans: [{ traceId, spanId: randomBytes(8), name, startTimeUnixNano: '1000', endTimeUnixNano: '2000' }] }] }],
          }),
        ).finish(),
      );
    const ship = arena.copy(request('shipment.initiate'));
    const pay = request('payment.confirm');
    // Asked for in one turn: one message to the thread, shared and copied payloads together.
    const [violating, clean, paidOnly, resent] = await Promise.all([
      pool.evaluate([ship], 1000),
      pool.evaluate([ship, pay], 1000),
      pool.evaluate([pay], 1000),
      pool.evaluate([ship, pay, ship], 1000),
    ]);
    assert.deepEqual([resent.spansIn, resent.uniqueSpans], [3, 2], 'a re-sent span is counted once');
    assert.equal(violating.spansIn, 1);
    assert.deepEqual(violating.violations.map((v) => v.ruleId), ['pay-before-ship']);
    assert.equal(clean.spansIn, 2, 'both payloads decoded');
    assert.deepEqual(clean.violations, []);
    assert.equal(paidOnly.spansIn, 1);
    assert.deepEqual(paidOnly.violations, []);
    assert.equal(violating.undecodable + clean.undecodable + paidOnly.undecodable, 0);
  });
});
