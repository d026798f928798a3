/**
 * Reads a whole topic, then follows it: a consumer group of its own (never
 * committing, so every start reads from the beginning) deleted when stopped.
 * start() resolves once the topic was read up to its end as of the start, or
 * after `catchUpTimeoutMs`. Used for the rules topic and the violations topic,
 * which every process that needs them reads in full.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../telemetry/logger.ts';
import { withAdmin } from './kafka.ts';

export type TopicRecordHandler = (key: string, value: Buffer | null, partition: number, offset: string) => void;

export class TopicFollower {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #group: string;
  readonly #onRecord: TopicRecordHandler;
  readonly #logger: Logger;
  #consumer: Consumer | undefined;
  #stopped = false;

  constructor(options: { kafka: Kafka; topic: string; groupPrefix: string; onRecord: TopicRecordHandler; logger: Logger }) {
    this.#kafka = options.kafka;
    this.#topic = options.topic;
    this.#group = `${options.groupPrefix}-${randomUUID()}`;
    this.#onRecord = options.onRecord;
    this.#logger = options.logger;
  }

  async start(catchUpTimeoutMs = 30_000): Promise<void> {
    const ends = await withAdmin(this.#kafka, (admin) => admin.fetchTopicOffsets(this.#topic));
    const consumer = this.#kafka.consumer({
      groupId: this.#group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      // After a crash kafkajs restarts the consumer on its own; never once stopped.
      retry: { retries: 10, restartOnFailure: () => Promise.resolve(!this.#stopped) },
    });
    this.#consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    const target = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
    const applied = new Map<number, bigint>();
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    const check = () => {
      for (const [p, high] of target) if (high > 0n && (applied.get(p) ?? -1n) + 1n < high) return;
      caughtUp();
    };
    check();
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        this.#onRecord(message.key?.toString('utf8') ?? '', message.value, partition, message.offset);
        applied.set(partition, BigInt(message.offset));
        check();
        return Promise.resolve();
      },
    });
    const timeout = setTimeout(() => {
      this.#logger.warn({ topic: this.#topic }, `topic not read to its end within ${catchUpTimeoutMs / 1000} s: continuing`);
      caughtUp();
    }, catchUpTimeoutMs);
    await ready;
    clearTimeout(timeout);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#consumer?.disconnect();
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups([this.#group]);
    } catch {
      // The group expires on its own.
    } finally {
      await admin.disconnect();
    }
  }
}
