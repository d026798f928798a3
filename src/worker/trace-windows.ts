/**
 * Trace assembly for one worker: live traces in bounded windows, then a grace
 * period in which a late span re-opens its trace, then a tombstone so that a
 * span later still is counted rather than mistaken for a new trace.
 *
 * A trace is complete when none of its spans arrived for `idleMs`; it is cut at
 * `maxDurationMs` after its first span arrived, or at `maxSpans`; optionally it
 * completes `rootIdleMs` after its root span arrived. Idle clocks stop while the
 * worker is paused (spans are waiting in the transport, not absent). Deadlines
 * live in a coarse timer wheel (one bucket per tick), not one timer per trace.
 * Pure logic with an injected clock: the Worker drives it.
 */
import { LRUCache } from 'lru-cache';
import type { ConsumedRecord } from '../transport/transport.ts';

/**
 * Records as numbers, two per record: partition, offset (exact below 2^53). A
 * worker keeps one per record for the grace period (hundreds of thousands), and
 * numbers in an array are no objects of their own for the collector to trace.
 */
export type OffsetPairs = readonly number[];

export type CutReason = 'idle' | 'root_idle' | 'max_duration' | 'max_spans' | 'max_bytes' | 'shutdown';

/**
 * The wheel's tick, ms: a trace is evaluated within about two ticks of its idle
 * timeout (due in the tick after, looked at when that tick's timer fires). 50 ms
 * keeps that well under the idle timeout's own slack; a tick costs little.
 */
export const DEFAULT_TICK_MS = 50;

export interface WindowOptions {
  readonly idleMs: number;
  readonly maxDurationMs: number;
  /** 0: off. */
  readonly rootIdleMs: number;
  readonly maxSpans: number;
  /** Bytes (of OTLP payload) kept per trace; past it the trace is cut like at maxSpans. */
  readonly maxBytes?: number;
  readonly graceMs: number;
  /** How often the wheel is looked at, ms (default DEFAULT_TICK_MS). */
  readonly tickMs?: number;
  /** Bytes of evaluated traces kept for re-evaluation within the grace period. */
  readonly maxDecidedBytes?: number;
  /** Trace ids remembered after their grace period, so later spans are counted, not evaluated alone. */
  readonly maxTombstones?: number;
  readonly now?: () => number;
}

/** A trace ready to be evaluated. */
export interface CompletedTrace {
  readonly traceId: string;
  readonly partition: number;
  readonly payloads: Uint8Array[];
  readonly spanCount: number;
  readonly bytes: number;
  /** The records this trace holds (released when its grace period ends), as OffsetPairs. */
  readonly offsets: number[];
  readonly reason: CutReason;
  /** Cut before it was idle (a bound, not idle time). */
  readonly partial: boolean;
  /** Violation ids already emitted for this trace (re-evaluation after a late span). */
  readonly emitted: Set<string>;
  readonly reevaluation: boolean;
}

interface LiveTrace {
  readonly traceId: string;
  readonly partition: number;
  payloads: Uint8Array[];
  spanCount: number;
  bytes: number;
  offsets: number[];
  readonly firstArrivalMs: number;
  lastArrivalMs: number;
  /** Paused time accumulated up to lastArrivalMs. */
  pausedAtLastArrival: number;
  rootArrivalMs: number | undefined;
  pausedAtRoot: number;
  emitted: Set<string>;
  reevaluation: boolean;
  /** When reopened after a partial cut, stays partial. */
  partial: boolean;
  /** The wheel tick this trace is due to be looked at (older wheel entries are stale). */
  tick: number;
}

/** A trace in its grace period (opaque to callers). */
export type GraceEntry = object;

interface Decided {
  readonly traceId: string;
  readonly partition: number;
  payloads: Uint8Array[];
  spanCount: number;
  bytes: number;
  offsets: number[];
  emitted: Set<string>;
  expiresAtMs: number;
  /** Cut at max_spans: later spans are counted, not re-evaluated. */
  overflow: boolean;
  partial: boolean;
  /** Violation exports not yet acknowledged (or dropped). */
  pendingExports: number;
  expired: boolean;
}

