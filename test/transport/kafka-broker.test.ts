// The real Kafka broker the transport tests rely on (test/helpers/kafka.ts), driven with
// kafkajs the way the pipeline drives it: acks=-1 produce, consumer groups with manual
// commits, admin topic creation and offset lookups by timestamp; and a private broker
// that survives stop()/start() and kill()/start() with its data.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { Admin, Consumer, Producer } from 'kafkajs';
import { getTestKafka, startKafka, uniqueName } from '../helpers/kafka.ts';
import type { KafkaBroker } from '../helpers/kafka.ts';

function client(brokers: string[]): Kafka {
  return new Kafka({
    clientId: uniqueName('kafka-broker-test'),
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100 },
  });
}

function newProducer(kafka: Kafka): Producer {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
}

interface Got {
  partition: number;
  offset: string;
  key: string;
  value: string;
}

/** Consumes with `groupId` until `count` messages arrived, committing each one explicitly. */
async function consume(kafka: Kafka, topic: string, groupId: string, count: number, timeoutMs = 30_000): Promise<Got[]> {
  const consumer: Consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  const got: Got[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumed ${got.length} of ${count} messages from ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      if (count === 0) {
        clearTimeout(timer);
        resolve();
        return;
      }
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            got.push({
              partition,
              offset: message.offset,
              key: message.key?.toString() ?? '',
              value: message.value?.toString() ?? '',
            });
            await consumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

function sum(offsets: { offset: string }[]): number {
  return offsets.reduce((acc, p) => acc + Number(p.offset), 0);
}

function refused(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), host, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(true));
  });
}

void describe('shared test Kafka broker', () => {
  let brokers: string[];
  let kafka: Kafka;
  let admin: Admin;
  let producer: Producer;
  const topic = uniqueName('broker-test');

  before(async () => {
    ({ brokers } = await getTestKafka());
    kafka = client(brokers);
    admin = kafka.admin();
    await admin.connect();
    producer = newProducer(kafka);
    await producer.connect();
  });

  after(async () => {
    await producer?.disconnect();
    await admin?.disconnect();
  });

  void test('is a loopback KRaft broker that describes itself', async () => {
    assert.ok(brokers.length > 0);
    for (const b of brokers) assert.match(b, /^127\.0\.0\.1:\d+$/);
    const cluster = await admin.describeCluster();
    assert.equal(cluster.brokers.length, 1);
    assert.equal(cluster.brokers[0]?.host, '127.0.0.1');
    assert.equal(`127.0.0.1:${cluster.brokers[0]?.port}`, brokers[0]);
    assert.ok(cluster.clusterId.length > 0);
  });

  void test('creates a 3-partition topic', async () => {
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }), true);
    // Creating it again reports "not created".
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }), false);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.deepEqual(meta.topics[0]?.partitions.map((p) => p.partitionId).sort(), [0, 1, 2]);
  });

  void test('produces with acks=-1, consumes back with a group and commits, looks offsets up by timestamp', async () => {
    const t0 = Date.now() - 60_000;
    const t1 = t0 + 30_000;
    // Batch A: 12 messages stamped t0, 4 per partition; batch B: 6 stamped t1, 2 per partition.
    const batch = (name: string, n: number, ts: number) =>
      Array.from({ length: n }, (_, i) => ({
        partition: i % 3,
        key: `${name}${i}`,
        value: JSON.stringify({ batch: name, i }),
        timestamp: String(ts),
      }));
    const resA = await producer.send({ topic, acks: -1, messages: batch('a', 12, t0) });
    const resB = await producer.send({ topic, acks: -1, messages: batch('b', 6, t1) });
    assert.deepEqual(resA.map((r) => r.errorCode), [0, 0, 0]);
    assert.deepEqual(resB.map((r) => [r.partition, r.baseOffset]).sort(), [[0, '4'], [1, '4'], [2, '4']]);

    const high = await admin.fetchTopicOffsets(topic);
    assert.deepEqual(high.map((p) => [p.partition, p.high, p.low]).sort(), [[0, '6', '0'], [1, '6', '0'], [2, '6', '0']]);

    const byTs = async (ts: number) =>
      (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).map((p) => [p.partition, p.offset]).sort();
    assert.deepEqual(await byTs(t0 - 1000), [[0, '0'], [1, '0'], [2, '0']]);
    assert.deepEqual(await byTs(t0 + 1), [[0, '4'], [1, '4'], [2, '4']]);
    assert.deepEqual(await byTs(t1), [[0, '4'], [1, '4'], [2, '4']]);
    // Past the last message kafkajs answers with the high watermark.
    assert.deepEqual(await byTs(t1 + 1), [[0, '6'], [1, '6'], [2, '6']]);

    const groupId = uniqueName('broker-test-group');
    const got = await consume(kafka, topic, groupId, 18);
    assert.equal(got.length, 18);
    assert.deepEqual(
      got.map((m) => m.key).sort(),
      [...batch('a', 12, t0), ...batch('b', 6, t1)].map((m) => m.key).sort(),
    );
    for (const m of got) {
      const { i } = JSON.parse(m.value) as { i: number };
      assert.equal(m.partition, i % 3, `message ${m.key} landed on the partition it was sent to`);
    }
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.deepEqual(
      committed[0]?.partitions.map((p) => [p.partition, p.offset]).sort(),
      [[0, '6'], [1, '6'], [2, '6']],
    );

    // The commits hold: the same group only sees what is produced afterwards.
    await producer.send({ topic, acks: -1, messages: batch('c', 3, Date.now()) });
    const more = await consume(kafka, topic, groupId, 3);
    assert.deepEqual(more.map((m) => m.key).sort(), ['c0', 'c1', 'c2']);
    assert.deepEqual(more.map((m) => m.offset), ['6', '6', '6']);
    const groups = await admin.describeGroups([groupId]);
    assert.equal(groups.groups[0]?.protocolType, 'consumer');
  });
});

