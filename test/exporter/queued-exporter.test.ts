/**
 * The export queue's room: offer() never drops, waitForRoom() waits for a slow
 * downstream and, when asked to, stops waiting once downstream fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { QueuedExporter } from '../../src/exporter/queued-exporter.ts';
import type { PayloadSender, SendResult } from '../../src/exporter/otlp-grpc-sender.ts';
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

function exporter(sender: PayloadSender): QueuedExporter {
  return new QueuedExporter({
    name: 'forwarder',
    sender,
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
});
