/**
 * The forwarder: its own consumer group on the transport, passing every record's
 * spans unchanged downstream. A record is acknowledged to the transport once
 * downstream acknowledged its spans (or they were dropped and counted); the
 * transport commits the low watermark, the last time on shutdown after the
 * export queue was flushed.
 */
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ConsumedRecord, Transport, TransportConsumer } from '../transport/transport.ts';
import type { QueuedExporter } from './queued-exporter.ts';

export interface ForwarderOptions {
  readonly transport: Transport;
  readonly exporter: QueuedExporter;
  readonly logger: Logger;
  /** Consumer group name (Kafka). */
  readonly group: string;
  /**
   * At shutdown, once the consumer stopped delivering, before the transport's final commit:
   * the builder flushes the exporter (started before the forwarder, stopped by the builder),
   * so that the commit carries what downstream acknowledged.
   */
  readonly beforeFinalCommit?: () => Promise<void>;
  /**
   * When the export queue is full: `wait` for room (Kafka keeps the backlog), or wait
   * only while downstream takes exports (`wait_while_delivering`: the embedded
   * transport fills and the receiver answers UNAVAILABLE, so a burst is not dropped;
   * while downstream fails, records are dropped and counted, so that rule evaluation,
   * which reads the same transport, goes on).
   */
  readonly whenFull: 'wait' | 'wait_while_delivering';
}

export class Forwarder implements Component {
  readonly #o: ForwarderOptions;
  readonly #consumer: TransportConsumer;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    this.#consumer = options.transport.createConsumer(options.group, {
      onBatch: (partition, records) => this.#onBatch(partition, records),
      drain: () => this.#o.beforeFinalCommit?.() ?? Promise.resolve(),
      // Embedded: what the receiver accepted and the forwarder had not read yet is still sent
      // (within shutdown_timeout, else dropped and counted).
      onUnreadAtShutdown: (_partition, records) => {
        for (const r of records) this.#o.exporter.offerAtShutdown({ payload: r.payload, spanCount: r.spanCount });
      },
    });
  }

  async #onBatch(partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const { exporter, whenFull } = this.#o;
    const whileDelivering = whenFull === 'wait_while_delivering';
    for (const record of records) {
      const item = {
        payload: record.payload,
        spanCount: record.spanCount,
        // Abandoned at the shutdown deadline: left unacknowledged, the partition's next reader forwards it (with Kafka).
        onDone: (_delivered: boolean, abandoned?: boolean) => {
          if (abandoned !== true) this.#consumer.ack(partition, record.offset);
        },
      };
      // Partitions are handled concurrently: room one waited for may be taken by another first.
      while (!exporter.offer(item)) {
        // Stopping with Kafka: left unacknowledged, the partition's next reader forwards it.
        if (exporter.stopping && !whileDelivering) return;
        if (exporter.stopping || (whileDelivering && !exporter.delivering)) {
          exporter.enqueue(item); // dropped and counted
          break;
        }
        await exporter.waitForRoom(record.spanCount, whileDelivering);
      }
    }
  }

  /** Starts the consumer group only: the exporter is the builder's, started before. */
  async start(): Promise<void> {
    await this.#consumer.start();
  }

  async shutdown(): Promise<void> {
    await this.#consumer.shutdown();
  }
}
