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
  /** Position in its partition (a Kafka offset); commit `offset + 1` once handled. */
  readonly offset: bigint;
}

/** Expected failures are values. */
export type ProduceResult =
  | { readonly status: 'success' }
  | { readonly status: 'retryable'; readonly retryInMillis: number; readonly error: string }
  | { readonly status: 'failure'; readonly error: string };

export interface TransportProducer extends Component {
  /**
   * Hands records to the transport. Resolves 'success' once every record is
   * durably held (embedded: queued within bounds; Kafka: acknowledged with acks=all),
   * 'retryable' when the transport refuses for now (full, unavailable): then none
   * of the records were taken. The transport owns the records after the call.
   */
  send(records: readonly TraceRecord[]): Promise<ProduceResult>;
}

/**
 * Called with records of one partition, in offset order. The consumer fetches
 * no more from that partition until the promise resolves (backpressure). The
 * handler owns the records after the call; handled is not committed: offsets
 * are committed explicitly with commit().
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
  /** Partitions now owned by this consumer (Kafka: after each rebalance; embedded: all, once). */
  readonly onAssigned?: (partitions: readonly number[]) => void;
}

export interface TransportConsumer extends Component {
  /** Everything before `nextOffset` in the partition is done with; never moves backwards. */
  commit(partition: number, nextOffset: bigint): void;
  /** Stop delivering batches (records keep waiting in the transport) until resume(). */
  pause(): void;
  resume(): void;
}

export interface Transport {
  readonly kind: 'embedded' | 'kafka';
  readonly partitions: number;
  createProducer(): TransportProducer;
  createConsumer(group: string, callbacks: ConsumerCallbacks): TransportConsumer;
}
