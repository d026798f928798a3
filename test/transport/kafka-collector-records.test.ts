/**
 * Records written the way the OpenTelemetry Collector's Kafka exporter writes
 * them (encoding otlp_proto, partition_traces_by_id: key = hex trace id, value =
 * ExportTraceServiceRequest, Sarama-compatible FNV-1a partitioner) are consumed
 * like betrace's own: trace ids come from the value, never the key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { fnv1a32 } from '../../src/transport/partitioner.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline } from '../helpers/pipeline.ts';

function traceRequest(traces: Array<{ traceId: Buffer; names: string[] }>): Buffer {
  const now = BigInt(Date.now()) * 1_000_000n;
  return Buffer.from(
    ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'collector-app' } }] },
            scopeSpans: [
              {
                scope: { name: 'collector-test' },
                spans: traces.flatMap((t) =>
                  t.names.map((name) => ({
                    traceId: t.traceId,
                    spanId: randomBytes(8),
                    name,
                    startTimeUnixNano: now.toString(),
                    endTimeUnixNano: (now + 1000n).toString(),
                  })),
                ),
              },
            ],
          },
        ],
      }),
    ).finish(),
  );
}

describe('Collector-written records', () => {
  it('are consumed by trace id from the value, on the partitions the Collector chose', async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('collector');
    const sink = await startOtlpSink();
    const dir = mkdtempSync(join(tmpdir(), 'betrace-collector-'));
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: no-forbidden\n    severity: high\n    condition: not trace.has(forbidden.op)\n');
    const kafkaSettings = {
      brokers,
      spans_topic: `${prefix}.spans`,
      rules_topic: `${prefix}.rules`,
      violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`,
      worker_group: `${prefix}-w`,
      forwarder_group: `${prefix}-f`,
      session_timeout: '6s',
    };
    const betrace = await startTestPipeline(
      {
        transport: { kind: 'kafka', partitions: 4, kafka: kafkaSettings },
        downstream: { endpoint: sink.url, batch_timeout: '20ms' },
        worker: { trace_idle_timeout: '500ms' },
        rules: { paths: [join(dir, 'rules.yaml')] },
      },
      { roles: ['worker', 'forwarder', 'api'] },
    );
    const kafka = new Kafka({ clientId: 'fake-collector', brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer({
      // Sarama's hash partitioner, written out independently of betrace's: |int32(fnv1a(key))| mod n.
      createPartitioner: () => ({ message, partitionMetadata }) => {
        const h = fnv1a32(Buffer.from(String(message.key))) | 0;
        return Math.abs(h % partitionMetadata.length);
      },
    });
    await producer.connect();
    try {
      const bad = randomBytes(16);
      const clean = randomBytes(16);
      const a = randomBytes(16);
      const b = randomBytes(16);
      await producer.send({
        topic: kafkaSettings.spans_topic,
        acks: -1,
        messages: [
          { key: bad.toString('hex'), value: traceRequest([{ traceId: bad, names: ['checkout', 'forbidden.op'] }]) },
          { key: clean.toString('hex'), value: traceRequest([{ traceId: clean, names: ['checkout', 'ok.op'] }]) },
          // Two traces in one record, and a key that is not a trace id: ids come from the value.
          { key: 'not-a-trace-id', value: traceRequest([{ traceId: a, names: ['forbidden.op'] }, { traceId: b, names: ['fine'] }]) },
        ],
      });
      await sink.waitFor((s) => s.filter((x) => x.name === 'betrace.violation').length >= 2, 60_000, 'violations');
      await sink.waitFor((s) => s.filter((x) => x.name !== 'betrace.violation').length >= 6, 30_000, 'forwarded spans');
      await new Promise((r) => setTimeout(r, 1500));
      const violated = sink.spans.filter((x) => x.name === 'betrace.violation').map((x) => x.traceId).sort();
      assert.deepEqual(violated, [bad.toString('hex'), a.toString('hex')].sort());
      assert.equal(sink.spans.filter((x) => x.name !== 'betrace.violation').length, 6);
    } finally {
      await producer.disconnect();
      await betrace.stop();
      await sink.close();
    }
  });
});
