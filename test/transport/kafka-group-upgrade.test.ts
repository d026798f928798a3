/**
 * Upgrade: a consumer group first run by kafkajs (the classic protocol, offsets
 * committed by hand, as betrace's workers and forwarders did before) is taken
 * over by the transport's consumer on the KIP-848 `consumer` protocol once the
 * old members are gone: it starts at the committed offsets, so nothing is read
 * twice and nothing is skipped. kafkajs plays the old version here.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { KafkaTransport } from '../../src/transport/kafka.ts';
import type { ConsumedRecord, TraceRecord } from '../../src/transport/transport.ts';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';

describe('a consumer group moving from kafkajs to the transport', () => {
  it('starts at the offsets the classic group committed: nothing read twice, nothing skipped', async (t) => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('upgrade');
    const config = parseConfig(stringify({ transport: { kind: 'kafka', partitions: 3, kafka: kafkaTestConfig(brokers, prefix) } }), { source: 'test', env: {}, baseDir: '.' });
    const kafkaConfig = config.transport.kafka;
    assert.equal(kafkaConfig.groupProtocol, 'consumer', 'the default protocol');
    const transport = new KafkaTransport({ config: kafkaConfig, partitions: 3, partitioner: 'sarama', retryAfterMs: 1000, metrics: createMetrics(), logger: createLogger('warn') });
    await transport.prepare();

    const producer = transport.createProducer();
    await producer.start();
    const records: TraceRecord[] = Array.from({ length: 60 }, (_, i) => {
      const traceId = randomBytes(16).toString('hex');
      return { traceId, payload: paddedRequest(`svc-${i}`, [[traceId, randomBytes(8).toString('hex')]]), spanCount: 1, timestampMs: Date.now() };
    });
    assert.deepEqual(await producer.send(records), { status: 'success' });
    await producer.shutdown();

    // The old version: a kafkajs consumer in the classic protocol handles 30 records and commits each.
    const group = kafkaConfig.workerGroup;
    const old = new Kafka({ clientId: 'old-betrace', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 500 });
    const handledBefore = new Set<string>();
    await old.connect();
    await old.subscribe({ topic: kafkaConfig.spansTopic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      old
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (handledBefore.size >= 30) return;
            handledBefore.add(`${partition}:${message.offset}`);
            await old.commitOffsets([{ topic: kafkaConfig.spansTopic, partition, offset: String(BigInt(message.offset) + 1n) }]);
            if (handledBefore.size === 30) resolve();
          },
        })
        .catch(reject);
    });
    await old.disconnect();

    // The new version joins the (now empty) group on the consumer protocol.
    const delivered: ConsumedRecord[] = [];
    const consumer = transport.createConsumer(group, {
      onBatch: (partition, batch) => {
        for (const r of batch) {
          delivered.push(r);
          consumer.ack(partition, r.offset);
        }
        return Promise.resolve();
      },
    });
    t.after(() => consumer.shutdown());
    await consumer.start();
    const deadline = Date.now() + 30_000;
    while (delivered.length < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500)); // anything read twice would arrive meanwhile
    const keys = delivered.map((r) => `${r.partition}:${r.offset}`);
    assert.equal(new Set(keys).size, keys.length, 'no record delivered twice');
    assert.deepEqual(keys.filter((k) => handledBefore.has(k)), [], 'nothing the old group committed is read again');
    assert.equal(delivered.length, 30, 'every record the old group had not handled is read');
    assert.deepEqual(new Set(delivered.map((r) => r.traceId)).size + handledBefore.size, 60);
  });
});
