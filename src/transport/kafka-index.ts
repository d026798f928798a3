/**
 * The Kafka trace index (transport.kafka.index_topic): for every trace a worker
 * evaluates, one record saying which records of the spans topic hold it and what replay
 * needs to know of them without reading them. Written to the index partition of the same
 * number as the trace's spans partition, keyed by trace id, timestamped with the trace's
 * earliest span start (event time: a replay finds a trace by when it happened, even in a
 * spans topic a Collector stamped with its send times). A worker acknowledges a trace's
 * records only once its index record is written (TraceIndexWriter.afterWritten), so every
 * committed record is indexed; replay reads what no index record covers in full.
 *
 * Value (version 1): version (u8), name count (u16), then per name u16 length + UTF-8
 * (the span names of the trace), record count (u32), then per record: offset (f64),
 * timestampMs (f64, the Kafka record's), earliestStartMs (f64, +Infinity as such),
 * spanCount (u32), untimedSpans (u32), parts (u16: traces the Kafka record holds).
 */
import type { KafkaConfig } from '../config/index.ts';
import { Producer, chunkBySize, describeKafkaError, hasKafkaErrorCode, kafkaClientOptions } from '../kafka/client.ts';
import type { Component } from '../component.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';

const VERSION = 1;

/** One spans-topic record of a trace, as the index describes it. */
export interface IndexedRecord {
  readonly offset: number;
  readonly timestampMs: number;
  readonly earliestStartMs: number;
  readonly spanCount: number;
  readonly untimedSpans: number;
  /** Traces the Kafka record holds (a Collector's record may hold several): covered once each has its index record. */
  readonly parts: number;
}

export interface TraceSummary {
  readonly traceId: string;
  readonly names: readonly string[];
  readonly records: readonly IndexedRecord[];
}

export function encodeTraceSummary(s: TraceSummary): Buffer {
  const names = s.names.map((n) => Buffer.from(n, 'utf8'));
  let bytes = 1 + 2 + 4 + s.records.length * 34;
  for (const n of names) bytes += 2 + Math.min(n.length, 0xffff);
  const buf = Buffer.allocUnsafe(bytes);
  let p = 0;
  buf.writeUInt8(VERSION, p++);
  buf.writeUInt16LE(Math.min(names.length, 0xffff), p);
  p += 2;
  for (const n of names.slice(0, 0xffff)) {
    const len = Math.min(n.length, 0xffff);
    buf.writeUInt16LE(len, p);
    n.copy(buf, p + 2, 0, len);
    p += 2 + len;
  }
  buf.writeUInt32LE(s.records.length, p);
  p += 4;
  for (const r of s.records) {
    buf.writeDoubleLE(r.offset, p);
    buf.writeDoubleLE(r.timestampMs, p + 8);
    buf.writeDoubleLE(r.earliestStartMs, p + 16);
    buf.writeUInt32LE(r.spanCount, p + 24);
    buf.writeUInt32LE(r.untimedSpans, p + 28);
    buf.writeUInt16LE(Math.min(r.parts, 0xffff), p + 32);
    p += 34;
  }
  return buf.subarray(0, p);
}

/** Decodes an index record's value; undefined when it is not one. */
export function decodeTraceSummary(traceId: string, buf: Buffer): TraceSummary | undefined {
  try {
    if (buf.readUInt8(0) !== VERSION) return undefined;
    let p = 1;
    const nameCount = buf.readUInt16LE(p);
    p += 2;
    const names: string[] = [];
    for (let i = 0; i < nameCount; i++) {
      const len = buf.readUInt16LE(p);
      if (p + 2 + len > buf.length) return undefined;
      names.push(buf.toString('utf8', p + 2, p + 2 + len));
      p += 2 + len;
    }
    const count = buf.readUInt32LE(p);
    p += 4;
    if (p + count * 34 !== buf.length) return undefined;
    const records: IndexedRecord[] = [];
    for (let i = 0; i < count; i++, p += 34) {
      records.push({
        offset: buf.readDoubleLE(p),
        timestampMs: buf.readDoubleLE(p + 8),
        earliestStartMs: buf.readDoubleLE(p + 16),
        spanCount: buf.readUInt32LE(p + 24),
        untimedSpans: buf.readUInt32LE(p + 28),
        parts: buf.readUInt16LE(p + 32),
      });
    }
    return { traceId, names, records };
  } catch {
    return undefined;
  }
}

/** Bytes of index records in one produce call (under a broker's default max.message.bytes). */
const CALL_BYTES = 512 * 1024;

interface Waiter {
  readonly partition: number;
  readonly offset: number;
  readonly resolve: () => void;
}

interface Queued {
  readonly partition: number;
  readonly summary: TraceSummary;
  readonly value: Buffer;
  readonly timestampMs: number;
}

/**
 * Writes index records (acks=all), batched for 20 ms; retries while the cluster is
 * unreachable, for as long as the worker runs. A trace's records wait for it
 * (afterWritten): what is not written when the worker stops stays unacknowledged, and the
 * partition's next owner evaluates and indexes it again.
 */
export class TraceIndexWriter implements Component {
  readonly #topic: string;
  readonly #producer: Producer;
  readonly #metrics: Metrics;
  readonly #log: RateLimitedLog;
  /** Per spans partition, records whose index record is not written yet (offset → index records pending). */
  readonly #pending = new Map<number, Map<number, number>>();
  /** Resolved when the write in progress (or queued) at the time of the call is done. */
  #waiters: Waiter[] = [];
  #queue: Queued[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  #topicPartitions = 0;
  #running = false;

