/**
 * An exporter composed of wrappers, front to back:
 *
 *   ExportQueue (max_queue_spans, full-queue policy) → Batcher (max_batch_spans, batch_timeout,
 *   concurrency) → SplitSender (a refused batch sent apart) → RetrySender (max_retry_time,
 *   RetryInfo delays) → RequestSender (one OTLP/gRPC call through a PayloadSender)
 *
 * Every request between the batcher and downstream passes through one interface,
 * ExportSender.send(request, signal); the batcher settles each entry once with what came back
 * (delivered, or dropped, counted by reason and logged at a limited rate).
 * At shutdown it goes on sending what it holds until abandon() (the pipeline's
 * shutdown_timeout): what is left then is given up at once, in-flight calls included.
 * Used by the forwarder and by the workers' violation spans.
 */
import type { Component } from '../component.ts';
import type { DownstreamConfig } from '../config/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { Batcher } from './batcher.ts';
import { DownstreamState, type DownstreamHealth } from './downstream-state.ts';
import { ExportQueue, type Admission, type FullQueuePolicy } from './export-queue.ts';
import { untilAborted, type ExportItem } from './export-sender.ts';
import type { PayloadSender } from './otlp-grpc-sender.ts';
import { RequestSender } from './request-sender.ts';
import { RetrySender } from './retry-sender.ts';
import { Settlement } from './settle.ts';
import { SplitSender } from './split-sender.ts';

export type { ExportItem } from './export-sender.ts';

/** What is left when the exporter is abandoned at shutdown. */
export interface AbandonedExports {
  readonly spans: number;
  readonly entries: number;
}

export interface QueuedExporterOptions {
  readonly name: 'forwarder' | 'violations';
  readonly sender: PayloadSender;
  readonly config: Pick<DownstreamConfig, 'maxQueueSpans' | 'maxBatchSpans' | 'batchTimeoutMs' | 'maxRetryTimeMs'>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** What export() does when the queue is full (see FullQueuePolicy). Default `drop`. */
  readonly whenFull?: FullQueuePolicy;
  /** Batches in flight at once. */
  readonly concurrency?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * Once downstream refused every entry of a few split batches in a row, a refused batch is
   * split again only this often (a probe); the others are dropped whole. Default 30 s.
   */
  readonly splitProbeIntervalMs?: number;
  /**
   * What abandon() does with what is left: false (default), dropped and counted (reason
   * `shutdown`); true, only handed back (onDone(false, true)): with Kafka, left unacknowledged so
   * that the partition's next reader sends it.
   */
  readonly keepAbandoned?: boolean;
}

export class QueuedExporter implements Component {
  readonly #sender: PayloadSender;
  readonly #downstream = new DownstreamState();
  readonly #abandon = new AbortController();
  readonly #queue: ExportQueue;
  readonly #batcher: Batcher;
  readonly #whenFull: FullQueuePolicy;
  #started = false;

  constructor(options: QueuedExporterOptions) {
    const { name, sender, config, metrics, logger } = options;
    this.#sender = sender;
    this.#whenFull = options.whenFull ?? 'drop';
    const log = new RateLimitedLog(logger);
    const downstream = this.#downstream;
    const settlement = new Settlement({ name, metrics, log, keepAbandoned: options.keepAbandoned === true });
    const retry = new RetrySender({
      name,
      next: new RequestSender({ name, sender, metrics, downstream }),
      maxRetryTimeMs: config.maxRetryTimeMs,
      initialBackoffMs: options.initialBackoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 5000,
      metrics,
      log,
    });
    const split = new SplitSender({ name, next: retry, splitProbeIntervalMs: options.splitProbeIntervalMs ?? 30_000, downstream, metrics, logger, log });
    this.#queue = new ExportQueue({
      name,
      maxQueueSpans: config.maxQueueSpans,
      whenFull: this.#whenFull,
      downstream,
      settlement,
      metrics,
      onQueued: () => this.#batcher.pump(),
    });
    this.#batcher = new Batcher({
      queue: this.#queue,
      next: split,
      settlement,
      maxBatchSpans: config.maxBatchSpans,
      batchTimeoutMs: config.batchTimeoutMs,
      concurrency: options.concurrency ?? 4,
      signal: this.#abandon.signal,
    });
  }

  start(): Promise<void> {
    this.#started = true;
    return Promise.resolve();
  }

  /** The full-queue policy it was built with. */
  get whenFull(): FullQueuePolicy {
    return this.#whenFull;
  }

  get queuedSpans(): number {
    return this.#queue.queuedSpans;
  }

  /** True when there is room for `spanCount` more spans. */
  hasRoom(spanCount: number): boolean {
    return this.#queue.hasRoom(spanCount);
  }

  /** True once shutdown began: nothing more is queued. */
  get stopping(): boolean {
    return this.#queue.stopping;
  }

  /** Whether downstream takes exports: false from a failed attempt until one succeeds. */
  get delivering(): boolean {
    return this.#downstream.delivering;
  }

  /** Whether downstream is reachable (see DownstreamState.health). */
  health(): DownstreamHealth {
    return this.#downstream.health();
  }

  /** Hands an entry over as the full-queue policy chosen at construction says. */
  export(item: ExportItem): Promise<Admission> {
    return this.#queue.export(item);
  }

  /** Queues an item; false (and counted as dropped) when the queue is full or stopping. */
  enqueue(item: ExportItem): boolean {
    return this.#queue.enqueue(item);
  }

  /** Queues an item when there is room (and not stopping); false, and nothing else done, otherwise. */
  offer(item: ExportItem): boolean {
    return this.#queue.offer(item);
  }

  /** See ExportQueue.waitForRoom. */
  waitForRoom(spanCount: number, whileDelivering = false): Promise<void> {
    return this.#queue.waitForRoom(spanCount, whileDelivering);
  }

  /** Queues an item at shutdown, past max_queue_spans; once abandoned, given up (see keepAbandoned). */
  offerAtShutdown(item: ExportItem): void {
    this.#queue.offerAtShutdown(item);
  }

  /**
   * Stops at once (the shutdown deadline): nothing more is sent or retried, what is queued and
   * in flight is given up (see keepAbandoned). Returns how much that was.
   */
  abandon(): AbandonedExports {
    if (this.#abandon.signal.aborted) return { spans: 0, entries: 0 };
    const left = { spans: this.#queue.queuedSpans, entries: this.#queue.length + this.#batcher.inFlightEntries };
    this.#batcher.cancelTimer();
    this.#queue.abandon();
    // In-flight requests give up theirs at once; their calls downstream end with the channel.
    this.#abandon.abort();
    void this.#sender.shutdown().catch(() => undefined);
    this.#queue.wakeWaiters();
    return left;
  }

  /** Sends everything queued (retrying as configured) until abandon(), then stops. */
  async shutdown(): Promise<void> {
    if (this.#queue.stopping) return;
    this.#queue.stop();
    if (!this.#started && this.#queue.length === 0) return;
    await this.#batcher.drain();
    this.#queue.wakeWaiters();
    // Abandoned: calls still open downstream are not waited for (abandon() closes the sender).
    await untilAborted(this.#sender.shutdown(), this.#abandon.signal);
  }

  /** Waits until everything queued now has been sent or dropped. */
  async flush(): Promise<void> {
    await this.#batcher.flush();
  }
}
