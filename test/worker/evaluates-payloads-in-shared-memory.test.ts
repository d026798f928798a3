/**
 * A worker keeps the payloads of the traces it assembles in shared memory
 * (PayloadArena), and its evaluation threads read them there in place; a
 * payload that is not in shared memory still travels, copied.
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
    const arena = new PayloadArena(1024);
    const source = randomBytes(2000);
    const a = arena.copy(source.subarray(0, 300));
    const b = arena.copy(source.subarray(300, 900));
    const c = arena.copy(source.subarray(900, 1300)); // does not fit what is left of the slab
    const big = arena.copy(source.subarray(0, 1500)); // larger than a slab
    const original = Buffer.from(source);
    source.fill(0); // copies: the source may be reused
    assert.deepEqual(
      [a, b, c, big].map((v) => Buffer.from(v)),
      [original.subarray(0, 300), original.subarray(300, 900), original.subarray(900, 1300), original.subarray(0, 1500)],
    );
    for (const v of [a, b, c, big]) assert.ok(v.buffer instanceof SharedArrayBuffer);
    assert.equal(a.buffer, b.buffer, 'small payloads share a slab');
    assert.equal(b.byteOffset, a.byteOffset + a.length, 'packed back to back');
    assert.notEqual(c.buffer, a.buffer, 'a full slab is followed by a new one');
    assert.equal(c.byteOffset, 0);
    assert.equal(big.buffer.byteLength, 1500, 'a large payload has a buffer of its own');
    assert.deepEqual([a.length, b.length, c.length, big.length], [300, 600, 400, 1500]);
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
    const [violating, clean, paidOnly] = await Promise.all([
      pool.evaluate([ship], 1000),
      pool.evaluate([ship, pay], 1000),
      pool.evaluate([pay], 1000),
    ]);
    assert.equal(violating.spansIn, 1);
    assert.deepEqual(violating.violations.map((v) => v.ruleId), ['pay-before-ship']);
    assert.equal(clean.spansIn, 2, 'both payloads decoded');
    assert.deepEqual(clean.violations, []);
    assert.equal(paidOnly.spansIn, 1);
    assert.deepEqual(paidOnly.violations, []);
    assert.equal(violating.undecodable + clean.undecodable + paidOnly.undecodable, 0);
  });
});
