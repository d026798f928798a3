/**
 * Fault (Kafka): a client whose clock is 2 hours ahead. The broker refuses records
 * timestamped more than message.timestamp.after.max.ms (1 h by default in Kafka
 * 4.x) in the future; a record's timestamp is therefore the earliest span start
 * clamped to the receive time. The request is accepted, the future span reaches
 * the worker (its violation arrives) and goes downstream unchanged, next to a
 * trace of the same request with a correct clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import { Kafka, logLevel } from 'kafkajs';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { metricValue, startTestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const HOUR_MS = 3_600_000;

describe('Kafka record timestamps', () => {
  it('accepts spans 2 h in the future: clamped record timestamp, span unchanged', async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('future');
    const dir = mkdtempSync(join(tmpdir(), 'betrace-future-'));
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: no-errors\n    severity: high\n    condition: not trace.has(*).where(span:status == error)\n');
    const sink = await startOtlpSink();
    const betrace = await startTestPipeline({
      transport: {
        kind: 'kafka',
        partitions: 2,
        kafka: kafkaTestConfig(brokers, prefix),
      },
      downstream: { endpoint: sink.url, batch_timeout: '20ms' },
      worker: { trace_idle_timeout: '500ms' },
      rules: { paths: [join(dir, 'rules.yaml')] },
    });
    try {
      const app = createTestApp({ service: 'skewed', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
      const sentAt = Date.now();
      const future = app.tracer().startSpan('skewed.op', { startTime: sentAt + 2 * HOUR_MS });
      future.setStatus({ code: SpanStatusCode.ERROR });
      future.end(sentAt + 2 * HOUR_MS + 5);
      const now = app.tracer().startSpan('punctual.op');
      now.setStatus({ code: SpanStatusCode.ERROR });
      now.end();
      await app.flush();
      await app.shutdown();
      const futureTrace = future.spanContext().traceId;
      const nowTrace = now.spanContext().traceId;

      await sink.waitFor((s) => s.filter((x) => x.name === 'betrace.violation').length >= 2, 30_000, 'both violations');
      const violated = sink.spans.filter((x) => x.name === 'betrace.violation').map((x) => x.traceId);
      assert.deepEqual(new Set(violated), new Set([futureTrace, nowTrace]));
      await sink.waitFor((s) => s.some((x) => x.name === 'skewed.op'), 10_000, 'the future span forwarded');
      const forwarded = sink.spans.find((x) => x.name === 'skewed.op')!;
      assert.equal(String(forwarded.span.startTimeUnixNano), String(BigInt(sentAt + 2 * HOUR_MS) * 1_000_000n), 'the span is not changed');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_requests_total', { code: 'UNAVAILABLE' }), 0);

      // The record of the future trace carries the receive time, not its span's start.
      const kafka = new Kafka({ clientId: 'future-check', brokers, logLevel: logLevel.NOTHING });
      const consumer = kafka.consumer({ groupId: `${prefix}-check` });
      await consumer.connect();
      await consumer.subscribe({ topic: `${prefix}.spans`, fromBeginning: true });
      const stamps = new Map<string, number>();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('records not read within 20 s')), 20_000);
        void consumer.run({
          eachMessage: ({ message }) => {
            stamps.set(String(message.key), Number(message.timestamp));
            if (stamps.has(futureTrace) && stamps.has(nowTrace)) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        });
      });
      await consumer.disconnect();
      const stamp = stamps.get(futureTrace)!;
      assert.ok(stamp >= sentAt - 60_000 && stamp <= Date.now(), `record timestamp ${stamp} is the receive time`);
      console.log(`future span start ${sentAt + 2 * HOUR_MS}, record timestamp ${stamp} (sent at ${sentAt})`);
    } finally {
      await betrace.stop();
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
