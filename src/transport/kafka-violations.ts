/**
 * Writes violations to the violations topic (key: violation id, value: the
 * violation as JSON), where the API builds its index from. At-least-once: a
 * repeated violation carries the same id and the index keeps one.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { Component } from '../component.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { ViolationRecord } from '../worker/violation-record.ts';
import type { ViolationSink } from '../worker/violation-store.ts';

export class KafkaViolationSink implements Component, ViolationSink {
  readonly #producer: Producer;
  readonly #topic: string;
  readonly #log: RateLimitedLog;
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: { kafka: Kafka; topic: string; logger: Logger }) {
    this.#producer = options.kafka.producer({ allowAutoTopicCreation: false });
    this.#topic = options.topic;
    this.#log = new RateLimitedLog(options.logger);
  }

  async start(): Promise<void> {
    await this.#producer.connect();
  }

  append(record: ViolationRecord): void {
    const p = this.#producer
      .send({ topic: this.#topic, acks: -1, messages: [{ key: record.violation_id, value: JSON.stringify(record) }] })
      .catch((err: unknown) => this.#log.warn('violations_topic', { error: (err as Error).message }, 'cannot write a violation to Kafka'));
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.#inFlight]);
    await this.#producer.disconnect();
  }
}