  constructor(options: { config: KafkaConfig; metrics: Metrics; logger: Logger }) {
    this.#topic = options.config.indexTopic;
    this.#metrics = options.metrics;
    this.#log = new RateLimitedLog(options.logger);
    this.#producer = new Producer(kafkaClientOptions(options.config, '-index'));
  }

  async start(): Promise<void> {
    this.#running = true;
    const metadata = await this.#producer.metadata({ topics: [this.#topic] });
    this.#topicPartitions = metadata.topics.get(this.#topic)?.partitionsCount ?? 0;
    if (this.#topicPartitions === 0) throw new Error(`Kafka topic ${this.#topic} has no partitions`);
  }

  /** Queues the index record of a trace of spans partition `partition`. */
  write(partition: number, summary: TraceSummary): void {
    if (!this.#running || summary.records.length === 0) return;
    let pending = this.#pending.get(partition);
    if (pending === undefined) this.#pending.set(partition, (pending = new Map<number, number>()));
    for (const r of summary.records) pending.set(r.offset, (pending.get(r.offset) ?? 0) + 1);
    let earliest = Infinity;
    for (const r of summary.records) earliest = Math.min(earliest, Number.isFinite(r.earliestStartMs) ? r.earliestStartMs : r.timestampMs);
    this.#queue.push({ partition, summary, value: encodeTraceSummary(summary), timestampMs: Number.isFinite(earliest) ? Math.max(0, earliest) : Date.now() });
    if (this.#queue.length >= 2000) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), 20);
  }

  /**
   * Calls `then` once no index record of these records (OffsetPairs: partition, offset, …) is
   * waiting to be written: at once when none is.
   */
  afterWritten(offsets: readonly number[], then: () => void): void {
    const waiting: Array<{ partition: number; offset: number }> = [];
    for (let i = 0; i < offsets.length; i += 2) {
      if (this.#pending.get(offsets[i]!)?.has(offsets[i + 1]!) === true) waiting.push({ partition: offsets[i]!, offset: offsets[i + 1]! });
    }
    if (waiting.length === 0) {
      then();
      return;
    }
    let left = waiting.length;
    for (const w of waiting) {
      this.#waiters.push({
        ...w,
        resolve: () => {
          if (--left === 0) then();
        },
      });
    }
  }

  /** Partitions no longer owned: their pending records are another owner's now. */
  forget(partition: number): void {
    this.#pending.delete(partition);
    this.#wake();
  }

  /** Writes what is queued; resolves once every write in progress is done. */
  async flush(): Promise<void> {
    this.#flush();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    for (const chunk of chunkBySize(batch, (q) => q.value.length + 96, CALL_BYTES)) {
      const p = this.#send(chunk);
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
  }

  async #send(batch: Queued[]): Promise<void> {
    const messages = batch.map((q) => ({
      topic: this.#topic,
      partition: q.partition % this.#topicPartitions,
      key: Buffer.from(q.summary.traceId, 'latin1'),
      value: q.value,
      timestamp: BigInt(Math.floor(q.timestampMs)),
    }));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#producer.send({ messages, acks: -1 });
        this.#metrics.indexRecordsWritten.inc(batch.length);
        for (const q of batch) this.#written(q);
        this.#wake();
        return;
      } catch (err) {
        // Not written: the records stay unacknowledged until it is (or another owner indexes them).
        if (!this.#running) return;
        this.#metrics.indexWritesFailed.inc();
        if (hasKafkaErrorCode(err, 'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE')) {
          // The topic's max.message.bytes is lower than CALL_BYTES: halves, down to single records.
          if (batch.length > 1) {
            const half = Math.ceil(batch.length / 2);
            await Promise.all([this.#send(batch.slice(0, half)), this.#send(batch.slice(half))]);
            return;
          }
          // Never writable: given up, so that the partition's commits go on. The trace's records are
          // then covered by no index record, which replay reads in full: slower, the same answer.
          this.#metrics.indexRecordsGivenUp.inc();
          this.#log.warn('index_too_large', { topic: this.#topic, bytes: messages[0]!.value.length, trace_id: Buffer.from(batch[0]!.summary.traceId, 'latin1').toString('hex'), error: describeKafkaError(err) }, 'an index record is larger than the index topic accepts: not written (replay reads its trace\'s records in full)');
          this.#written(batch[0]!);
          this.#wake();
          return;
        }
        this.#log.warn('index_topic', { error: describeKafkaError(err), records: batch.length, attempt }, `cannot write to ${this.#topic}: retrying (the traces' records are acknowledged once it is written)`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** attempt, 5000)));
      }
    }
  }

  #written(q: Queued): void {
    const pending = this.#pending.get(q.partition);
    if (pending === undefined) return;
    for (const r of q.summary.records) {
      const n = (pending.get(r.offset) ?? 0) - 1;
      if (n <= 0) pending.delete(r.offset);
      else pending.set(r.offset, n);
    }
  }

  #wake(): void {
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.#pending.get(w.partition)?.has(w.offset) === true) still.push(w);
      else w.resolve();
    }
    this.#waiters = still;
  }

  async shutdown(): Promise<void> {
    const deadline = setTimeout(() => {
      this.#running = false;
    }, 5000);
    await this.flush();
    this.#running = false;
    clearTimeout(deadline);
    await this.#producer.close().catch(() => undefined);
  }
}