export type AddOutcome =
  | { kind: 'live' }
  | { kind: 'reopened' }
  | { kind: 'held' }
  | { kind: 'cut'; trace: CompletedTrace }
  | { kind: 'late_ignored'; reason: 'after_grace' | 'over_limit' };

export class TraceWindows {
  readonly #o: Required<WindowOptions>;
  readonly #live = new Map<string, LiveTrace>();
  /** Traces being evaluated: spans arriving meanwhile wait here. */
  readonly #evaluating = new Map<string, { trace: CompletedTrace; arrived: ConsumedRecord[] }>();
  readonly #decided: LRUCache<string, Decided>;
  readonly #tombstones: LRUCache<string, true>;
  readonly #graceQueue: Array<{ traceId: string; expiresAtMs: number }> = [];
  #graceHead = 0;
  readonly #wheel = new Map<number, Set<string>>();
  #wheelTick: number;
  #pausedTotalMs = 0;
  #pausedSince: number | undefined;
  #liveSpans = 0;
  /** Called when records may be released (their trace's grace is over and its exports are done). */
  onRelease: (offsets: OffsetPairs) => void = () => undefined;
  /**
   * Called with payloads no longer kept (a trace's grace ended or it was evicted, its
   * partition was lost), each once. The payloads of records add() did not keep (late_ignored)
   * are the caller's.
   */
  onDiscard: (payloads: readonly Uint8Array[]) => void = () => undefined;

