/**
 * Fault: records in the violations topic that are not violation records (another
 * writer, a bug, a hand-made record). The API's index in Kafka mode skips them with
 * a warning and never serves them, and a time-filtered query still answers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { KafkaViolationIndex } from '../../src/violations/kafka-violation-index.ts';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { violationRecord } from '../helpers/violation-records.ts';


describe('the Kafka violation index', () => {
  it('skips records that are not violation records, with a warning, and serves only the real ones', async () => {
    const { brokers } = await getTestKafka();
    const topic = `${uniqueName('violations-damaged')}.violations`;
    const kafka = new Kafka({ clientId: 'test-writer', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const values = [
      JSON.stringify(violationRecord(1, { evaluated_at_ms: 1_700_000_000_001 })),
      JSON.stringify({ fake: true }),
      JSON.stringify({ ...violationRecord(2), start_time_unix_nano: 'soon' }),
      '{"violation_id": "torn',
      JSON.stringify([violationRecord(3)]),
      JSON.stringify(violationRecord(4, { evaluated_at_ms: 1_700_000_000_004 })),
    ];
    await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: `k${i}`, value })) });
    await producer.disconnect();

    const lines: string[] = [];
    const logger = createLogger('warn', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const config = parseConfig(stringify({ transport: { kind: 'kafka', kafka: kafkaTestConfig(brokers, 'index') } }), { source: 'test', env: {}, baseDir: '.' });
    const index = new KafkaViolationIndex({ config: config.transport.kafka, topic, logger });
    await index.start();
    try {
      const served = new Set(index.query({}).violations.map((v) => v.violation_id));
      assert.deepEqual(served, new Set(['v-1', 'v-4']), 'only the two violation records are served');
      const inRange = index.query({ startTime: 1_600_000_000 });
      assert.deepEqual(new Set(inRange.violations.map((v) => v.violation_id)), new Set(['v-1', 'v-4']), 'a time-filtered query answers');
      assert.equal(lines.filter((l) => /not a violation record ignored/.test(l)).length, 3, lines.join(''));
      assert.equal(lines.filter((l) => /not JSON ignored/.test(l)).length, 1, lines.join(''));
    } finally {
      await index.shutdown();
    }
  });
});
