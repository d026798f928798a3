/**
 * A worker's violation ledger on the violations topic: what makes a violation
 * "once" in Kafka mode (docs/contract.md "Violations, once").
 *
 * - A trace's violations are written to the violations topic (acks=all), to
 *   the partition of the trace's spans partition, before their span is sent
 *   downstream; a failed write is retried (and counted) until it succeeds or the
 *   worker stops (then the trace is not acknowledged, and its next owner
 *   evaluates it again).
 * - Once downstream acknowledged the violation spans, a delivered marker (a
 *   record with header `betrace-kind: delivered` listing the violation ids) is
 *   written to the same partition; only then are the trace's records
 *   acknowledged.
 * - A partition's new owner reads the partition's violation records from the
 *   time of the first spans record it consumes (minus a margin for clocks)
 *   before it emits anything for the partition: a violation with a delivered
 *   marker is not sent again; one written without a marker (in flight when its
 *   worker died) is sent again, identical, and counted as a re-emission; only a
 *   violation with no record is new. During the first `catchUpMs` after the
 *   assignment the partition is read again before each decision, for what its
 *   previous owner was still writing.
 */
import type { Component } from '../component.ts';
import type { KafkaConfig } from '../config/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ViolationRecord } from './violation-record.ts';
import { Consumer, Producer, chunkBySize, describeKafkaError, hasKafkaErrorCode, kafkaClientOptions } from '../kafka/client.ts';
import { KIND_HEADER } from '../transport/kafka-follow.ts';
import { readPartitionRange } from '../transport/kafka-read.ts';

export type LedgerStatus = 'delivered' | 'written' | undefined;

/** Bytes of records in one produce call to the violations topic. */
const CALL_BYTES = 512 * 1024;
/** The broker's answer to a batch over the topic's max.message.bytes. */

/** Clock difference allowed between the hosts that stamp spans records and violation records. */
const CLOCK_MARGIN_MS = 60_000;

interface PartitionLedger {
  /** Violation id → whether a delivered marker was seen. */
  readonly ids: Map<string, boolean>;
  readonly assignedAt: number;
  /** Next offset of the violations partition to read. */
  next: bigint;
  loading: Promise<void> | undefined;
  ready: boolean;
}

