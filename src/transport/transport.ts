/**
 * The transport boundary: between the receiver (producer) and the workers and
 * the forwarder (consumer groups). Embedded (in-process) and Kafka implement it
 * with the same semantics: records keyed and partitioned by trace id, every
 * consumer group sees every record, a group's partitions are read in order.
 */
import type { Component } from '../component.ts';

/** One record: one trace's spans from one export request. */
export interface TraceRecord {
  /** 32 lowercase hex characters: the record key and the partitioning key. */
  readonly traceId: string;
  /** OTLP ExportTraceServiceRequest (protobuf) holding only this trace's spans. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /** Event time: the earliest span start in the record, unix milliseconds. */
  readonly timestampMs: number;
  /** Parentless spans in the payload, when the transport counted them (saves the worker a scan). */
  readonly rootSpans?: number | undefined;
}

export interface ConsumedRecord extends TraceRecord {
  readonly partition: number;
  /** Position in its partition (a Kafka offset); acknowledge it with TransportConsumer.ack once done. */
  readonly offset: bigint;
  /** Traces the transport's record at `offset` holds (a Kafka record split into several records shares its offset); 1 when not set. */
  readonly parts?: number;
}

/** Expected failures are values. */
export type ProduceResult =
  | { readonly status: 'success' }
  | { readonly status: 'retryable'; readonly retryInMillis: number; readonly error: string }
  | { readonly status: 'failure'; readonly error: string };

export interface SendOptions {
  /**
   * When the caller's own client gives up (unix ms; the gRPC deadline the client sent):
   * the answer comes well before it, so that the client can still retry.
   */
  readonly deadlineMs?: number | undefined;
}

export interface TransportProducer extends Component {
  /**
   * Hands records to the transport. Resolves 'success' once every record is
   * durably held (embedded: queued within bounds; Kafka: acknowledged with acks=all;
   * the receiver's spool: fsynced to its disk), 'retryable' when the transport refuses
   * for now (full, unavailable, no acknowledgement in time): then the caller must
   * assume none of the records were taken. The transport owns the records after the call.
   */
  send(records: readonly TraceRecord[], options?: SendOptions): Promise<ProduceResult>;
}

/**
 * Called with records of one partition, in offset order. The consumer fetches
 * no more until the promise resolves (backpressure). The handler owns the
 * records after the call and acknowledges each one (TransportConsumer.ack) when
 * its stage is done with it: the transport commits, per partition, the offset
 * before which every record was acknowledged (the low watermark).
 */
export type RecordBatchHandler = (partition: number, records: readonly ConsumedRecord[]) => Promise<void>;

export interface ConsumerCallbacks {
  readonly onBatch: RecordBatchHandler;
  /**
   * onBatch copies every payload it keeps before it returns: the transport may
   * then overwrite the payloads' memory afterwards (Kafka reads fetch responses
   * into memory used again). Without it the handler owns the payloads.
   */
  readonly copiesPayloads?: boolean;
  /**
   * Partitions now owned by this consumer (Kafka: whenever the group's assignment
   * changes; embedded: all, once). Records of a partition no longer owned need no
   * acknowledgement: its next owner reads them again from the committed offset.
   */
  readonly onAssigned?: (partitions: readonly number[]) => void;
  /**
   * Called on shutdown once no more batches are delivered, before the final commit:
   * the stage finishes (and acknowledges) what it can, so the commit carries it.
   */
  readonly drain?: () => Promise<void>;
  /**
   * Embedded transport: on shutdown, the records of a partition not yet handed over (never to
   * be read again), before drain; without it they are lost uncounted.
   */
  readonly onUnreadAtShutdown?: (partition: number, records: readonly ConsumedRecord[]) => void;
}

export interface TransportConsumer extends Component {
  /**
   * The stage is done with the record at `offset` of `partition` (once per
   * ConsumedRecord handed over: a Kafka record split into several is acknowledged
   * once per part). Acknowledgements of partitions no longer owned are ignored.
   */
  ack(partition: number, offset: bigint): void;
  /**
   * Whether this consumer's partitions are being read and are not far behind their
   * ends; when not, a worker stops its traces' idle clocks (an outage or a
   * backlog is not the end of a trace).
   */
  caughtUp?(): boolean;
  /** Stop delivering batches (records keep waiting in the transport) until resume(). */
  pause(): void;
  resume(): void;
}

export interface Transport {
  readonly kind: 'embedded' | 'kafka';
  readonly partitions: number;
  createProducer(): TransportProducer;
  createConsumer(group: string, callbacks: ConsumerCallbacks): TransportConsumer;
  /** Whether the transport's backing service can be reached, with the reason when not (readiness of every role). */
  health?(): { readonly ok: boolean; readonly reason?: string };
}
