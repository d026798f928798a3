/**
 * A bounded export queue in front of a PayloadSender: batches payloads up to
 * max_batch_spans (or batch_timeout), sends a few batches at once, retries
 * retryable failures with exponential backoff for up to max_retry_time, splits
 * a batch downstream refuses back into its entries so that only refused entries
 * are lost, and drops (counted by reason, logged at a limited rate) what cannot
 * be queued or delivered.
 * At shutdown it goes on sending what it holds until abandon() (the pipeline's
 * shutdown_timeout): what is left then is given up at once, in-flight calls included.
 * Used by the forwarder and by the workers' violation spans.
 */
import type { Component } from '../component.ts';
import type { DownstreamConfig } from '../config/index.ts';
import { mergeRequests } from '../otlp/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { PayloadSender, SendResult } from './otlp-grpc-sender.ts';

export interface ExportItem {
  /** ExportTraceServiceRequest protobuf. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /**
   * Called once: true when downstream acknowledged it, false when it was dropped. `abandoned`:
   * given up at shutdown (abandon()), neither refused nor out of retries: with keepAbandoned the
   * caller leaves it for another reader (it is not counted as dropped).
   */
  readonly onDone?: (delivered: boolean, abandoned?: boolean) => void;
}

/** Consecutive export attempts failing retryably (downstream not reached or not answering) before health() says unreachable. */
const UNREACHABLE_AFTER_FAILURES = 3;

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
  /** Batches in flight at once. */
  readonly concurrency?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * Once downstream refused every entry of REFUSED_BATCHES_BEFORE_WHOLE_DROPS split
   * batches in a row, a refused batch is split again only this often (a probe);
   * the others are dropped whole. Default 30 s.
   */
  readonly splitProbeIntervalMs?: number;
  /**
   * What abandon() does with what is left: false (default), dropped and counted (reason
   * `shutdown`); true, only handed back (onDone(false, true)): with Kafka, left unacknowledged so
   * that the partition's next reader sends it.
   */
  readonly keepAbandoned?: boolean;
}

/** sender.send raced against abandon(). */
const ABANDONED = Symbol('abandoned');

/** Split batches in a row whose every entry downstream refused before it is taken to refuse everything. */
const REFUSED_BATCHES_BEFORE_WHOLE_DROPS = 3;

/** What sending one batch came to, across the parts of its splits. */
interface Outcome {
  delivered: number;
  split: boolean;
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
  /** Split batches in a row of which downstream took nothing. */
  #refusedBatches = 0;
  #lastSplitAt = 0;
  #abandoned = false;
  #inFlightEntries = 0;
  /** The waits abandon() ends at once; each leaves the set when it ends on its own (no reaction outlives its wait). */
  readonly #abandonWaiters = new Set<() => void>();
  /** Export attempts in a row that failed retryably, and the last one's error. */
  #failures = 0;
  #lastError = '';
  #failingSince = 0;

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

  /**
   * Whether downstream is reachable: false once UNREACHABLE_AFTER_FAILURES export attempts in
   * a row failed retryably (not answering, unreachable, UNAVAILABLE), until one succeeds. A
   * refusal (downstream answered) does not count: it is reachable.
   */
  health(): { reachable: true } | { reachable: false; error: string; since: string } {
    return this.#failures < UNREACHABLE_AFTER_FAILURES ? { reachable: true } : { reachable: false, error: this.#lastError, since: new Date(this.#failingSince).toISOString() };
  }

  /** Queues an item; false (and counted as dropped) when the queue is full or stopping. */
  enqueue(item: ExportItem): boolean {
    if (this.offer(item)) return true;
    const { metrics, name } = this.#o;
    if (this.#abandoned) {
      this.#giveUp([item], item.spanCount);
      return false;
    }
    metrics.exporterSpansDropped.inc({ exporter: name, reason: 'queue_full' }, item.spanCount);
    this.#rateLimited.warn('queue_full', { exporter: name, queuedSpans: this.#queuedSpans }, 'export queue full: spans dropped');
    item.onDone?.(false);
    return false;
  }

