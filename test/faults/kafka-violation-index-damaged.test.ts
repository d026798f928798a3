/**
 * Fault: records in the violations topic that are not violation records (another
 * writer, a bug, a hand-made record). The API's index in Kafka mode skips them with
 * a warning and never serves them, and a time-filtered query still answers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '../../src/telemetry/logger.ts';
import { KafkaViolationIndex } from '../../src/transport/kafka-violation-index.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';

function record(n: number): Record<string, unknown> {
  return {
    violation_id: `v-${n}`,
    rule_id: 'r',
    rule_name: 'r',
    severity: 'low',
    tags: [],
    message: 'm',
    trace_id: n.toString(16).padStart(32, '0'),
    root_span_id: n.toString(16).padStart(16, '0'),
    span_ids: [n.toString(16).padStart(16, '0')],
    witness_count: 1,
    span_count: 1,
    partial: false,
    root_missing: false,
    start_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(n)),
    end_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(n) + 10n),
    evaluated_at_ms: 1_700_000_000_000 + n,
  };
}

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
      JSON.stringify(record(1)),
      JSON.stringify({ fake: true }),
      JSON.stringify({ ...record(2), start_time_unix_nano: 'soon' }),
      '{"violation_id": "torn',
      JSON.stringify([record(3)]),
      JSON.stringify(record(4)),
    ];
    await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: `k${i}`, value })) });
    await producer.disconnect();

    const lines: string[] = [];
    const logger = createLogger('warn', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const index = new KafkaViolationIndex({ kafka: new Kafka({ clientId: 'test-index', brokers, logLevel: logLevel.NOTHING }), topic, logger });
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
