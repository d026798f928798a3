/**
 * The forwarder: its own consumer group on the transport, passing every record's
 * spans unchanged downstream. Offsets are committed only past what downstream
 * acknowledged (or what was dropped and counted).
 */
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import { OffsetTracker } from '../transport/offset-tracker.ts';
import type { ConsumedRecord, Transport, TransportConsumer } from '../transport/transport.ts';
import type { QueuedExporter } from './queued-exporter.ts';

export interface ForwarderOptions {
  readonly transport: Transport;
  readonly exporter: QueuedExporter;
  readonly logger: Logger;
  /** Consumer group name (Kafka). */
  readonly group: string;
  /**
   * When the export queue is full: `wait` for room (Kafka keeps the backlog), or wait
   * only while downstream takes exports (`wait_while_delivering`: the embedded
   * transport fills and the receiver answers UNAVAILABLE, so a burst is not dropped;
   * while downstream fails, records are dropped and counted, so that rule evaluation,
   * which reads the same transport, goes on).
   */
  readonly whenFull: 'wait' | 'wait_while_delivering';
  readonly commitIntervalMs?: number;
}

export class Forwarder implements Component {
  readonly #o: ForwarderOptions;
  readonly #offsets = new OffsetTracker();
  readonly #consumer: TransportConsumer;
  #commitTimer: NodeJS.Timeout | undefined;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    this.#consumer = options.transport.createConsumer(options.group, {
      onBatch: (partition, records) => this.#onBatch(partition, records),
      onAssigned: (partitions) => {
        for (const p of this.#offsets.partitions()) if (!partitions.includes(p)) this.#offsets.forget(p);
      },
    });
  }

  async #onBatch(partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const { exporter, whenFull } = this.#o;
    const whileDelivering = whenFull === 'wait_while_delivering';
    for (const record of records) {
      this.#offsets.hold(partition, record.offset);
      const item = { payload: record.payload, spanCount: record.spanCount, onDone: () => this.#offsets.release(partition, record.offset) };
      // Partitions are handled concurrently: room one waited for may be taken by another first.
      while (!exporter.offer(item)) {
        if (exporter.stopping || (whileDelivering && !exporter.delivering)) {
          exporter.enqueue(item); // dropped and counted
          break;
        }
        await exporter.waitForRoom(record.spanCount, whileDelivering);
      }
    }
  }

  #commit(): void {
    for (const p of this.#offsets.partitions()) {
      const offset = this.#offsets.committable(p);
      if (offset !== undefined) this.#consumer.commit(p, offset);
    }
  }

  async start(): Promise<void> {
    await this.#o.exporter.start();
    await this.#consumer.start();
    this.#commitTimer = setInterval(() => this.#commit(), this.#o.commitIntervalMs ?? 1000);
    this.#commitTimer.unref();
  }

  async shutdown(): Promise<void> {
    if (this.#commitTimer !== undefined) clearInterval(this.#commitTimer);
    this.#commitTimer = undefined;
    await this.#consumer.shutdown();
    await this.#o.exporter.shutdown();
    this.#commit();
  }
}