  /** Queues an item when there is room (and not stopping); false, and nothing else done, otherwise. */
  offer(item: ExportItem): boolean {
    if (this.#stopping || !this.hasRoom(item.spanCount)) return false;
    this.#push(item);
    return true;
  }

  #push(item: ExportItem): void {
    this.#queue.push(item);
    this.#queuedSpans += item.spanCount;
    this.#o.metrics.exporterQueueSpans.set({ exporter: this.#o.name }, this.#queuedSpans);
    this.#pump();
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
    this.#inFlightEntries += batch.length;
    const p = this.#sendBatch(batch, spans).finally(() => {
      this.#inFlightEntries -= batch.length;
      this.#inFlight.delete(p);
      this.#queuedSpans -= spans;
      this.#o.metrics.exporterQueueSpans.set({ exporter: this.#o.name }, this.#queuedSpans);
      while (this.#spaceWaiters.length > 0 && (this.hasRoom(1) || this.#stopping)) this.#spaceWaiters.shift()!.resolve();
      this.#pump();
    });
    this.#inFlight.add(p);
  }

  /**
   * A batch downstream refuses as not retryable is split back into its entries so
   * that only the refused entries are dropped (see #send). A downstream that refuses
   * whatever it is sent (broken, or refusing every request with a status that could
   * have been about the payload) would cost about two requests per entry: after
   * REFUSED_BATCHES_BEFORE_WHOLE_DROPS split batches in a row of which it took
   * nothing, refused batches are dropped whole, and split again once per
   * splitProbeIntervalMs to see whether it takes some entries again.
   */
  async #sendBatch(batch: readonly ExportItem[], spans: number): Promise<void> {
    const refusingAll = this.#refusedBatches >= REFUSED_BATCHES_BEFORE_WHOLE_DROPS;
    const split = !refusingAll || Date.now() - this.#lastSplitAt >= (this.#o.splitProbeIntervalMs ?? 30_000);
    const outcome: Outcome = { delivered: 0, split: false };
    await this.#send(batch, spans, split, outcome);
    if (outcome.delivered > 0) {
      this.#refusedBatches = 0;
    } else if (outcome.split) {
      // Every entry refused: downstream takes nothing now.
      this.#setDelivering(false);
      if (++this.#refusedBatches === REFUSED_BATCHES_BEFORE_WHOLE_DROPS) {
        this.#o.logger.warn(
          { exporter: this.#o.name, batches: this.#refusedBatches },
          'downstream refused every entry of the last batches: refused batches are now dropped whole, split again now and then to check',
        );
      }
    }
  }

  /**
   * Sends `items` as one request, retrying retryable failures with backoff (or
   * after the delay downstream asked for) for up to max_retry_time. When downstream
   * refuses the request as not retryable and the refusal may concern its content,
   * the items are sent apart (when `split`): each half as its own request,
   * recursively down to single items, so that only the items downstream refuses are
   * dropped (about 2·log2(n) requests more per refused item among n; none when
   * nothing is refused). Every item's onDone fires exactly once, delivered or dropped.
   */
  async #send(items: readonly ExportItem[], spans: number, split: boolean, outcome: Outcome): Promise<void> {
    const { metrics, name } = this.#o;
    const result = await this.#sendRetrying(items, spans);
    if (result === ABANDONED) {
      this.#giveUp(items, spans);
      return;
    }
    if (result.status === 'success') {
      outcome.delivered += items.length;
      for (const item of items) item.onDone?.(true);
      return;
    }
    const detail = { exporter: name, spans, entries: items.length, code: result.code, error: result.error };
    if (result.status === 'retryable') {
      this.#drop(items, spans, 'retries_exhausted', result.code, detail);
      return;
    }
    if (result.payloadSpecific && split && items.length > 1) {
      outcome.split = true;
      this.#lastSplitAt = Date.now();
      metrics.exporterBatchSplits.inc({ exporter: name });
      this.#rateLimited.warn(`split:${result.code ?? ''}`, detail, 'downstream refused a merged export: sending its entries apart');
      const half = Math.ceil(items.length / 2);
      for (const part of [items.slice(0, half), items.slice(half)]) {
        await this.#send(part, part.reduce((n, i) => n + i.spanCount, 0), split, outcome);
      }
      return;
    }
    // Refused for every request alike, never sent, or while downstream refuses everything.
    if (!result.payloadSpecific || !split) this.#setDelivering(false);
    this.#drop(items, spans, 'rejected', result.code, detail);
  }

  /**
   * One request of `items` (a lone item's own bytes, uncopied), retried while it
   * fails retryably and max_retry_time allows: its last result. The merged bytes
   * live only as long as this call, not while the parts of a split are sent.
   */
  async #sendRetrying(items: readonly ExportItem[], spans: number): Promise<SendResult | typeof ABANDONED> {
    const { sender, metrics, name, config } = this.#o;
    if (this.#abandoned) return ABANDONED;
    const payload = items.length === 1 ? items[0]!.payload : mergeRequests(items.map((i) => i.payload));
    const deadline = Date.now() + config.maxRetryTimeMs;
    let backoff = this.#o.initialBackoffMs ?? 500;
    const maxBackoff = this.#o.maxBackoffMs ?? 5000;
    for (;;) {
      const result = await this.#untilAbandoned(sender.send(payload, spans));
      if (result === ABANDONED) return result;
      if (result.status === 'success') {
        this.#failures = 0;
        this.#setDelivering(true);
        metrics.exporterSpansSent.inc({ exporter: name }, spans);
        return result;
      }
      metrics.exporterSpansFailed.inc({ exporter: name }, spans);
      if (result.status !== 'retryable') {
        this.#failures = 0;
        return result;
      }
      if (this.#failures++ === 0) this.#failingSince = Date.now();
      this.#lastError = result.code === undefined ? result.error : `${result.code}: ${result.error}`;
      this.#setDelivering(false);
      const wait = result.retryAfterMs ?? backoff * (0.8 + Math.random() * 0.4);
      if (Date.now() + wait > deadline) return result;
      const detail = { exporter: name, spans, entries: items.length, code: result.code, error: result.error, backoffMs: Math.round(wait) };
      this.#rateLimited.warn('retry', detail, 'export failed: retrying');
      metrics.exporterRetries.inc({ exporter: name });
      let timer: NodeJS.Timeout | undefined;
      const slept = await this.#untilAbandoned(new Promise((r) => (timer = setTimeout(r, wait))));
      clearTimeout(timer);
      if (slept === ABANDONED) return ABANDONED;
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  }

  /** `promise`'s outcome, or ABANDONED as soon as abandon() is called. */
  #untilAbandoned<T>(promise: Promise<T>): Promise<T | typeof ABANDONED> {
    if (this.#abandoned) return Promise.resolve(ABANDONED);
    return new Promise<T | typeof ABANDONED>((resolve, reject) => {
      const wake = () => resolve(ABANDONED);
      this.#abandonWaiters.add(wake);
      promise.then(
        (value) => {
          this.#abandonWaiters.delete(wake);
          resolve(value);
        },
        (err: unknown) => {
          this.#abandonWaiters.delete(wake);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  #drop(items: readonly ExportItem[], spans: number, reason: 'rejected' | 'retries_exhausted', code: string | undefined, detail: Record<string, unknown>): void {
    const { metrics, name } = this.#o;
    metrics.exporterSpansDropped.inc(code === undefined ? { exporter: name, reason } : { exporter: name, reason, code }, spans);
    const message = reason === 'rejected' ? 'export refused (not retryable): spans dropped' : 'export failed: retries exhausted, spans dropped';
    this.#rateLimited.warn(`${reason}:${code ?? ''}`, detail, message);
    for (const item of items) item.onDone?.(false);
  }

  /**
   * Queues an item at shutdown, past max_queue_spans (its bytes are held already, by the
   * transport that hands it over); once abandoned, given up (see keepAbandoned).
   */
  offerAtShutdown(item: ExportItem): void {
    if (this.#abandoned) this.#giveUp([item], item.spanCount);
    else this.#push(item);
  }

  /** Hands back what abandon() gave up: counted as dropped (reason shutdown) unless keepAbandoned. */
  #giveUp(items: readonly ExportItem[], spans: number): void {
    const { metrics, name } = this.#o;
    if (this.#o.keepAbandoned !== true) metrics.exporterSpansDropped.inc({ exporter: name, reason: 'shutdown' }, spans);
    for (const item of items) item.onDone?.(false, true);
  }

  /**
   * Stops at once (the shutdown deadline): nothing more is sent or retried, what is queued and
   * in flight is given up (see keepAbandoned). Returns how much that was.
   */
  abandon(): AbandonedExports {
    if (this.#abandoned) return { spans: 0, entries: 0 };
    const left = { spans: this.#queuedSpans, entries: this.#queue.length + this.#inFlightEntries };
    this.#abandoned = true;
    this.#stopping = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const queued = this.#queue.splice(0);
    const spans = queued.reduce((n, i) => n + i.spanCount, 0);
    this.#queuedSpans -= spans;
    this.#o.metrics.exporterQueueSpans.set({ exporter: this.#o.name }, this.#queuedSpans);
    this.#giveUp(queued, spans);
    // In-flight batches give up theirs at once; their calls downstream end with the channel.
    for (const wake of this.#abandonWaiters) wake();
    this.#abandonWaiters.clear();
    void this.#o.sender.shutdown().catch(() => undefined);
    for (const w of this.#spaceWaiters.splice(0)) w.resolve();
    return left;
  }

  /** Sends everything queued (retrying as configured) until abandon(), then stops. */
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
    // Abandoned: calls still open downstream are not waited for (abandon() closes the sender).
    await this.#untilAbandoned(this.#o.sender.shutdown());
  }

  /** Waits until everything queued now has been sent or dropped. */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#inFlight.size > 0) {
      if (this.#queue.length > 0 && this.#inFlight.size === 0) this.#flushOne();
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    }
  }
}
