/**
 * Fault, Kafka mode: a Collector's own Kafka exporter writes records betrace never
 * validated, three of them with a field number 0 inside a ResourceSpans, which a Go
 * protobuf decoder refuses. The forwarder sends them downstream (a real OpenTelemetry
 * Collector) merged with 40 valid records: all 120 valid spans arrive, the 9 spans of
 * the poison records are dropped and counted with the status the Collector answered.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { withFieldZero } from '../helpers/poison-requests.ts';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { startOtelCollector } from '../helpers/otelcol.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';

describe('Kafka records a downstream decoder refuses', () => {
  it('cost no other record its spans', async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('poison');
    const sink = await startOtlpSink();
    const collector = await startOtelCollector({ exportTo: sink.url });
    const spansTopic = `${prefix}.spans`;
    const betrace = await startTestPipeline(
      {
        transport: {
          kind: 'kafka',
          partitions: 4,
          kafka: kafkaTestConfig(brokers, prefix),
        },
        downstream: { endpoint: collector.url, batch_timeout: '200ms' },
      },
      { roles: ['forwarder', 'api'] },
    );
    const kafka = new Kafka({ clientId: 'fake-collector', brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const valid = new Set<string>();
      const messages: Array<{ key: string; value: Buffer }> = [];
      for (let i = 0; i < 43; i++) {
        const traceId = randomBytes(16).toString('hex');
        const ids = Array.from({ length: 3 }, () => [traceId, randomBytes(8).toString('hex')] as const);
        const request = paddedRequest(`collector-client-${i}`, ids);
        const poison = i % 15 === 5; // 5, 20, 35
        if (!poison) for (const [t, s] of ids) valid.add(`${t}/${s}`);
        messages.push({ key: traceId, value: poison ? withFieldZero(request) : request });
      }
      assert.equal(valid.size, 120);
      await producer.send({ topic: spansTopic, acks: -1, messages });
      await sink.waitFor((spans) => spans.length >= 120, 60_000, 'the 120 valid spans');
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total')) >= 9, 20_000, 'the poison spans counted');
      await new Promise((r) => setTimeout(r, 500)); // a late duplicate would show
      assert.deepEqual(new Set(sink.spans.map((s) => s.key)), valid, 'exactly the valid spans arrived');
      assert.equal(sink.spans.length, 120, 'each once');
      assert.equal(
        await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder', reason: 'rejected', code: 'INTERNAL' }),
        9,
      );
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total'), 9, 'nothing else dropped');
      assert.ok(
        betrace.logs.some((l) => /"code":"INTERNAL"/.test(l) && /illegal field=0/.test(l) && /dropped/.test(l)),
        'a warning names what the Collector answered',
      );
    } finally {
      await producer.disconnect();
      await betrace.stop();
      await collector.close();
      await sink.close();
    }
  });
});
