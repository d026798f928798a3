import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedTransport } from '../../src/transport/embedded.ts';
import { saramaPartition } from '../../src/transport/partitioner.ts';
import type { ConsumedRecord, TraceRecord } from '../../src/transport/transport.ts';

function record(i: number, bytes = 100): TraceRecord {
  return { traceId: i.toString(16).padStart(32, '0'), payload: new Uint8Array(bytes), spanCount: 1, timestampMs: i };
}

describe('embedded transport', () => {
  it('partitions by trace id with the Kafka partitioner and keeps order within a partition', async () => {
    const t = createEmbeddedTransport({ partitions: 4, partitioner: 'sarama', maxQueuedBytes: 1 << 20, retryAfterMs: 1000 });
    const got: ConsumedRecord[] = [];
    const c = t.createConsumer('g', {
      onBatch: (_p, records) => {
        got.push(...records);
        return Promise.resolve();
      },
    });
    await c.start();
    const records = Array.from({ length: 100 }, (_, i) => record(i));
    assert.deepEqual(await t.createProducer().send(records), { status: 'success' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, 100);
    for (const r of got) assert.equal(r.partition, saramaPartition(r.traceId, 4));
    for (let p = 0; p < 4; p++) {
      const offsets = got.filter((r) => r.partition === p).map((r) => r.offset);
      assert.deepEqual(offsets, offsets.map((_, i) => BigInt(i)), `partition ${p} in order from offset 0`);
    }
    await c.shutdown();
  });

  it('delivers every record to every consumer group', async () => {
    const t = createEmbeddedTransport({ partitions: 2, partitioner: 'sarama', maxQueuedBytes: 1 << 20, retryAfterMs: 1000 });
    const counts = [0, 0];
    const consumers = [0, 1].map((g) =>
      t.createConsumer(`g${g}`, {
        onBatch: (_p, r) => {
          counts[g]! += r.length;
          return Promise.resolve();
        },
      }),
    );
    for (const c of consumers) await c.start();
    await t.createProducer().send(Array.from({ length: 50 }, (_, i) => record(i)));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(counts, [50, 50]);
    for (const c of consumers) await c.shutdown();
  });

  it('refuses producers (retryable) past the byte bound while a group is slow, and accepts again once it catches up', async () => {
    const t = createEmbeddedTransport({ partitions: 1, partitioner: 'sarama', maxQueuedBytes: 1000, retryAfterMs: 1234, maxBatchRecords: 1 });
    let release: (() => void) | undefined;
    const c = t.createConsumer('slow', {
      onBatch: () => new Promise<void>((r) => (release = r)),
    });
    await c.start();
    const p = t.createProducer();
    assert.equal((await p.send([record(1, 400)])).status, 'success');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal((await p.send([record(2, 400)])).status, 'success');
    assert.equal((await p.send([record(3, 400)])).status, 'success');
    const refused = await p.send([record(4, 400)]);
    assert.equal(refused.status, 'retryable');
    assert.equal(refused.status === 'retryable' && refused.retryInMillis, 1234);
    for (let i = 0; i < 5; i++) {
      release?.();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await p.send([record(5, 400)])).status, 'success');
    await c.shutdown();
  });

  it('pause stops delivery and resume continues where it stopped', async () => {
    const t = createEmbeddedTransport({ partitions: 1, partitioner: 'sarama', maxQueuedBytes: 1 << 20, retryAfterMs: 1000 });
    let n = 0;
    const c = t.createConsumer('g', {
      onBatch: (_p, r) => {
        n += r.length;
        return Promise.resolve();
      },
    });
    await c.start();
    c.pause();
    await t.createProducer().send([record(1), record(2)]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(n, 0);
    c.resume();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(n, 2);
    await c.shutdown();
  });
});
