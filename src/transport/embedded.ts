/**
 * The embedded transport: in-process partitions with Kafka's shape. Each
 * partition is a bounded log; each consumer group reads it with its own cursor;
 * a record is freed once every group has been handed it (there is no
 * redelivery in one process, so commits only matter to Kafka). A producer is
 * refused (retryable) when a partition would exceed its byte bound, which is the
 * backpressure the receiver turns into UNAVAILABLE. Accepted records are also
 * appended to the local history when there is one (local-history.ts), which
 * replay reads.
 */
import type { Metrics } from '../telemetry/metrics.ts';
import type { LocalHistory } from './local-history.ts';
import { partitionerFor, type PartitionerName } from './partitioner.ts';
import type {
  ConsumedRecord,
  ConsumerCallbacks,
  ProduceResult,
  TraceRecord,
  Transport,
  TransportConsumer,
  TransportProducer,
} from './transport.ts';

export interface EmbeddedTransportOptions {
  readonly partitions: number;
  readonly partitioner: PartitionerName;
  /** Bytes of records held per partition before producers are refused. */
  readonly maxQueuedBytes: number;
  /** Suggested retry delay when refused. */
  readonly retryAfterMs: number;
  /** Most records handed to a consumer in one batch. */
  readonly maxBatchRecords?: number;
  /** Where every accepted record is also appended, for replay (transport.history). */
  readonly history?: LocalHistory;
  readonly metrics?: Metrics;
}

class PartitionLog {
  readonly records: ConsumedRecord[] = [];
  /** Offset of records[0]. */
  base = 0n;
  next = 0n;
  bytes = 0;
  readonly cursors = new Map<EmbeddedConsumer, bigint>();

  append(record: TraceRecord, partition: number): void {
    this.records.push({ ...record, partition, offset: this.next });
    this.next++;
    this.bytes += record.payload.length;
  }

  /** Frees records every group has been handed. */
  trim(): void {
    let min = this.next;
    for (const c of this.cursors.values()) if (c < min) min = c;
    if (this.cursors.size === 0) min = this.next;
    let drop = 0;
    while (this.base + BigInt(drop) < min && drop < this.records.length) {
      this.bytes -= this.records[drop]!.payload.length;
      drop++;
    }
    if (drop > 0) {
      this.records.splice(0, drop);
      this.base += BigInt(drop);
    }
  }
}

class EmbeddedConsumer implements TransportConsumer {
  readonly #transport: EmbeddedTransport;
  readonly #callbacks: ConsumerCallbacks;
  readonly #maxBatch: number;
  #running = false;
  #paused = false;
  #wake: (() => void) | undefined;
  #loops: Promise<void>[] = [];

  constructor(transport: EmbeddedTransport, callbacks: ConsumerCallbacks, maxBatch: number) {
    this.#transport = transport;
    this.#callbacks = callbacks;
    this.#maxBatch = maxBatch;
  }

  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    this.#running = true;
    const logs = this.#transport.logs;
    for (const log of logs) log.cursors.set(this, log.next);
    this.#callbacks.onAssigned?.(logs.map((_, i) => i));
    this.#loops = logs.map((log, partition) => this.#pump(log, partition));
    return Promise.resolve();
  }

  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #waitForWork(): Promise<void> {
    await new Promise<void>((resolve) => {
      const previous = this.#wake;
      this.#wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  async #pump(log: PartitionLog, partition: number): Promise<void> {
    while (this.#running) {
      const cursor = log.cursors.get(this) ?? log.next;
      if (this.#paused || cursor >= log.next) {
        await this.#waitForWork();
        continue;
      }
      const start = Number(cursor - log.base);
      const batch = log.records.slice(start, start + this.#maxBatch);
      log.cursors.set(this, cursor + BigInt(batch.length));
      log.trim();
      this.#transport.reportQueue(partition);
      try {
        await this.#callbacks.onBatch(partition, batch);
      } catch {
        // A handler that throws has a bug; the records were handed over regardless.
      }
    }
  }

  ack(_partition: number, _offset: bigint): void {
    // Nothing to commit in one process: records are never read again.
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.notify();
  }

  async shutdown(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    const unread: Array<[number, ConsumedRecord[]]> = [];
    for (const [partition, log] of this.#transport.logs.entries()) {
      const cursor = log.cursors.get(this);
      if (cursor !== undefined && cursor < log.next) unread.push([partition, log.records.slice(Number(cursor - log.base))]);
      log.cursors.delete(this);
    }
    this.notify();
    await Promise.all(this.#loops);
    for (const [partition, records] of unread) this.#callbacks.onUnreadAtShutdown?.(partition, records);
    await this.#callbacks.drain?.();
    this.#transport.consumers.delete(this);
    for (const log of this.#transport.logs) log.trim();
  }
}

export class EmbeddedTransport implements Transport {
  readonly kind = 'embedded';
  readonly partitions: number;
  readonly logs: PartitionLog[];
  readonly consumers = new Set<EmbeddedConsumer>();
  readonly #options: EmbeddedTransportOptions;
  readonly #partition: (key: string, partitions: number) => number;

  constructor(options: EmbeddedTransportOptions) {
    this.#options = options;
    this.partitions = options.partitions;
    this.logs = Array.from({ length: options.partitions }, () => new PartitionLog());
    this.#partition = partitionerFor(options.partitioner);
  }

  partitionOf(traceId: string): number {
    return this.#partition(traceId, this.partitions);
  }

  reportQueue(partition: number): void {
    this.#options.metrics?.transportQueuedBytes.set({ partition: String(partition) }, this.logs[partition]!.bytes);
  }

  createProducer(): TransportProducer {
    return {
      start: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
      send: (records) => Promise.resolve(this.#send(records)),
    };
  }

  #send(records: readonly TraceRecord[]): ProduceResult {
    const partitions = records.map((r) => this.partitionOf(r.traceId));
    const added = new Map<number, number>();
    for (let i = 0; i < records.length; i++) {
      const p = partitions[i]!;
      added.set(p, (added.get(p) ?? 0) + records[i]!.payload.length);
    }
    for (const [p, bytes] of added) {
      const log = this.logs[p]!;
      // An oversized request is still taken by an empty partition, so it cannot be refused forever.
      if (log.bytes > 0 && log.bytes + bytes > this.#options.maxQueuedBytes) {
        this.#options.metrics?.transportProduceRefused.inc({ reason: 'queue_full' });
        return {
          status: 'retryable',
          retryInMillis: this.#options.retryAfterMs,
          error: `embedded transport partition ${p} is full (${log.bytes} bytes queued)`,
        };
      }
    }
    this.#options.history?.append(records);
    if (this.consumers.size === 0) return { status: 'success' };
    for (let i = 0; i < records.length; i++) this.logs[partitions[i]!]!.append(records[i]!, partitions[i]!);
    this.#options.metrics?.transportRecordsProduced.inc(records.length);
    for (const p of added.keys()) this.reportQueue(p);
    for (const c of this.consumers) c.notify();
    return { status: 'success' };
  }

  createConsumer(_group: string, callbacks: ConsumerCallbacks): TransportConsumer {
    const consumer = new EmbeddedConsumer(this, callbacks, this.#options.maxBatchRecords ?? 256);
    this.consumers.add(consumer);
    return consumer;
  }
}

export function createEmbeddedTransport(options: EmbeddedTransportOptions): EmbeddedTransport {
  return new EmbeddedTransport(options);
}
