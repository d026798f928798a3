/**
 * The compacted rules topic: key = rule id, value = the stored rule as JSON,
 * null = deleted. Every process (API, workers) reads it in full at start, then
 * follows it, with a consumer group of its own that never commits (so each
 * process always reads the whole topic) and is deleted at shutdown.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from '../telemetry/logger.ts';
import type { RuleRegistry } from '../worker/rule-registry.ts';
import { applyStoredRule, type RuleStore, type StoredRule } from '../worker/rule-store.ts';

export class KafkaRuleStore implements RuleStore {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #registry: RuleRegistry;
  readonly #logger: Logger;
  readonly #group = `betrace-rules-${randomUUID()}`;
  readonly #entries = new Map<string, StoredRule>();
  #producer: Producer | undefined;
  #consumer: Consumer | undefined;
  #stopped = false;
  /** Highest offset applied per partition. */
  readonly #applied = new Map<number, bigint>();

  constructor(options: { kafka: Kafka; topic: string; registry: RuleRegistry; logger: Logger }) {
    this.#kafka = options.kafka;
    this.#topic = options.topic;
    this.#registry = options.registry;
    this.#logger = options.logger;
  }

  get(id: string): StoredRule | undefined {
    return this.#entries.get(id);
  }

  #apply(key: string, value: Buffer | null): void {
    if (value === null) {
      this.#entries.delete(key);
      applyStoredRule(this.#registry, key, undefined, this.#logger);
      return;
    }
    try {
      const entry = JSON.parse(value.toString('utf8')) as StoredRule;
      const current = this.#entries.get(key);
      if (current !== undefined && current.version > entry.version && current.kind === entry.kind) return;
      this.#entries.set(key, entry);
      applyStoredRule(this.#registry, key, entry, this.#logger);
    } catch (err) {
      this.#logger.error({ ruleId: key, err }, 'rules topic: unreadable record ignored');
    }
  }

  /** Reads the topic up to its end as of now, then keeps following it. */
  async start(): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.#topic).finally(() => admin.disconnect());
    this.#producer = this.#kafka.producer({ allowAutoTopicCreation: false });
    await this.#producer.connect();
    const consumer = this.#kafka.consumer({
      groupId: this.#group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      retry: { retries: 10, restartOnFailure: () => Promise.resolve(!this.#stopped) },
    });
    this.#consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [this.#topic], fromBeginning: true });
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    const target = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
    const check = () => {
      for (const [p, high] of target) if (high > 0n && (this.#applied.get(p) ?? -1n) + 1n < high) return;
      caughtUp();
    };
    check();
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ partition, message }) => {
        this.#apply(message.key?.toString('utf8') ?? '', message.value);
        this.#applied.set(partition, BigInt(message.offset));
        check();
        return Promise.resolve();
      },
    });
    const timeout = setTimeout(() => {
      this.#logger.warn({ topic: this.#topic }, 'rules topic not read to its end within 30 s: continuing');
      caughtUp();
    }, 30_000);
    await ready;
    clearTimeout(timeout);
  }

  async put(entry: StoredRule): Promise<void> {
    await this.#producer!.send({ topic: this.#topic, acks: -1, messages: [{ key: entry.id, value: JSON.stringify(entry) }] });
    this.#apply(entry.id, Buffer.from(JSON.stringify(entry)));
  }

  async remove(id: string): Promise<void> {
    await this.#producer!.send({ topic: this.#topic, acks: -1, messages: [{ key: id, value: null }] });
    this.#apply(id, null);
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    await this.#consumer?.disconnect();
    await this.#producer?.disconnect();
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
