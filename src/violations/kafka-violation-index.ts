/**
 * The API's view of violations in Kafka mode: an index built by reading the
 * violations topic from its start (TopicFollower), so a restarted API, or several API replicas,
 * all serve the same violations. Repeats of a violation (same id) are kept once;
 * the workers' delivered markers in the topic are skipped.
 */
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { KafkaConfig } from '../config/index.ts';
import { TopicFollower } from '../transport/kafka-follow.ts';
import { violationRecordProblem, type ViolationRecord } from './violation-record.ts';
import { queryRecords, type ViolationPage, type ViolationQuery, type ViolationReader } from './violation-store.ts';

export class KafkaViolationIndex implements Component, ViolationReader {
  readonly #logger: Logger;
  readonly #maxRecords: number;
  readonly #follower: TopicFollower;
  readonly #ids = new Set<string>();
  #records: ViolationRecord[] = [];
  #firstSeq = 0;

  constructor(options: { config: KafkaConfig; topic: string; logger: Logger; maxRecords?: number }) {
    this.#logger = options.logger;
    this.#maxRecords = options.maxRecords ?? 500_000;
    this.#follower = new TopicFollower({
      config: options.config,
      topic: options.topic,
      groupPrefix: 'betrace-api',
      onRecord: (_key, value, partition, offset, kind) => {
        // Delivered markers (kafka-ledger.ts) say a violation's span reached downstream: not violations.
        if (value === null || kind === 'delivered') return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(value.toString('utf8'));
        } catch {
          this.#logger.warn({ offset, partition }, 'violations topic: a record that is not JSON ignored');
          return;
        }
        // Only violation records are served: anything else in the topic would be answered as one.
        const problem = violationRecordProblem(parsed);
        if (problem !== undefined) {
          this.#logger.warn({ offset, partition, problem }, 'violations topic: a record that is not a violation record ignored');
          return;
        }
        this.#add(parsed as ViolationRecord);
      },
      logger: options.logger,
    });
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
    await this.#follower.start(60_000);
    this.#logger.info({ violations: this.#records.length }, 'violation index read from Kafka');
  }

  query(q: ViolationQuery): ViolationPage {
    return queryRecords(this.#records, this.#firstSeq, q);
  }

  async shutdown(): Promise<void> {
    await this.#follower.stop();
  }
}
