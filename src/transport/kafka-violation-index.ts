/**
 * The API's view of violations in Kafka mode: an index built by reading the
 * violations topic from its start (a consumer group of its own that never
 * commits, deleted at shutdown), so a restarted API, or several API replicas,
 * all serve the same violations. Repeats of a violation (same id) are kept once.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ViolationRecord } from '../worker/violation-record.ts';
import { queryRecords, type ViolationPage, type ViolationQuery, type ViolationReader } from '../worker/violation-store.ts';

export class KafkaViolationIndex implements Component, ViolationReader {
  readonly #kafka: Kafka;
  readonly #topic: string;
  readonly #logger: Logger;
  readonly #maxRecords: number;
  readonly #group = `betrace-api-${randomUUID()}`;
  readonly #ids = new Set<string>();
  #records: ViolationRecord[] = [];
  #firstSeq = 0;
  #consumer: Consumer | undefined;
  #stopped = false;

  constructor(options: { kafka: Kafka; topic: string; logger: Logger; maxRecords?: number }) {
    this.#kafka = options.kafka;
    this.#topic = options.topic;
    this.#logger = options.logger;
    this.#maxRecords = options.maxRecords ?? 500_000;
  }

  get size(): number {
    return this.#records.length;
  }

  #add(record: ViolationRecord): void {
    if (this.#ids.has(record.violation_id)) return;
    this.#ids.add(record.violation_id);
    // Kept in evaluation order; the topic's partitions interleave, so insert in place.
    let i = this.#records.length;
    while (i > 0 && this.#records[i - 1]!.evaluated_at_ms > record.evaluated_at_ms) i--;
    this.#records.splice(i, 0, record);
    if (this.#records.length > this.#maxRecords) {
      const dropped = this.#records.splice(0, this.#records.length - this.#maxRecords);
      for (const d of dropped) this.#ids.delete(d.violation_id);
      this.#firstSeq += dropped.length;
    }
  }

  async start(): Promise<void> {
    const admin = this.#kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.#topic).finally(() => admin.disconnect());
    const consumer = this.#kafka.consumer({
      groupId: this.#group,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
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
        if (message.value !== null) {
          try {
            this.#add(JSON.parse(message.value.toString('utf8')) as ViolationRecord);
          } catch {
            this.#logger.warn({ offset: message.offset, partition }, 'violations topic: unreadable record ignored');
          }
        }
        applied.set(partition, BigInt(message.offset));
        check();
        return Promise.resolve();
      },
    });
    const timeout = setTimeout(() => caughtUp(), 60_000);
    await ready;
    clearTimeout(timeout);
    this.#logger.info({ violations: this.#records.length }, 'violation index read from Kafka');
  }

  query(q: ViolationQuery): ViolationPage {
    return queryRecords(this.#records, this.#firstSeq, q);
  }

  async shutdown(): Promise<void> {
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
