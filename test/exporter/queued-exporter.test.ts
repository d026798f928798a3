/**
 * The export queue's room: offer() never drops, waitForRoom() waits for a slow
 * downstream and, when asked to, stops waiting once downstream fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { QueuedExporter } from '../../src/exporter/queued-exporter.ts';
import type { PayloadSender, SendResult } from '../../src/exporter/otlp-grpc-sender.ts';
import type { FullQueuePolicy } from '../../src/exporter/export-queue.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

/** A downstream whose answers the test gives, one per send, in order. */
function scriptedSender(): PayloadSender & { answer(result: SendResult): void; readonly pending: number } {
  const waiting: Array<(r: SendResult) => void> = [];
  return {
    send: () => new Promise<SendResult>((resolve) => waiting.push(resolve)),
    shutdown: () => Promise.resolve(),
    answer: (result) => waiting.shift()!(result),
    get pending() {
      return waiting.length;
    },
  };
}

function exporter(sender: PayloadSender, whenFull?: FullQueuePolicy): QueuedExporter {
  return new QueuedExporter({
    name: 'forwarder',
    sender,
    ...(whenFull === undefined ? {} : { whenFull }),
    config: { maxQueueSpans: 10, maxBatchSpans: 10, batchTimeoutMs: 1, maxRetryTimeMs: 60_000 },
    metrics: createMetrics(),
    logger: createLogger('error', new Writable({ write: (_c, _e, cb) => cb() })),
    initialBackoffMs: 1,
    maxBackoffMs: 1,
  });
}

const item = (spanCount: number) => ({ payload: new Uint8Array(0), spanCount });
const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  return done;
};

describe('the export queue', () => {
  it('offers without dropping, and waits for room while downstream is slow', async () => {
    const sender = scriptedSender();
    const q = exporter(sender);
    await q.start();
    assert.equal(q.offer(item(10)), true);
    assert.equal(q.offer(item(5)), false, 'full: refused, not dropped');
    assert.equal(q.queuedSpans, 10);
    const room = q.waitForRoom(5, true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sender.pending, 1);
    assert.equal(await settled(room), false, 'waits while the batch is in flight');
    sender.answer({ status: 'success' });
    assert.equal(await settled(room), true, 'room once it was delivered');
    assert.equal(q.delivering, true);
    assert.equal(q.offer(item(5)), true);
    await new Promise((r) => setTimeout(r, 20));
    sender.answer({ status: 'success' });
    await q.shutdown();
  });

  it('stops waiting when downstream fails, for callers waiting only while it delivers', async () => {
    const sender = scriptedSender();
    const q = exporter(sender);
    await q.start();
    assert.equal(q.offer(item(10)), true);
    const whileDelivering = q.waitForRoom(5, true);
    const always = q.waitForRoom(5);
    await new Promise((r) => setTimeout(r, 20));
    sender.answer({ status: 'retryable', error: 'down' });
    assert.equal(await settled(whileDelivering), true, 'a failing downstream is not waited for');
    assert.equal(q.delivering, false);
    assert.equal(await settled(always), false, 'the other waiter still waits');
    assert.equal(await settled(q.waitForRoom(5, true)), true, 'nor waited for by new callers');
    await new Promise((r) => setTimeout(r, 20));
    sender.answer({ status: 'success' });
    assert.equal(await settled(always), true);
    assert.equal(q.delivering, true);
    await q.shutdown();
  });

  it('does what the full-queue policy chosen at construction says', async () => {
    const outcomes = () => [] as boolean[];
    const tracked = (spanCount: number, done: boolean[]) => ({ ...item(spanCount), onDone: (d: boolean) => done.push(d) });

    // drop: at once, settled and counted.
    const dropping = scriptedSender();
    const d = exporter(dropping, 'drop');
    await d.start();
    assert.equal(await d.export(item(10)), 'queued');
    const dDone = outcomes();
    assert.equal(await d.export(tracked(5, dDone)), 'dropped');
    assert.deepEqual(dDone, [false]);
    await new Promise((r) => setTimeout(r, 20));
    dropping.answer({ status: 'success' });
    await d.shutdown();

    // wait: until there is room, however downstream fares; once stopping, left to the caller unsettled.
    const waiting = scriptedSender();
    const w = exporter(waiting, 'wait');
    await w.start();
    assert.equal(await w.export(item(10)), 'queued');
    const wDone = outcomes();
    const admitted = w.export(tracked(5, wDone));
    await new Promise((r) => setTimeout(r, 20));
    waiting.answer({ status: 'retryable', error: 'down' });
    assert.equal(await settled(admitted.then(() => undefined)), false, 'still waiting while downstream fails');
    await new Promise((r) => setTimeout(r, 20));
    waiting.answer({ status: 'success' });
    assert.equal(await admitted, 'queued');
    const stopping = w.shutdown();
    assert.equal(await w.export(tracked(5, wDone)), 'left');
    await new Promise((r) => setTimeout(r, 20));
    waiting.answer({ status: 'success' });
    await stopping;
    assert.deepEqual(wDone, [true], 'the left entry is not settled');

    // wait_while_delivering: waits while downstream is slow, drops (counted) once it fails.
    const slow = scriptedSender();
    const v = exporter(slow, 'wait_while_delivering');
    await v.start();
    assert.equal(await v.export(item(10)), 'queued');
    const vDone = outcomes();
    const pending = v.export(tracked(5, vDone));
    assert.equal(await settled(pending.then(() => undefined)), false, 'waits while the batch is in flight');
    slow.answer({ status: 'retryable', error: 'down' });
    assert.equal(await pending, 'dropped');
    assert.deepEqual(vDone, [false]);
    await new Promise((r) => setTimeout(r, 20));
    slow.answer({ status: 'success' });
    await v.shutdown();
  });
});