  constructor(options: WindowOptions) {
    this.#o = {
      tickMs: DEFAULT_TICK_MS,
      maxBytes: Infinity,
      maxDecidedBytes: 256 * 1024 * 1024,
      maxTombstones: 200_000,
      now: Date.now,
      ...options,
    };
    this.#wheelTick = Math.floor(this.#o.now() / this.#o.tickMs);
    this.#decided = new LRUCache<string, Decided>({
      maxSize: this.#o.maxDecidedBytes,
      sizeCalculation: (d) => Math.max(1, d.bytes + 200),
      dispose: (d, _key, reason) => {
        if (reason === 'set') return;
        this.onDiscard(d.payloads);
        d.payloads = [];
        d.expired = true;
        this.#tombstones.set(d.traceId, true);
        if (d.pendingExports === 0) {
          this.onRelease(d.offsets);
          d.offsets = [];
        }
      },
    });
    this.#tombstones = new LRUCache<string, true>({ max: this.#o.maxTombstones });
  }

  get liveTraces(): number {
    return this.#live.size;
  }

  get liveSpans(): number {
    return this.#liveSpans;
  }

  get decidedTraces(): number {
    return this.#decided.size;
  }

  get paused(): boolean {
    return this.#pausedSince !== undefined;
  }

  /** Stops idle clocks (the worker paused the transport). */
  pause(): void {
    this.#pausedSince ??= this.#o.now();
  }

  resume(): void {
    if (this.#pausedSince === undefined) return;
    this.#pausedTotalMs += this.#o.now() - this.#pausedSince;
    this.#pausedSince = undefined;
    // Deadlines moved by the paused time: put every live trace where it now belongs.
    for (const t of this.#live.values()) this.#schedule(t, this.#deadline(t)[0]);
  }

  #pausedNow(): number {
    return this.#pausedTotalMs + (this.#pausedSince === undefined ? 0 : this.#o.now() - this.#pausedSince);
  }

  /** Adds one record; `hasRoot` when it holds a parentless span (only needed with rootIdleMs). */
  add(record: ConsumedRecord, hasRoot = false): AddOutcome {
    const now = this.#o.now();
    const offset = Number(record.offset);
    const evaluating = this.#evaluating.get(record.traceId);
    if (evaluating !== undefined) {
      evaluating.arrived.push(record);
      return { kind: 'held' };
    }
    let trace = this.#live.get(record.traceId);
    let outcome: AddOutcome = { kind: 'live' };
    if (trace === undefined) {
      const decided = this.#decided.get(record.traceId);
      if (decided !== undefined && decided.overflow) {
        this.onRelease([record.partition, offset]);
        return { kind: 'late_ignored', reason: 'over_limit' };
      }
      if (decided === undefined && this.#tombstones.has(record.traceId)) {
        this.onRelease([record.partition, offset]);
        return { kind: 'late_ignored', reason: 'after_grace' };
      }
      trace = {
        traceId: record.traceId,
        partition: record.partition,
        payloads: decided?.payloads ?? [],
        spanCount: decided?.spanCount ?? 0,
        bytes: decided?.bytes ?? 0,
        offsets: decided?.offsets ?? [],
        firstArrivalMs: now,
        lastArrivalMs: now,
        pausedAtLastArrival: this.#pausedNow(),
        rootArrivalMs: undefined,
        pausedAtRoot: 0,
        emitted: decided?.emitted ?? new Set(),
        reevaluation: decided !== undefined,
        partial: decided?.partial ?? false,
        tick: 0,
      };
      if (decided !== undefined) {
        // Reopened: the decided entry's records now belong to the live trace.
        decided.offsets = [];
        decided.payloads = [];
        decided.expired = true;
        this.#decided.delete(record.traceId);
        this.#liveSpans += trace.spanCount;
        outcome = { kind: 'reopened' };
      }
      this.#live.set(record.traceId, trace);
      this.#schedule(trace, now + Math.min(this.#o.idleMs, this.#o.maxDurationMs));
    }
    trace.payloads.push(record.payload);
    trace.spanCount += record.spanCount;
    trace.bytes += record.payload.length;
    trace.offsets.push(record.partition, offset);
    trace.lastArrivalMs = now;
    trace.pausedAtLastArrival = this.#pausedNow();
    this.#liveSpans += record.spanCount;
    if (hasRoot && trace.rootArrivalMs === undefined && this.#o.rootIdleMs > 0) {
      trace.rootArrivalMs = now;
      trace.pausedAtRoot = this.#pausedNow();
      this.#schedule(trace, now + this.#o.rootIdleMs);
    }
    if (trace.spanCount >= this.#o.maxSpans) return { kind: 'cut', trace: this.#complete(trace, 'max_spans') };
    if (trace.bytes >= this.#o.maxBytes) return { kind: 'cut', trace: this.#complete(trace, 'max_bytes') };
    return outcome;
  }

  /** The deadline of a live trace and the reason it would be cut then. */
  #deadline(t: LiveTrace): [number, CutReason] {
    const paused = this.#pausedNow();
    const idle = this.#pausedSince !== undefined ? Infinity : t.lastArrivalMs + this.#o.idleMs + (paused - t.pausedAtLastArrival);
    let best: [number, CutReason] = [idle, 'idle'];
    const max = t.firstArrivalMs + this.#o.maxDurationMs;
    if (max < best[0]) best = [max, 'max_duration'];
    if (t.rootArrivalMs !== undefined && this.#pausedSince === undefined) {
      const root = t.rootArrivalMs + this.#o.rootIdleMs + (paused - t.pausedAtRoot);
      if (root < best[0]) best = [root, 'root_idle'];
    }
    return best;
  }

  #schedule(trace: LiveTrace, atMs: number): void {
    const tick = Math.max(Math.ceil(atMs / this.#o.tickMs), this.#wheelTick + 1);
    if (trace.tick !== 0 && trace.tick <= tick && trace.tick > this.#wheelTick) return; // already looked at no later than that
    trace.tick = tick;
    const traceId = trace.traceId;
    let bucket = this.#wheel.get(tick);
    if (bucket === undefined) {
      bucket = new Set();
      this.#wheel.set(tick, bucket);
    }
    bucket.add(traceId);
  }

  #complete(t: LiveTrace, reason: CutReason): CompletedTrace {
    this.#live.delete(t.traceId);
    this.#liveSpans -= t.spanCount;
    const completed: CompletedTrace = {
      traceId: t.traceId,
      partition: t.partition,
      payloads: t.payloads,
      spanCount: t.spanCount,
      bytes: t.bytes,
      offsets: t.offsets,
      reason,
      partial: t.partial || (reason !== 'idle' && reason !== 'root_idle'),
      emitted: t.emitted,
      reevaluation: t.reevaluation,
    };
    this.#evaluating.set(t.traceId, { trace: completed, arrived: [] });
    return completed;
  }

  /** Traces whose deadline has passed, and grace periods that ended. */
  advance(): CompletedTrace[] {
    const now = this.#o.now();
    const nowTick = Math.floor(now / this.#o.tickMs);
    const out: CompletedTrace[] = [];
    while (this.#wheelTick < nowTick) {
      this.#wheelTick++;
      const bucket = this.#wheel.get(this.#wheelTick);
      if (bucket === undefined) continue;
      this.#wheel.delete(this.#wheelTick);
      for (const id of bucket) {
        const t = this.#live.get(id);
        if (t === undefined || t.tick !== this.#wheelTick) continue;
        const [at, reason] = this.#deadline(t);
        if (at <= now) out.push(this.#complete(t, reason));
        else this.#schedule(t, at);
      }
    }
    this.#expireGrace(now);
    return out;
  }

  #expireGrace(now: number): void {
    const q = this.#graceQueue;
    while (this.#graceHead < q.length && q[this.#graceHead]!.expiresAtMs <= now) {
      const { traceId, expiresAtMs } = q[this.#graceHead++]!;
      const d = this.#decided.peek(traceId);
      if (d !== undefined && d.expiresAtMs === expiresAtMs) this.#decided.delete(traceId);
    }
    if (this.#graceHead > 1024 && this.#graceHead * 2 > q.length) {
      q.splice(0, this.#graceHead);
      this.#graceHead = 0;
    }
  }

  /**
   * The evaluation of `trace` finished: it enters its grace period with the
   * violation ids emitted so far. Returns the grace entry (count its violation
   * exports on it) and the records that arrived meanwhile (the caller adds them
   * again, which re-opens the trace).
   */
  settle(trace: CompletedTrace, emitted: Set<string>): { entry: GraceEntry; arrived: ConsumedRecord[] } {
    const waiting = this.#evaluating.get(trace.traceId);
    this.#evaluating.delete(trace.traceId);
    const expiresAtMs = this.#o.now() + this.#o.graceMs;
    const decided: Decided = {
      traceId: trace.traceId,
      partition: trace.partition,
      payloads: trace.payloads,
      spanCount: trace.spanCount,
      bytes: trace.bytes,
      offsets: trace.offsets,
      emitted,
      expiresAtMs,
      overflow: trace.reason === 'max_spans' || trace.reason === 'max_bytes',
      partial: trace.partial,
      pendingExports: 0,
      expired: false,
    };
    this.#decided.set(trace.traceId, decided);
    this.#graceQueue.push({ traceId: trace.traceId, expiresAtMs });
    return { entry: decided, arrived: waiting?.arrived ?? [] };
  }

  /** A violation export of the entry's trace started. */
  exportStarted(entry: GraceEntry): void {
    (entry as Decided).pendingExports++;
  }

  /** A violation export finished (acknowledged or dropped). */
  exportDone(entry: GraceEntry): void {
    const d = entry as Decided;
    d.pendingExports--;
    if (d.expired && d.pendingExports === 0) {
      this.onRelease(d.offsets);
      d.offsets = [];
    }
  }

  /** Every live trace, for a final evaluation at shutdown. */
  drain(): CompletedTrace[] {
    return [...this.#live.values()].map((t) => this.#complete(t, 'shutdown'));
  }

  /** Forgets everything of partitions this worker no longer owns (Kafka rebalance). */
  dropPartitions(keep: (partition: number) => boolean): number {
    let dropped = 0;
    for (const t of [...this.#live.values()]) {
      if (keep(t.partition)) continue;
      this.#live.delete(t.traceId);
      this.#liveSpans -= t.spanCount;
      this.onDiscard(t.payloads);
      dropped++;
    }
    for (const [id, d] of [...this.#decided.entries()]) {
      if (!keep(d.partition)) {
        d.offsets = [];
        this.#decided.delete(id);
      }
    }
    return dropped;
  }
}
