/**
 * The export queue splits a merged batch downstream refuses as not retryable back
 * into its entries, halving down to single entries, so only the refused entries are
 * dropped; every entry's onDone fires exactly once. A unit test: the downstream is a
 * mock sender that refuses any request holding a poison entry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QueuedExporter, type ExportItem } from '../../src/exporter/queued-exporter.ts';
import type { PayloadSender, SendResult } from '../../src/exporter/otlp-grpc-sender.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { capturedLogger, registryValue } from '../helpers/telemetry.ts';

/** Each entry's payload is one byte, its id: a request's bytes say which entries it holds. */
function mockSender(answer: (ids: number[], call: number) => SendResult): PayloadSender & { readonly calls: number[][]; readonly at: number[] } {
  const calls: number[][] = [];
  const at: number[] = [];
  return {
    calls,
    at,
    send(payload) {
      const ids = [...payload];
      calls.push(ids);
      at.push(Date.now());
      return Promise.resolve(answer(ids, calls.length - 1));
    },
    shutdown: () => Promise.resolve(),
  };
}

const refusing =
  (poison: ReadonlySet<number>, refusal: SendResult = { status: 'failure', code: 'INVALID_ARGUMENT', error: 'bad field', payloadSpecific: true }) =>
  (ids: number[]): SendResult =>
    ids.some((id) => poison.has(id)) ? refusal : { status: 'success' };

function setup(sender: PayloadSender, maxRetryTimeMs = 60_000, splitProbeIntervalMs = 30_000) {
  const metrics = createMetrics();
  const { logger, lines } = capturedLogger();
  const exporter = new QueuedExporter({
    name: 'forwarder',
    sender,
    config: { maxQueueSpans: 10_000, maxBatchSpans: 10_000, batchTimeoutMs: 5, maxRetryTimeMs },
    metrics,
    logger,
    initialBackoffMs: 1,
    maxBackoffMs: 1,
    splitProbeIntervalMs,
  });
  return { exporter, metrics, lines };
}

/** Entries first..first+n-1 of (id % 3) + 1 spans each, recording every onDone call. */
function entries(n: number, first = 0): { items: ExportItem[]; done: Array<boolean[]> } {
  const done: Array<boolean[]> = Array.from({ length: n }, () => []);
  const items = Array.from({ length: n }, (_, i) => first + i).map((id, i) => ({
    payload: Uint8Array.of(id),
    spanCount: (id % 3) + 1,
    onDone: (delivered: boolean) => done[i]!.push(delivered),
  }));
  return { items, done };
}

