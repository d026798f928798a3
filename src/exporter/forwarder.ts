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
  /**
   * Its queue's full-queue policy is chosen where it is built: `wait` with Kafka (the backlog
   * stays in Kafka), `wait_while_delivering` embedded (see FullQueuePolicy).
   */
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
}

export class Forwarder implements Component {
  readonly #o: ForwarderOptions;
  readonly #consumer: TransportConsumer;

  constructor(options: ForwarderOptions) {
    // A dropping queue would lose records the transport acknowledged to the receiver in a burst.
    if (options.exporter.whenFull === 'drop') throw new Error('the forwarder needs an exporter whose queue waits when full (whenFull wait or wait_while_delivering)');
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
    for (const record of records) {
      const item = {
        payload: record.payload,
        spanCount: record.spanCount,
        // Abandoned at the shutdown deadline: left unacknowledged, the partition's next reader forwards it (with Kafka).
        onDone: (_delivered: boolean, abandoned?: boolean) => {
          if (abandoned !== true) this.#consumer.ack(partition, record.offset);
        },
      };
      // As the exporter's full-queue policy says. Left when stopping (Kafka): unacknowledged, the partition's next reader forwards it.
      if ((await this.#o.exporter.export(item)) === 'left') return;
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