interface Queued {
  readonly partition: number;
  readonly key: string;
  readonly value: string;
  readonly kind: 'violation' | 'delivered';
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class ViolationLedger implements Component {
  readonly #topic: string;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #log: RateLimitedLog;
  readonly #catchUpMs: number;
  readonly #producer: Producer;
  readonly #reader: Consumer;
  readonly #partitions = new Map<number, PartitionLedger>();
  #topicPartitions = 0;
  #queue: Queued[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #stopTimer: NodeJS.Timeout | undefined;

  constructor(options: { config: KafkaConfig; metrics: Metrics; logger: Logger; catchUpMs?: number }) {
    this.#topic = options.config.violationsTopic;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#log = new RateLimitedLog(options.logger);
    this.#catchUpMs = options.catchUpMs ?? 30_000;
    this.#producer = new Producer(kafkaClientOptions(options.config, '-violations'));
    // Reads partitions with Fetch requests only (kafka-read.ts): never joins its group.
    this.#reader = new Consumer({ ...kafkaClientOptions(options.config, '-ledger'), groupId: `${options.config.workerGroup}-ledger` });
  }

  async start(): Promise<void> {
    this.#running = true;
    const metadata = await this.#producer.metadata({ topics: [this.#topic] });
    this.#topicPartitions = metadata.topics.get(this.#topic)?.partitionsCount ?? 0;
    if (this.#topicPartitions === 0) throw new Error(`Kafka topic ${this.#topic} has no partitions`);
  }

  #violationsPartition(spansPartition: number): number {
    return spansPartition % this.#topicPartitions;
  }

  /**
   * The partition was assigned and its first record has timestamp `fromMs`: reads
   * its violation records written since (once per assignment).
   */
  prepare(partition: number, fromMs: number): Promise<void> {
    let entry = this.#partitions.get(partition);
    if (entry !== undefined) return entry.loading ?? Promise.resolve();
    entry = { ids: new Map(), assignedAt: Date.now(), next: -1n, loading: undefined, ready: false };
    this.#partitions.set(partition, entry);
    const e = entry;
    e.loading = this.#load(partition, e, fromMs - CLOCK_MARGIN_MS).finally(() => {
      e.loading = undefined;
    });
    return e.loading;
  }

  /** The partition was lost: its ledger is read again by whoever owns it next. */
  forget(partition: number): void {
    this.#partitions.delete(partition);
  }

  /** What the topic says of these violations of the partition (read first, and again shortly after an assignment). */
  async status(partition: number, ids: readonly string[]): Promise<LedgerStatus[]> {
    const entry = this.#partitions.get(partition);
    if (entry === undefined) return ids.map(() => undefined);
    if (entry.loading !== undefined) await entry.loading;
    else if (Date.now() - entry.assignedAt < this.#catchUpMs) {
      entry.loading = this.#catchUpRetrying(partition, entry).finally(() => {
        entry.loading = undefined;
      });
      await entry.loading;
    }
    return ids.map((id) => {
      const delivered = entry.ids.get(id);
      return delivered === undefined ? undefined : delivered ? 'delivered' : 'written';
    });
  }

  async #load(partition: number, entry: PartitionLedger, fromMs: number): Promise<void> {
    const p = this.#violationsPartition(partition);
    for (let attempt = 0; this.#running && this.#partitions.get(partition) === entry; attempt++) {
      try {
        const byTime = (await this.#reader.listOffsets({ topics: [this.#topic], partitions: { [this.#topic]: [p] }, timestamp: BigInt(Math.max(0, fromMs)) })).get(this.#topic)?.[p];
        const start = byTime === undefined || byTime < 0n ? -1n : byTime;
        entry.next = start < 0n ? await this.#end(p) : start;
        await this.#catchUp(partition, entry);
        entry.ready = true;
        return;
      } catch (err) {
        this.#log.warn('ledger_read', { partition, error: describeKafkaError(err) }, 'cannot read the violations topic yet: trying again');
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
      }
    }
  }

  /**
   * Reads what was written since, again until it succeeds (a broker away, a leader being
   * elected): a decision on what the partition's previous owner wrote cannot be made
   * without it. Throws only when the worker stops or the partition was lost meanwhile.
   */
  async #catchUpRetrying(partition: number, entry: PartitionLedger): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#catchUp(partition, entry);
        return;
      } catch (err) {
        if (!this.#running || this.#partitions.get(partition) !== entry) throw err;
        this.#log.warn('ledger_read', { partition, error: describeKafkaError(err) }, 'cannot read the violations topic yet: trying again');
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000)));
      }
    }
  }

  async #end(p: number): Promise<bigint> {
    return (await this.#reader.listOffsets({ topics: [this.#topic], partitions: { [this.#topic]: [p] } })).get(this.#topic)?.[p] ?? 0n;
  }

  async #catchUp(partition: number, entry: PartitionLedger): Promise<void> {
    const p = this.#violationsPartition(partition);
    const end = await this.#end(p);
    if (entry.next < 0n || entry.next >= end) return;
    entry.next = await readPartitionRange(this.#reader, {
      topic: this.#topic,
      partition: p,
      start: entry.next,
      end,
      maxBytes: 8 * 1024 * 1024,
      onRecords: (records) => {
        for (const r of records) {
          if (r.value === null) continue;
          const kind = r.headers.get(KIND_HEADER)?.toString('utf8');
          try {
            if (kind === 'delivered') {
              const parsed = JSON.parse(r.value.toString('utf8')) as { violation_ids?: unknown };
              if (Array.isArray(parsed.violation_ids)) for (const id of parsed.violation_ids) if (typeof id === 'string') entry.ids.set(id, true);
            } else {
              const parsed = JSON.parse(r.value.toString('utf8')) as { violation_id?: unknown };
              if (typeof parsed.violation_id === 'string' && !entry.ids.has(parsed.violation_id)) entry.ids.set(parsed.violation_id, false);
            }
          } catch {
            // Not ours to read (the API's index warns about records that are not violation records).
          }
        }
      },
    });
  }

  /** Writes the violations (acks=all); resolves once written, rejects only when the worker stops first. */
  write(partition: number, records: readonly ViolationRecord[]): Promise<void> {
    const entry = this.#partitions.get(partition);
    return Promise.all(
      records.map((r) => {
        entry?.ids.set(r.violation_id, entry.ids.get(r.violation_id) ?? false);
        return this.#enqueue(partition, r.violation_id, JSON.stringify(r), 'violation');
      }),
    ).then(() => undefined);
  }

  /** Records that these violations' spans were acknowledged downstream. */
  delivered(partition: number, traceId: string, ids: readonly string[]): Promise<void> {
    const entry = this.#partitions.get(partition);
    for (const id of ids) entry?.ids.set(id, true);
    return this.#enqueue(partition, traceId, JSON.stringify({ violation_ids: ids, delivered_at_ms: Date.now() }), 'delivered');
  }

  #enqueue(partition: number, key: string, value: string, kind: Queued['kind']): Promise<void> {
    if (!this.#running) return Promise.reject(new Error('the violation ledger is stopped'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ partition, key, value, kind, resolve, reject });
      if (this.#queue.length >= 2000) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), 20);
    });
  }

  /**
   * Batched for 20 ms (or 2000 records) into produce calls of at most CALL_BYTES each:
   * each call costs the worker's I/O thread about as much as a few dozen records, and
   * the broker refuses a partition's batch over its max.message.bytes (1 MB by default).
   */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    for (const chunk of chunkBySize(batch, (q) => q.key.length + q.value.length + 64, CALL_BYTES)) {
      const p = this.#send(chunk);
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
  }

  async #send(batch: Queued[]): Promise<void> {
    const messages = batch.map((q) => ({
      topic: this.#topic,
      partition: this.#violationsPartition(q.partition),
      key: Buffer.from(q.key, 'utf8'),
      value: Buffer.from(q.value, 'utf8'),
      headers: new Map([[Buffer.from(KIND_HEADER), Buffer.from(q.kind)]]),
    }));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#producer.send({ messages, acks: -1 });
        for (const q of batch) q.resolve();
        return;
      } catch (err) {
        this.#metrics.violationWritesFailed.inc({ kind: batch[0]!.kind });
        const message = describeKafkaError(err);
        if (hasKafkaErrorCode(err, 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE')) {
          // The topic's max.message.bytes is lower than CALL_BYTES: halves, down to single records.
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            await Promise.all([this.#send(batch.slice(0, half)), this.#send(batch.slice(half))]);
            return;
          }
          // Never writable: given up (logged, counted) so that the partition's commits go on; its span still goes downstream.
          this.#logger.error({ topic: this.#topic, bytes: messages[0]!.value.length, error: message }, 'a record is larger than the violations topic accepts: not written');
          batch[0]!.resolve();
          return;
        }
        if (!this.#running) {
          for (const q of batch) q.reject(new Error(`violations not written to ${this.#topic}: ${message}`));
          return;
        }
        this.#log.warn('violations_topic', { error: message, records: batch.length, attempt }, `cannot write to ${this.#topic}: retrying`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** attempt, 5000)));
      }
    }
  }

  /**
   * The worker is stopping: writes still failing after `graceMs` are given up
   * (rejected: their traces stay unacknowledged, and the partition's next owner
   * evaluates them again).
   */
  stopWithin(graceMs: number): void {
    this.#stopTimer ??= setTimeout(() => {
      this.#running = false;
    }, graceMs);
  }

  async shutdown(): Promise<void> {
    this.stopWithin(5000);
    this.#flush();
    await Promise.all([...this.#inFlight]);
    this.#running = false;
    clearTimeout(this.#stopTimer);
    await this.#producer.close().catch(() => undefined);
    await this.#reader.close().catch(() => undefined);
    this.#logger.debug('violation ledger stopped');
  }
}
