/**
 * Kafka errors are recognised by the code the broker answers with, not by message text:
 * a topic created twice (TOPIC_ALREADY_EXISTS, which betrace's topic preparation takes as
 * done) and a record larger than the topic's max.message.bytes (which the violation ledger
 * answers by writing smaller produce calls), each provoked on a real broker.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Admin, Producer, describeKafkaError, hasKafkaErrorCode } from '../../src/kafka/client.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';

describe('Kafka error codes on a real broker', () => {
  let brokers: string[] = [];
  let admin: Admin | undefined;
  before(async () => {
    brokers = (await getTestKafka()).brokers;
    admin = new Admin({ clientId: 'betrace-test-error-codes', bootstrapBrokers: brokers });
  });
  after(async () => {
    await admin?.close();
  });

  it('a topic created twice is TOPIC_ALREADY_EXISTS', async () => {
    const topic = uniqueName('error-codes-twice');
    await admin!.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    const err = await admin!.createTopics({ topics: [topic], partitions: 1, replicas: 1 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err !== undefined, 'the second create failed');
    assert.equal(hasKafkaErrorCode(err, 'TOPIC_ALREADY_EXISTS'), true, describeKafkaError(err));
    assert.equal(hasKafkaErrorCode(err, 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'), false);
  });

  it('a record larger than the topic takes is MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE', async () => {
    const topic = uniqueName('error-codes-large');
    await admin!.createTopics({ topics: [topic], partitions: 1, replicas: 1, configs: [{ name: 'max.message.bytes', value: '1024' }] });
    const producer = new Producer({ clientId: 'betrace-test-error-codes', bootstrapBrokers: brokers, retries: 0 });
    try {
      const err = await producer.send({ messages: [{ topic, value: Buffer.alloc(64 * 1024, 0x61) }], acks: -1 }).then(() => undefined, (e: unknown) => e);
      assert.ok(err !== undefined, 'the produce failed');
      assert.equal(hasKafkaErrorCode(err, 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'), true, describeKafkaError(err));
      assert.equal(hasKafkaErrorCode(err, 'TOPIC_ALREADY_EXISTS'), false);
    } finally {
      await producer.close();
    }
  });
});
