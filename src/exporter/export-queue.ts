/**
 * The queue wrapper: the exporter's entrance, bounded by downstream.max_queue_spans (counting
 * what is queued and what is in flight, until settled), with what happens when it is full
 * chosen at construction (FullQueuePolicy). The batcher takes entries from its head.
 */
import type { Metrics } from '../telemetry/metrics.ts';
import type { DownstreamState } from './downstream-state.ts';
import type { ExportItem } from './export-sender.ts';
import type { Settlement } from './settle.ts';

/**
 * What export() does when the queue is full:
 * - `drop`: the entry is dropped and counted (reason queue_full); the violation spans.
 * - `wait`: it waits for room; once the exporter stops, the entry is left to the caller
 *   (Kafka keeps the backlog; the partition's next reader sends it).
 * - `wait_while_delivering`: it waits only while downstream takes exports; while downstream
 *   fails, or once the exporter stops, it is dropped and counted (the embedded transport fills
 *   and the receiver answers UNAVAILABLE, so a burst is not dropped; a failing downstream does
 *   not hold up rule evaluation, which reads the same transport).
 */
export type FullQueuePolicy = 'drop' | 'wait' | 'wait_while_delivering';

/** What export() did with an entry: queued, dropped (settled and counted), or left to the caller, unsettled. */
export type Admission = 'queued' | 'dropped' | 'left';

export interface ExportQueueOptions {
  readonly name: string;
  readonly maxQueueSpans: number;
  readonly whenFull: FullQueuePolicy;
  readonly downstream: DownstreamState;
  readonly settlement: Settlement;
  readonly metrics: Metrics;
  /** Called after an entry was queued (the batcher's cue). */
  readonly onQueued: () => void;
}

export class ExportQueue {
  readonly #o: ExportQueueOptions;
  readonly #entries: ExportItem[] = [];
  #queuedSpans = 0;
  readonly #spaceWaiters: Array<{ resolve: () => void; whileDelivering: boolean }> = [];
  #stopping = false;
  #abandoned = false;

  constructor(options: ExportQueueOptions) {
    this.#o = options;
    // Waiters that wait only while downstream delivers stop waiting once it does not.
    options.downstream.onNotDelivering(() => {
      for (let i = 0; i < this.#spaceWaiters.length; ) {
        const waiter = this.#spaceWaiters[i]!;
        if (waiter.whileDelivering) {
          this.#spaceWaiters.splice(i, 1);
          waiter.resolve();
        } else i++;
      }
    });
  }

  /** Spans queued and in flight. */
  get queuedSpans(): number {
    return this.#queuedSpans;
  }

  /** Entries waiting to be taken. */
  get length(): number {
    return this.#entries.length;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  hasRoom(spanCount: number): boolean {
    return this.#queuedSpans === 0 || this.#queuedSpans + spanCount <= this.#o.maxQueueSpans;
  }

  /** Hands an entry to the exporter as the full-queue policy says. */
  async export(item: ExportItem): Promise<Admission> {
    const policy = this.#o.whenFull;
    if (policy === 'drop') return this.enqueue(item) ? 'queued' : 'dropped';
    const whileDelivering = policy === 'wait_while_delivering';
    // Callers run concurrently (one per partition): room one waited for may be taken by another first.
    while (!this.offer(item)) {
      if (this.#stopping && !whileDelivering) return 'left';
      if (this.#stopping || (whileDelivering && !this.#o.downstream.delivering)) return this.enqueue(item) ? 'queued' : 'dropped';
      await this.waitForRoom(item.spanCount, whileDelivering);
    }
    return 'queued';
  }

  /** Queues an entry; false (and dropped, counted) when the queue is full or stopping. */
  enqueue(item: ExportItem): boolean {
    if (this.offer(item)) return true;
    if (this.#abandoned) this.#o.settlement.giveUp([item], item.spanCount);
    else this.#o.settlement.queueFull(item, this.#queuedSpans);
    return false;
  }

  /** Queues an entry when there is room (and not stopping); false, and nothing else done, otherwise. */
  offer(item: ExportItem): boolean {
    if (this.#stopping || !this.hasRoom(item.spanCount)) return false;
    this.#push(item);
    return true;
  }

  /**
   * Queues an entry at shutdown, past max_queue_spans (its bytes are held already, by the
   * transport that hands it over); once abandoned, given up.
   */
  offerAtShutdown(item: ExportItem): void {
    if (this.#abandoned) this.#o.settlement.giveUp([item], item.spanCount);
    else this.#push(item);
  }

  /**
   * Resolves when the queue has room again. `whileDelivering`: resolves as well once
   * downstream fails, so that only a slow downstream is waited for, not a failing one.
   */
  waitForRoom(spanCount: number, whileDelivering = false): Promise<void> {
    if (this.hasRoom(spanCount) || this.#stopping || (whileDelivering && !this.#o.downstream.delivering)) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push({ resolve, whileDelivering }));
  }

  /** Takes entries from the head, up to `maxSpans` (at least one). They stay counted until release(). */
  take(maxSpans: number): ExportItem[] {
    const taken: ExportItem[] = [];
    let spans = 0;
    while (this.#entries.length > 0) {
      const next = this.#entries[0]!;
      if (taken.length > 0 && spans + next.spanCount > maxSpans) break;
      taken.push(this.#entries.shift()!);
      spans += next.spanCount;
    }
    return taken;
  }

  /** Taken entries of `spans` spans were settled: their room is free. */
  release(spans: number): void {
    this.#queuedSpans -= spans;
    this.#gauge();
    while (this.#spaceWaiters.length > 0 && (this.hasRoom(1) || this.#stopping)) this.#spaceWaiters.shift()!.resolve();
  }

  /** Nothing more is queued (but at shutdown, offerAtShutdown). */
  stop(): void {
    this.#stopping = true;
  }

  /** Wakes every caller waiting for room (stopping: they find the queue closed). */
  wakeWaiters(): void {
    for (const w of this.#spaceWaiters.splice(0)) w.resolve();
  }

  /** Stops at once: gives up what waits to be taken; what comes later is given up too. */
  abandon(): void {
    this.#abandoned = true;
    this.#stopping = true;
    const waiting = this.#entries.splice(0);
    const spans = waiting.reduce((n, i) => n + i.spanCount, 0);
    this.#queuedSpans -= spans;
    this.#gauge();
    this.#o.settlement.giveUp(waiting, spans);
  }

  #push(item: ExportItem): void {
    this.#entries.push(item);
    this.#queuedSpans += item.spanCount;
    this.#gauge();
    this.#o.onQueued();
  }

  #gauge(): void {
    this.#o.metrics.exporterQueueSpans.set({ exporter: this.#o.name }, this.#queuedSpans);
  }
}