void describe('private Kafka broker lifecycle', () => {
  let broker: KafkaBroker;

  before(async () => {
    broker = await startKafka();
  });

  after(async () => {
    await broker?.destroy();
  });

  void test('keeps its data across stop()/start() and kill()/start()', { timeout: 180_000 }, async () => {
    const topic = uniqueName('lifecycle');
    const address = broker.brokers[0] ?? '';

    const produce = async (prefix: string, n: number): Promise<void> => {
      const kafka = client(broker.brokers);
      const admin = kafka.admin();
      const producer = newProducer(kafka);
      try {
        await admin.connect();
        await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
        await producer.connect();
        const messages = Array.from({ length: n }, (_, i) => ({ partition: i % 3, key: `${prefix}${i}`, value: `${prefix}-${i}` }));
        await producer.send({ topic, acks: -1, messages });
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    };
    const highWatermarks = async (): Promise<number> => {
      const admin = client(broker.brokers).admin();
      await admin.connect();
      try {
        return sum((await admin.fetchTopicOffsets(topic)).map((p) => ({ offset: p.high })));
      } finally {
        await admin.disconnect();
      }
    };

    await produce('s', 9);
    assert.equal(await highWatermarks(), 9);

    await broker.stop();
    assert.equal(await refused(address), true, 'stopped broker still accepts connections');
    await broker.start();
    assert.equal(broker.brokers[0], address, 'restarted on the same port');
    assert.equal(await highWatermarks(), 9);

    await produce('k', 6);
    await broker.kill();
    assert.equal(await refused(address), true, 'killed broker still accepts connections');
    await broker.start();
    assert.equal(await highWatermarks(), 15);

    const got = await consume(client(broker.brokers), topic, uniqueName('lifecycle-group'), 15);
    assert.deepEqual(
      got.map((m) => m.value).sort(),
      [...Array.from({ length: 9 }, (_, i) => `s-${i}`), ...Array.from({ length: 6 }, (_, i) => `k-${i}`)].sort(),
    );
  });

  void test('destroy() stops the broker and removes its directory', async () => {
    const address = broker.brokers[0] ?? '';
    const dir = broker.dir;
    assert.equal(existsSync(dir), true);
    await broker.destroy();
    assert.equal(existsSync(dir), false);
    assert.equal(await refused(address), true);
    await broker.destroy(); // idempotent
    await assert.rejects(broker.start(), /destroyed/);
  });
});
