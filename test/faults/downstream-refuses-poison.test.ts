/**
 * Fault: a few entries downstream cannot take, among many valid ones, merged into
 * one export. Downstream is a real OpenTelemetry Collector (Go protobuf decoding)
 * in front of a test sink. The exporter splits each refused export back into its
 * entries, so every valid span arrives and only the refused entries are dropped,
 * counted with the status downstream answered and logged with its reason.
 *
 * Forwarder: records put directly on the transport, as a Collector's own Kafka
 * exporter may write records betrace never validated; a field number 0 inside a
 * ResourceSpans is refused by the Go decoder (INTERNAL, "illegal field=0").
 * Violations: a rule name holding a lone surrogate becomes invalid UTF-8 in the
 * violation span, which the backend behind the Collector refuses.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Forwarder, QueuedExporter, createOtlpGrpcSender } from '../../src/exporter/index.ts';
import type { DownstreamConfig } from '../../src/config/index.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createEmbeddedTransport } from '../../src/transport/embedded.ts';
import type { Transport, TraceRecord } from '../../src/transport/transport.ts';
import type { ViolationRecord } from '../../src/violations/violation-record.ts';
import { violationSpansPayload } from '../../src/violations/violation-span.ts';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { withFieldZero } from '../helpers/poison-requests.ts';
import { startOtelCollector, type OtelCollector } from '../helpers/otelcol.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { capturedLogger, registryValue } from '../helpers/telemetry.ts';

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function downstream(endpoint: string): DownstreamConfig {
  return {
    endpoint,
    headers: {},
    timeoutMs: 10_000,
    compression: 'none',
    maxQueueSpans: 100_000,
    maxBatchSpans: 10_000,
    batchTimeoutMs: 50,
    maxRetryTimeMs: 30_000,
  };
}

describe('a downstream refusing a few entries of a merged export', () => {
  let sink: OtlpSink;
  let collector: OtelCollector;

  before(async () => {
    sink = await startOtlpSink();
    collector = await startOtelCollector({ exportTo: sink.url });
  });

  after(async () => {
    await collector.close();
    await sink.close();
  });

  it('forwarder: every valid span arrives, only the poison records are dropped and counted, every record is acknowledged', async () => {
    sink.spans.length = 0;
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const embedded = createEmbeddedTransport({ partitions: 4, partitioner: 'murmur2', maxQueuedBytes: 16 << 20, retryAfterMs: 100 });
    // The records the forwarder acknowledges: everything handled, delivered or dropped, is acknowledged.
    const acked = new Map<number, Set<bigint>>();
    const transport: Transport = {
      kind: embedded.kind,
      partitions: embedded.partitions,
      createProducer: () => embedded.createProducer(),
      createConsumer(group, callbacks) {
        const consumer = embedded.createConsumer(group, callbacks);
        return Object.assign(Object.create(consumer) as typeof consumer, {
          ack: (partition: number, offset: bigint) => {
            if (!acked.has(partition)) acked.set(partition, new Set());
            acked.get(partition)!.add(offset);
            consumer.ack(partition, offset);
          },
          start: () => consumer.start(),
          shutdown: () => consumer.shutdown(),
        });
      },
    };
    const exporter = new QueuedExporter({
      name: 'forwarder',
      sender: createOtlpGrpcSender(downstream(collector.url)),
      config: downstream(collector.url),
      metrics,
      logger,
      whenFull: 'wait_while_delivering',
    });
    const forwarder = new Forwarder({ transport, exporter, logger, group: 'forwarder' });
    await forwarder.start();
    const producer = transport.createProducer();
    try {
      const records: TraceRecord[] = [];
      const valid = new Set<string>();
      const poisonAt = new Set([5, 20, 35]);
      for (let i = 0; i < 43; i++) {
        const traceId = hex(16);
        const ids = Array.from({ length: 3 }, () => [traceId, hex(8)] as const);
        const request = paddedRequest(`client-${i}`, ids);
        if (!poisonAt.has(i)) for (const [t, s] of ids) valid.add(`${t}/${s}`);
        records.push({ traceId, payload: poisonAt.has(i) ? withFieldZero(request) : request, spanCount: 3, timestampMs: Date.now() });
      }
      assert.equal(valid.size, 120);
      assert.equal((await producer.send(records)).status, 'success');
      await sink.waitFor((spans) => spans.length >= 120, 20_000, 'the 120 valid spans');
      await waitUntil(async () => (await registryValue(metrics, 'betrace_exporter_spans_dropped_total')) >= 9, 10_000, 'the poison spans counted');
      await exporter.flush();
      await new Promise((r) => setTimeout(r, 200)); // a late duplicate would show
      assert.deepEqual(new Set(sink.spans.map((s) => s.key)), valid, 'exactly the valid spans arrived');
      assert.equal(sink.spans.length, 120, 'each once');
      assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder', reason: 'rejected', code: 'INTERNAL' }), 9);
      assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total'), 9, 'nothing else dropped');
      assert.equal(await registryValue(metrics, 'betrace_exporter_spans_sent_total', { exporter: 'forwarder' }), 120);
      const line = lines.find((l) => l.code === 'INTERNAL' && /dropped/.test(String(l.msg)));
      assert.ok(line, `a log line for the drop: ${JSON.stringify(lines)}`);
      assert.match(String(line.error), /illegal field=0/, 'the line names the reason downstream gave');
    } finally {
      await forwarder.shutdown();
    }
    // Every record acknowledged (the transport's low watermark then passes each partition's last record).
    for (const [p, log] of embedded.logs.entries()) {
      assert.deepEqual([...(acked.get(p) ?? [])].sort((a, b) => Number(a - b)), Array.from({ length: Number(log.next) }, (_, i) => BigInt(i)), `partition ${p}`);
    }
  });

  it('violations: every violation span of the other rules arrives, those of the bad rule name are dropped', async () => {
    sink.spans.length = 0;
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const exporter = new QueuedExporter({
      name: 'violations',
      sender: createOtlpGrpcSender(downstream(collector.url)),
      config: downstream(collector.url),
      metrics,
      logger,
    });
    await exporter.start();
    const done: boolean[][] = [];
    const expected = new Set<string>();
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < 40; i++) {
      const bad = i % 13 === 7; // 3 of 40
      const record: ViolationRecord = {
        violation_id: hex(16),
        rule_id: bad ? 'api-rule' : `rule-${i % 4}`,
        rule_name: bad ? 'payments \ud800 checked' : `rule ${i % 4}`,
        severity: 'high',
        tags: [],
        message: 'violated',
        trace_id: hex(16),
        root_span_id: hex(8),
        span_ids: [],
        witness_count: 1,
        span_count: 3,
        partial: false,
        root_missing: false,
        start_time_unix_nano: now.toString(),
        end_time_unix_nano: (now + 1000n).toString(),
        evaluated_at_ms: Date.now(),
      };
      if (!bad) expected.add(record.violation_id);
      done.push([]);
      exporter.enqueue({ payload: violationSpansPayload([record]), spanCount: 1, onDone: (delivered) => done[i]!.push(delivered) });
    }
    await exporter.flush();
    await exporter.shutdown();
    const arrived = sink.spans.map((s) => s.attributes['betrace.violation.id']);
    assert.deepEqual(new Set(arrived), expected, 'the 37 violation spans of the other rules arrived');
    assert.equal(arrived.length, 37);
    assert.deepEqual(done, Array.from({ length: 40 }, (_, i) => [i % 13 !== 7]), 'each onDone once: dropped for the bad rule name only');
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { exporter: 'violations', reason: 'rejected' }), 3);
    const line = lines.find((l) => l.exporter === 'violations' && /dropped/.test(String(l.msg)));
    assert.ok(line, `a log line for the drop: ${JSON.stringify(lines)}`);
    // The backend behind the Collector cannot decode the span; the Collector passes its refusal on as UNKNOWN.
    assert.equal(line.code, 'UNKNOWN');
    assert.match(String(line.error), /Permanent error/);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_dropped_total', { code: 'UNKNOWN' }), 3);
  });
});