async function run(exporter: QueuedExporter, items: readonly ExportItem[], stop = true): Promise<void> {
  await exporter.start();
  for (const item of items) assert.equal(exporter.offer(item), true);
  await exporter.flush();
  if (stop) await exporter.shutdown();
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('bisecting a refused batch', () => {
  it('sends the halves apart, in order, down to the one refused entry', async () => {
    const sender = mockSender(refusing(new Set([5])));
    const { exporter, metrics, lines } = setup(sender);
    const { items, done } = entries(8);
    await run(exporter, items);
    assert.deepEqual(sender.calls, [range(0, 8), range(0, 4), range(4, 8), [4, 5], [4], [5], [6, 7]]);
    assert.deepEqual(done, items.map((_, id) => [id !== 5]), 'each onDone exactly once: entry 5 dropped, the others delivered');
    const spans = items.reduce((n, i) => n + i.spanCount, 0);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_sent_total'), spans - items[5]!.spanCount);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total'), items[5]!.spanCount);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder', reason: 'rejected', code: 'INVALID_ARGUMENT' }), items[5]!.spanCount);
    assert.equal(await registryValue(metrics, 'betrace_exporter_batch_splits_total', { exporter: 'forwarder' }), 3);
    const dropLine = lines.find((l) => /refused/.test(String(l.msg)) && /dropped/.test(String(l.msg)));
    assert.ok(dropLine, `a log line for the drop: ${JSON.stringify(lines)}`);
    assert.equal(dropLine.code, 'INVALID_ARGUMENT');
    assert.equal(dropLine.error, 'bad field');
  });

  it('isolates several refused entries among many, with a few calls each', async () => {
    const poison = new Set([0, 17, 18, 63]);
    const sender = mockSender(refusing(poison));
    const { exporter, metrics } = setup(sender);
    const { items, done } = entries(64);
    await run(exporter, items);
    assert.deepEqual(done, items.map((_, id) => [!poison.has(id)]));
    const delivered = sender.calls.filter((ids) => !ids.some((id) => poison.has(id))).flat();
    assert.deepEqual(delivered, range(0, 64).filter((id) => !poison.has(id)), 'every other entry delivered once, in order');
    assert.ok(sender.calls.length <= 2 * poison.size * Math.log2(64) + 1, `${sender.calls.length} calls`);
    const dropped = [...poison].reduce((n, id) => n + items[id]!.spanCount, 0);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { reason: 'rejected' }), dropped);
  });

  it('does not split when downstream refuses every request alike', async () => {
    const sender = mockSender(() => ({ status: 'failure', code: 'UNAUTHENTICATED', error: 'no token', payloadSpecific: false }));
    const { exporter, metrics } = setup(sender);
    const { items, done } = entries(8);
    await run(exporter, items);
    assert.deepEqual(sender.calls, [range(0, 8)]);
    assert.deepEqual(done, items.map(() => [false]));
    assert.equal(await registryValue(metrics, 'betrace_exporter_batch_splits_total'), 0);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { reason: 'rejected', code: 'UNAUTHENTICATED' }), 15, 'all 15 spans');
    assert.equal(exporter.delivering, false, 'a downstream refusing everything is not delivering');
  });

  it('sends a batch nothing refuses in one call, and a lone entry as its own bytes, uncopied', async () => {
    const payloads: Uint8Array[] = [];
    const sender = mockSender(() => ({ status: 'success' }));
    const { exporter, metrics } = setup({ send: (p, n) => (payloads.push(p), sender.send(p, n)), shutdown: () => sender.shutdown() });
    const { items, done } = entries(8);
    await run(exporter, items);
    const lone = entries(1);
    await run(setup({ send: (p, n) => (payloads.push(p), sender.send(p, n)), shutdown: () => sender.shutdown() }).exporter, lone.items);
    assert.deepEqual(sender.calls, [range(0, 8), [0]]);
    assert.deepEqual([...done, ...lone.done], [...items, ...lone.items].map(() => [true]));
    assert.equal(payloads[1], lone.items[0]!.payload, 'the entry itself is sent');
    assert.equal(await registryValue(metrics, 'betrace_exporter_batch_splits_total'), 0);
  });

  it('retries a part that fails retryably, then goes on splitting', async () => {
    // The whole batch is refused; its first half then meets an outage once.
    const sender = mockSender((ids, call) => (call === 1 ? { status: 'retryable', code: 'UNAVAILABLE', error: 'down' } : refusing(new Set([6]))(ids)));
    const { exporter, metrics } = setup(sender);
    const { items, done } = entries(8);
    await run(exporter, items);
    assert.deepEqual(sender.calls, [range(0, 8), range(0, 4), range(0, 4), range(4, 8), [4, 5], [6, 7], [6], [7]]);
    assert.deepEqual(done, items.map((_, id) => [id !== 6]));
    assert.equal(await registryValue(metrics, 'betrace_exporter_retries_total'), 1);
    assert.equal(exporter.delivering, true);
  });

  it('waits the delay downstream asks for, and gives up when it lies past max_retry_time', async () => {
    const asked = mockSender((_ids, call) => (call === 0 ? { status: 'retryable', code: 'RESOURCE_EXHAUSTED', error: 'slow down', retryAfterMs: 300 } : { status: 'success' }));
    const a = setup(asked);
    const first = entries(2);
    await run(a.exporter, first.items);
    assert.equal(asked.calls.length, 2);
    assert.ok(asked.at[1]! - asked.at[0]! >= 290, `retried after ${asked.at[1]! - asked.at[0]!} ms, not the 1 ms backoff`);
    assert.deepEqual(first.done, [[true], [true]]);

    const tooLong = mockSender(() => ({ status: 'retryable', code: 'RESOURCE_EXHAUSTED', error: 'come back tomorrow', retryAfterMs: 86_400_000 }));
    const b = setup(tooLong, 1000);
    const second = entries(2);
    await run(b.exporter, second.items);
    assert.equal(tooLong.calls.length, 1, 'no retry scheduled past the retry time');
    assert.deepEqual(second.done, [[false], [false]]);
    assert.equal(await registryValue(b.metrics, 'betrace_exporter_spans_dropped_total', { reason: 'retries_exhausted', code: 'RESOURCE_EXHAUSTED' }), 3);
  });

  it('stops splitting for a downstream that refuses every entry, and probes it again now and then', async () => {
    let refuseAll = true;
    const sender = mockSender((ids) => (refuseAll || ids.includes(21) ? { status: 'failure', code: 'INTERNAL', error: 'broken', payloadSpecific: true } : { status: 'success' }));
    const { exporter, metrics, lines } = setup(sender, 60_000, 200);
    const batches = Array.from({ length: 5 }, (_, b) => entries(4, b * 4));
    for (const b of batches) await run(exporter, b.items, false);
    assert.deepEqual(sender.calls.map((ids) => ids.length), [4, 2, 1, 1, 2, 1, 1, ...[4, 2, 1, 1, 2, 1, 1], ...[4, 2, 1, 1, 2, 1, 1], 4, 4], 'three batches split, then dropped whole');
    assert.deepEqual(batches.flatMap((b) => b.done), Array.from({ length: 20 }, () => [false]), 'each entry dropped once');
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { reason: 'rejected', code: 'INTERNAL' }), batches.flatMap((b) => b.items).reduce((n, i) => n + i.spanCount, 0));
    assert.equal(exporter.delivering, false, 'downstream takes nothing');
    assert.ok(lines.some((l) => /refused every entry/.test(String(l.msg))), 'said once');

    // Downstream recovers but for one poison entry: after the probe interval, a refused batch is split again.
    refuseAll = false;
    await new Promise((r) => setTimeout(r, 250));
    const calls = sender.calls.length;
    const probe = entries(4, 20); // 21 is poison
    await run(exporter, probe.items, false);
    assert.deepEqual(sender.calls.slice(calls), [[20, 21, 22, 23], [20, 21], [20], [21], [22, 23]]);
    assert.deepEqual(probe.done, [[true], [false], [true], [true]]);
    const next = entries(4, 18); // 21 again: split at once, no longer dropped whole
    await run(exporter, next.items);
    assert.deepEqual(next.done, [[true], [true], [true], [false]]);
    assert.equal(exporter.delivering, true);
  });
});
