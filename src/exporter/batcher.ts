/**
 * The batcher: takes entries from the queue's head into requests of up to
 * downstream.max_batch_spans (a smaller one once batch_timeout passed since it could have
 * started one, or at once when stopping), keeps up to `concurrency` requests in flight through
 * the next ExportSender, and settles each request with what came back.
 */
import type { ExportQueue } from './export-queue.ts';
import { exportRequest, type ExportSender } from './export-sender.ts';
import type { Settlement } from './settle.ts';

export interface BatcherOptions {
  readonly queue: ExportQueue;
  readonly next: ExportSender;
  readonly settlement: Settlement;
  readonly maxBatchSpans: number;
  readonly batchTimeoutMs: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** Aborted by abandon(): what is in flight is given up at once. */
  readonly signal: AbortSignal;
}

export class Batcher {
  readonly #o: BatcherOptions;
  readonly #inFlight = new Set<Promise<void>>();
  #inFlightEntries = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: BatcherOptions) {
    this.#o = options;
  }

  /** Entries in requests in flight. */
  get inFlightEntries(): number {
    return this.#inFlightEntries;
  }

  /** Starts what requests there is room for: full ones at once, a partial one after batch_timeout (at once when stopping). */
  pump(): void {
    const { queue, concurrency, maxBatchSpans, batchTimeoutMs } = this.#o;
    while (queue.length > 0 && this.#inFlight.size < concurrency) {
      const fullBatch = queue.queuedSpans >= maxBatchSpans;
      if (!fullBatch && !queue.stopping) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.#sendOne();
        }, batchTimeoutMs);
        return;
      }
      this.#sendOne();
    }
  }

  #sendOne(): void {
    const { queue, next, settlement, signal } = this.#o;
    if (queue.length === 0) return;
    this.cancelTimer();
    const request = exportRequest(queue.take(this.#o.maxBatchSpans));
    this.#inFlightEntries += request.items.length;
    const p = next
      .send(request, signal)
      .then((result) => settlement.settle(request, result))
      .finally(() => {
        this.#inFlightEntries -= request.items.length;
        this.#inFlight.delete(p);
        queue.release(request.spans);
        this.pump();
      });
    this.#inFlight.add(p);
  }

  cancelTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sends everything queued and waits for it (the queue is stopping: partial requests go at once). */
  async drain(): Promise<void> {
    const { queue } = this.#o;
    while (queue.length > 0 || this.#inFlight.size > 0) {
      this.pump();
      if (this.#inFlight.size === 0) this.#sendOne();
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    }
  }

  /** Waits until everything queued now has been sent or dropped. */
  async flush(): Promise<void> {
    const { queue } = this.#o;
    while (queue.length > 0 || this.#inFlight.size > 0) {
      if (queue.length > 0 && this.#inFlight.size === 0) this.#sendOne();
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    }
  }
}
