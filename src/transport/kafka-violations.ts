/**
 * Writes violations to the violations topic (key: violation id, value: the
 * violation as JSON), where the API builds its index from. At-least-once: a
 * repeated violation carries the same id and the index keeps one.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Component } from '../component.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import { murmur2Partition } from './partitioner.ts';
import type { ViolationRecord } from '../worker/violation-record.ts';
import type { ViolationSink } from '../worker/violation-store.ts';

export class KafkaViolationSink implements Component, ViolationSink {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #log: RateLimitedLog;
  readonly #inFlight = new Set<Promise<unknown>>();
  #pending: ViolationRecord[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { kafka: Kafka; topic: string; logger: Logger }) {
    // The Java client's partitioning of the key (as kafkajs's default), computed without kafkajs's Long arithmetic.
    this.#producer = options.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: () => ({ message, partitionMetadata }) => murmur2Partition(String(message.key), partitionMetadata.length),
    });
    this.#topic = options.topic;
    this.#log = new RateLimitedLog(options.logger);
  }

  async start(): Promise<void> {
    await this.#producer.connect();
  }

  /**
   * Batched for 50 ms (or 2000 records) into one produce call: each call costs
   * the worker's I/O thread about as much as a few dozen records, and a worker
   * finding thousands of violations a second made a hundred calls a second.
   */
  append(record: ViolationRecord): void {
    this.#pending.push(record);
    if (this.#pending.length >= 2000) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), 50);
  }

  #flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    const p = this.#producer
      .send({ topic: this.#topic, acks: -1, messages: batch.map((r) => ({ key: r.violation_id, value: JSON.stringify(r) })) })
      .catch((err: unknown) =>
        this.#log.warn('violations_topic', { error: (err as Error).message, violations: batch.length }, 'cannot write violations to Kafka'),
      );
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async shutdown(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#inFlight]);
    await this.#producer.disconnect();
  }
}
