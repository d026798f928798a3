/**
 * A bounded export queue in front of a PayloadSender: batches payloads up to
 * max_batch_spans (or batch_timeout), sends a few batches at once, retries
 * retryable failures with exponential backoff for up to max_retry_time, and
 * drops (counted, logged at a limited rate) what cannot be queued or delivered.
 * Used by the forwarder and by the workers' violation spans.
 */
import type { Component } from '../component.ts';
import type { DownstreamConfig } from '../config/index.ts';
import { mergeRequests } from '../otlp/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { PayloadSender } from './otlp-grpc-sender.ts';

export interface ExportItem {
  /** ExportTraceServiceRequest protobuf. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /** Called once: true when downstream acknowledged it, false when it was dropped. */
  readonly onDone?: (delivered: boolean) => void;
}

export interface QueuedExporterOptions {
  readonly name: 'forwarder' | 'violations';
  readonly sender: PayloadSender;
  readonly config: Pick<DownstreamConfig, 'maxQueueSpans' | 'maxBatchSpans' | 'batchTimeoutMs' | 'maxRetryTimeMs'>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Batches in flight at once. */
  readonly concurrency?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export class QueuedExporter implements Component {
  readonly #o: QueuedExporterOptions;
  readonly #queue: ExportItem[] = [];
  readonly #rateLimited: RateLimitedLog;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #spaceWaiters: Array<{ readonly resolve: () => void; readonly whileDelivering: boolean }> = [];
  #queuedSpans = 0;
  /** False from a failed export attempt until the next one that succeeds. */
  #delivering = true;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #started = false;

  constructor(options: QueuedExporterOptions) {
    this.#o = options;
    this.#rateLimited = new RateLimitedLog(options.logger);
  }

  start(): Promise<void> {
    this.#started = true;
    return Promise.resolve();
  }

  get queuedSpans(): number {
    return this.#queuedSpans;
  }

  /** True when there is room for `spanCount` more spans. */
  hasRoom(spanCount: number): boolean {
    return this.#queuedSpans === 0 || this.#queuedSpans + spanCount <= this.#o.config.maxQueueSpans;
  }

  /** True once shutdown began: nothing more is queued. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Whether downstream takes exports: false from a failed attempt until one succeeds. */
  get delivering(): boolean {
    return this.#delivering;
  }

  /**
   * Resolves when the queue has room again (for callers that prefer waiting to
   * dropping). `whileDelivering`: resolves as well once downstream fails (then
   * enqueue drops), so that only a slow downstream is waited for, not a failing one.
   */
  waitForRoom(spanCount: number, whileDelivering = false): Promise<void> {
    if (this.hasRoom(spanCount) || this.#stopping || (whileDelivering && !this.#delivering)) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push({ resolve, whileDelivering }));
  }

  #setDelivering(delivering: boolean): void {
    this.#delivering = delivering;
    if (delivering) return;
    for (let i = 0; i < this.#spaceWaiters.length; ) {
      const waiter = this.#spaceWaiters[i]!;
      if (waiter.whileDelivering) {
        this.#spaceWaiters.splice(i, 1);
        waiter.resolve();
      } else i++;
    }
  }

  /** Queues an item; false (and counted as dropped) when the queue is full or stopping. */
  enqueue(item: ExportItem): boolean {
    if (this.offer(item)) return true;
    const { metrics, name } = this.#o;
    metrics.exporterSpansDropped.inc({ exporter: name, reason: 'queue_full' }, item.spanCount);
    this.#rateLimited.warn('queue_full', { exporter: name, queuedSpans: this.#queuedSpans }, 'export queue full: spans dropped');
    item.onDone?.(false);
    return false;
  }

  /** Queues an item when there is room (and not stopping); false, and nothing else done, otherwise. */
  offer(item: ExportItem): boolean {
    const { metrics, name } = this.#o;
    if (this.#stopping || !this.hasRoom(item.spanCount)) return false;
    this.#queue.push(item);
    this.#queuedSpans += item.spanCount;
    metrics.exporterQueueSpans.set({ exporter: name }, this.#queuedSpans);
    this.#pump();
    return true;
  }

  #pump(): void {
    const concurrency = this.#o.concurrency ?? 4;
    while (this.#queue.length > 0 && this.#inFlight.size < concurrency) {
      const fullBatch = this.#queuedSpans >= this.#o.config.maxBatchSpans;
      if (!fullBatch && !this.#stopping) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.#flushOne();
        }, this.#o.config.batchTimeoutMs);
        return;
      }
      this.#flushOne();
    }
  }

  #flushOne(): void {
    if (this.#queue.length === 0) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch: ExportItem[] = [];
    let spans = 0;
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (batch.length > 0 && spans + next.spanCount > this.#o.config.maxBatchSpans) break;
      batch.push(this.#queue.shift()!);
      spans += next.spanCount;
    }
    const p = this.#send(batch, spans).finally(() => {
      this.#inFlight.delete(p);
      this.#queuedSpans -= spans;
      this.#o.metrics.exporterQueueSpans.set({ exporter: this.#o.name }, this.#queuedSpans);
      while (this.#spaceWaiters.length > 0 && (this.hasRoom(1) || this.#stopping)) this.#spaceWaiters.shift()!.resolve();
      this.#pump();
    });
    this.#inFlight.add(p);
  }

  async #send(batch: readonly ExportItem[], spans: number): Promise<void> {
    const { sender, metrics, name, config } = this.#o;
    const payload = mergeRequests(batch.map((i) => i.payload));
    const deadline = Date.now() + config.maxRetryTimeMs;
    let backoff = this.#o.initialBackoffMs ?? 500;
    const maxBackoff = this.#o.maxBackoffMs ?? 5000;
    for (;;) {
      const result = await sender.send(payload, spans);
      if (result.status === 'success') {
        this.#setDelivering(true);
        metrics.exporterSpansSent.inc({ exporter: name }, spans);
        for (const item of batch) item.onDone?.(true);
        return;
      }
      metrics.exporterSpansFailed.inc({ exporter: name }, spans);
      this.#setDelivering(false);
      const giveUp = result.status === 'failure' || Date.now() + backoff > deadline;
      if (giveUp) {
        const reason = result.status === 'failure' ? 'rejected' : 'retries_exhausted';
        metrics.exporterSpansDropped.inc({ exporter: name, reason }, spans);
        this.#rateLimited.warn(reason, { exporter: name, spans, error: result.error }, 'export failed: spans dropped');
        for (const item of batch) item.onDone?.(false);
        return;
      }
      this.#rateLimited.warn('retry', { exporter: name, spans, error: result.error, backoffMs: backoff }, 'export failed: retrying');
      metrics.exporterRetries.inc({ exporter: name });
      await new Promise((r) => setTimeout(r, backoff * (0.8 + Math.random() * 0.4)));
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }

  /** Sends everything queued (retrying as configured), then stops. */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (!this.#started && this.#queue.length === 0) return;
    while (this.#queue.length > 0 || this.#inFlight.size > 0) {
      this.#pump();
      if (this.#inFlight.size === 0) this.#flushOne();
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    }
    for (const w of this.#spaceWaiters.splice(0)) w.resolve();
    await this.#o.sender.shutdown();
  }

  /** Waits until everything queued now has been sent or dropped. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#inFlight.size > 0) {
      if (this.#queue.length > 0 && this.#inFlight.size === 0) this.#flushOne();
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    }
  }
}
