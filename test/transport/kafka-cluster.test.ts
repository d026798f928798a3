/**
 * The 3-node test cluster (test/helpers/kafka-cluster.ts) holds what the Kafka acceptance
 * tests rely on: with replication factor 3 and min.insync.replicas 2, a `kill -9` of the
 * node leading the most partitions leaves acks=all producing possible again within
 * seconds (new leaders, an ISR of the two survivors), loses no acknowledged record, and
 * the killed node, restarted, rejoins every ISR.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Admin, Consumer, ProduceAcks, Producer, stringDeserializers, stringSerializers } from '@platformatic/kafka';
import { startKafkaCluster } from '../helpers/kafka-cluster.ts';
import type { KafkaCluster } from '../helpers/kafka-cluster.ts';
import { uniqueName } from '../helpers/kafka.ts';

const PARTITIONS = 6;
/** Functional deadlines: how long a failover or a rejoin may take before the test fails. */
const ELECTION_DEADLINE_MS = 30_000;
const REJOIN_DEADLINE_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An error's message with those of the errors it aggregates (the client nests the broker's error codes there). */
function describeError(err: unknown, depth = 0): string {
  if (!(err instanceof Error)) return String(err);
  const inner = err instanceof AggregateError && depth < 3
    ? [...new Set(err.errors.map((e: unknown) => describeError(e, depth + 1)))]
    : [];
  return inner.length > 0 ? `${err.message} [${inner.join('; ')}]` : err.message;
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
async function eventually<T>(what: string, deadlineMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last === undefined ? '' : `: ${describeError(last)}`;
      throw new Error(`${what} did not happen within ${deadlineMs} ms${why}`, { cause: last });
    }
    await sleep(200);
  }
}

describe('3-node Kafka cluster', () => {
  it('elects new leaders after kill -9 of the busiest node, loses no acks=all record, and takes the node back into the ISR', async (t) => {
    const started = Date.now();
    const cluster: KafkaCluster = await startKafkaCluster({ ...(process.env.BETRACE_KAFKA_LOG_DIR ? { logDir: process.env.BETRACE_KAFKA_LOG_DIR } : {}) });
    t.after(() => cluster.destroy());
    t.diagnostic(`cluster started in ${Date.now() - started} ms`);

    const topic = uniqueName('cluster');
    const admin = new Admin({ clientId: 'cluster-test-admin', bootstrapBrokers: cluster.brokers });
    t.after(() => admin.close());
    await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 3 });
    const initial = await eventually('every partition led, with 3 in-sync replicas', ELECTION_DEADLINE_MS, async () => {
      const parts = await cluster.partitions(topic);
      return parts.length === PARTITIONS && parts.every((p) => p.leader >= 0 && p.isr.length === 3) ? parts : undefined;
    });
    assert.ok(initial.every((p) => p.replicas.length === 3), 'every partition has 3 replicas');

    const producer = new Producer({
      clientId: 'cluster-test-producer',
      bootstrapBrokers: cluster.brokers,
      serializers: stringSerializers,
      retries: 2,
      retryDelay: 200,
      connectTimeout: 1000,
    });
    t.after(() => producer.close());
    const acked = new Set<string>();
    /** One record to every partition with acks=all; the values count as acknowledged only if the whole send succeeds. */
    const produceRound = async (label: string): Promise<void> => {
      const messages = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, value: `${label}/p${partition}` }));
      // acks on each send(): @platformatic/kafka 2.12's send() ignores the producer's own
      // `acks` option and asks for the leader's only (acks=1) unless the producer is idempotent.
      await producer.send({ messages, acks: ProduceAcks.ALL });
      for (const m of messages) acked.add(m.value);
    };

    for (let i = 0; i < 20; i++) await produceRound(`before-${i}`);

    const victim = await cluster.nodeLeadingMost(topic);
    const led = [...(await cluster.leaders(topic))].filter(([, leader]) => leader === victim.id).map(([p]) => p);
    t.diagnostic(`killing node ${victim.id}, leader of partitions ${led.join(', ')}`);
    const killedAt = Date.now();
    await victim.kill();

    // acks=all succeeds again once every partition has a live leader and an ISR of two
    // (min.insync.replicas 2); until then a round may fail, and only a whole success counts.
    let failedRounds = 0;
    let round = 0;
    await eventually('an acks=all write to every partition after the kill', ELECTION_DEADLINE_MS, async () => {
      try {
        await produceRound(`failover-${round++}`);
        return true;
      } catch (err) {
        failedRounds++;
        throw err;
      }
    });
    t.diagnostic(`acks=all produce to all ${PARTITIONS} partitions succeeded ${Date.now() - killedAt} ms after the kill (${failedRounds} failed rounds)`);
    // The metadata of the node asked may trail the leaders' own view by a moment.
    const survivors = cluster.nodes.map((n) => n.id).filter((id) => id !== victim.id);
    const afterKill = await eventually('metadata showing the failover', ELECTION_DEADLINE_MS, async () => {
      const parts = await cluster.partitions(topic);
      return parts.every((p) => p.leader >= 0 && p.isr.length === survivors.length) ? parts : undefined;
    });
    for (const [partition, p] of afterKill.entries()) {
      assert.notEqual(p.leader, victim.id, `partition ${partition} is no longer led by the killed node`);
      assert.deepEqual([...p.isr].sort((a, b) => a - b), survivors, `partition ${partition}: the ISR is the two live nodes`);
    }
    for (let i = 0; i < 20; i++) await produceRound(`after-${i}`);

    const restartAt = Date.now();
    await victim.start();
    await eventually(`node ${victim.id} back in every ISR`, REJOIN_DEADLINE_MS, async () => {
      const parts = await cluster.partitions(topic);
      return parts.every((p) => p.isr.includes(victim.id)) ? true : undefined;
    });
    t.diagnostic(`node ${victim.id} restarted and back in every ISR after ${Date.now() - restartAt} ms`);
    for (let i = 0; i < 5; i++) await produceRound(`rejoined-${i}`);

    // Every acknowledged record reads back (a record of a failed round may be there too).
    const consumer = new Consumer({
      clientId: 'cluster-test-consumer',
      groupId: uniqueName('cluster-readback'),
      groupProtocol: 'consumer',
      bootstrapBrokers: cluster.brokers,
      deserializers: stringDeserializers,
    });
    t.after(() => consumer.close(true));
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const seen = new Set<string>();
    const missing = (): string[] => [...acked].filter((v) => !seen.has(v));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read back ${seen.size} records; ${missing().length} acknowledged ones missing, e.g. ${missing().slice(0, 5).join(', ')}`)), 30_000);
      stream.on('error', reject);
      stream.on('data', (message) => {
        seen.add(message.value);
        if (missing().length === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await stream.close();
    assert.deepEqual(missing(), []);
    assert.equal(acked.size, PARTITIONS * (20 + 1 + 20 + 5));
  });
});
