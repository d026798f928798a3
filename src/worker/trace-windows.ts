/**
 * Trace assembly for one worker, as a trace passes through it:
 *
 *   live (LiveTraces, cut by idle time, root idle time, maximum duration, spans
 *   or bytes, on a PausableClock)
 *   → being evaluated (spans arriving meanwhile wait, and are added again after)
 *   → late-span grace (GraceCache: a late span re-opens the trace; violation
 *     exports are counted so that records are released only when done)
 *   → tombstone (a span later still is counted, not evaluated alone).
 *
 * Idle clocks stop while the worker is paused (spans are waiting in the
 * transport, not absent); the maximum duration runs on. Pure logic with an
 * injected clock: the Worker drives it, calling advance() every tick.
 */
import type { ConsumedRecord } from '../transport/transport.ts';
import { GraceCache, type AssembledTrace, type GraceEntry, type OffsetPairs } from './grace-cache.ts';
import { LiveTraces, isPartialCut, type CutReason, type LiveTrace } from './live-traces.ts';
import { PausableClock } from './trace-clock.ts';

export type { CutReason } from './live-traces.ts';
export type { GraceEntry, OffsetPairs } from './grace-cache.ts';

/**
 * How often the worker calls advance(), ms: a trace is evaluated within a tick
 * of its deadline. 50 ms keeps that well under the idle timeout's own slack.
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
  /** How often the worker calls advance(), ms (default DEFAULT_TICK_MS). */
  readonly tickMs?: number;
  /** Bytes of evaluated traces kept for re-evaluation within the grace period. */
  readonly maxDecidedBytes?: number;
  /** Trace ids remembered after their grace period, so later spans are counted, not evaluated alone. */
  readonly maxTombstones?: number;
  readonly now?: () => number;
}

/** A trace ready to be evaluated. */
export interface CompletedTrace extends AssembledTrace {
  readonly reason: CutReason;
  /** Violation ids already emitted for this trace (re-evaluation after a late span). */
  readonly emitted: Set<string>;
  readonly reevaluation: boolean;
}

/** What the worker keeps of a live trace besides its counts. */
interface Assembling {
  readonly partition: number;
  readonly payloads: Uint8Array[];
  readonly offsets: number[];
  /** Per record: timestamp, parts (AssembledTrace.times). */
  readonly times: number[];
  readonly emitted: Set<string>;
  readonly reevaluation: boolean;
  /** Re-opened after a partial cut: stays partial. */
  readonly partial: boolean;
}

export type AddOutcome =
  | { kind: 'live' }
  | { kind: 'reopened' }
  | { kind: 'held' }
  | { kind: 'cut'; trace: CompletedTrace }
  | { kind: 'late_ignored'; reason: 'after_grace' | 'over_limit' };

const LIVE: AddOutcome = { kind: 'live' };
const REOPENED: AddOutcome = { kind: 'reopened' };
const HELD: AddOutcome = { kind: 'held' };

export class TraceWindows {
  readonly #clock: PausableClock;
  readonly #live: LiveTraces<Assembling>;
  /** Traces being evaluated: spans arriving meanwhile wait here. */
  readonly #evaluating = new Map<string, ConsumedRecord[]>();
  readonly #grace: GraceCache;
  /** Called when records may be released (their trace's grace is over and its exports are done). */
  onRelease: (offsets: OffsetPairs) => void = () => undefined;
  /**
   * Called with payloads no longer kept (a trace's grace ended or it was evicted, its
   * partition was lost), each once. The payloads of records add() did not keep (late_ignored)
   * are the caller's.
   */
  onDiscard: (payloads: readonly Uint8Array[]) => void = () => undefined;

  constructor(options: WindowOptions) {
    const now = options.now ?? Date.now;
    this.#clock = new PausableClock(now);
    this.#live = new LiveTraces<Assembling>(
      {
        idleMs: options.idleMs,
        maxDurationMs: options.maxDurationMs,
        rootIdleMs: options.rootIdleMs,
        maxSpans: options.maxSpans,
        maxBytes: options.maxBytes ?? Infinity,
      },
      this.#clock,
    );
    this.#grace = new GraceCache({
      graceMs: options.graceMs,
      maxBytes: options.maxDecidedBytes ?? 256 * 1024 * 1024,
      maxTombstones: options.maxTombstones ?? 200_000,
      now,
      onRelease: (offsets) => this.onRelease(offsets),
      onDiscard: (payloads) => this.onDiscard(payloads),
    });
  }

  get liveTraces(): number {
    return this.#live.size;
  }

  get liveSpans(): number {
    return this.#live.spans;
  }

  get decidedTraces(): number {
    return this.#grace.size;
  }

  get paused(): boolean {
    return this.#clock.paused;
  }

  /** Nothing live, being evaluated or in its grace period: advance() has nothing to do until the next add(). */
  get quiet(): boolean {
    return this.#live.size === 0 && this.#evaluating.size === 0 && this.#grace.size === 0;
  }

  /** Stops idle clocks (the worker paused the transport). */
  pause(): void {
    this.#clock.pause();
  }

  resume(): void {
    this.#clock.resume();
  }

  /** Adds one record; `hasRoot` when it holds a parentless span (only needed with rootIdleMs). */
  add(record: ConsumedRecord, hasRoot = false): AddOutcome {
    const held = this.#evaluating.get(record.traceId);
    if (held !== undefined) {
      held.push(record);
      return HELD;
    }
    const offset = Number(record.offset);
    let trace = this.#live.get(record.traceId);
    let outcome = LIVE;
    if (trace === undefined) {
      const grace = this.#grace.lookup(record.traceId);
      if (grace === 'after_grace' || grace?.overflow === true) {
        this.onRelease([record.partition, offset]);
        return { kind: 'late_ignored', reason: grace === 'after_grace' ? 'after_grace' : 'over_limit' };
      }
      if (grace === undefined) {
        trace = this.#live.open(record.traceId, {
          partition: record.partition,
          payloads: [],
          offsets: [],
          times: [],
          emitted: new Set(),
          reevaluation: false,
          partial: false,
        });
      } else {
        // Re-opened: the grace entry's records now belong to the live trace.
        const value: Assembling = {
          partition: record.partition,
          payloads: grace.payloads,
          offsets: grace.offsets,
          times: grace.times,
          emitted: grace.emitted,
          reevaluation: true,
          partial: grace.partial,
        };
        this.#grace.reopen(grace);
        trace = this.#live.open(record.traceId, value, grace.spanCount, grace.bytes);
        outcome = REOPENED;
      }
    }
    trace.value.payloads.push(record.payload);
    trace.value.offsets.push(record.partition, offset);
    trace.value.times.push(record.timestampMs, record.parts ?? 1);
    const cut = this.#live.append(trace, record.spanCount, record.payload.length, hasRoot);
    return cut === undefined ? outcome : { kind: 'cut', trace: this.#complete(trace, cut) };
  }

  #complete(t: LiveTrace<Assembling>, reason: CutReason): CompletedTrace {
    const v = t.value;
    this.#evaluating.set(t.id, []);
    return {
      traceId: t.id,
      partition: v.partition,
      payloads: v.payloads,
      spanCount: t.spans,
      bytes: t.bytes,
      offsets: v.offsets,
      times: v.times,
      reason,
      partial: v.partial || isPartialCut(reason),
      emitted: v.emitted,
      reevaluation: v.reevaluation,
    };
  }

  /** Traces whose deadline has passed, and grace periods that ended. */
  advance(): CompletedTrace[] {
    const out = this.#live.cut().map((t) => this.#complete(t, t.cut!));
    this.#grace.expire();
    return out;
  }

  /**
   * The evaluation of `trace` finished: it enters its grace period with the
   * violation ids emitted so far. Returns the grace entry (count its violation
   * exports on it) and the records that arrived meanwhile (the caller adds them
   * again, which re-opens the trace).
   */
  settle(trace: CompletedTrace, emitted: Set<string>): { entry: GraceEntry; arrived: ConsumedRecord[] } {
    const arrived = this.#evaluating.get(trace.traceId) ?? [];
    this.#evaluating.delete(trace.traceId);
    const overflow = trace.reason === 'max_spans' || trace.reason === 'max_bytes';
    return { entry: this.#grace.admit(trace, overflow, emitted), arrived };
  }

  /** A violation export of the entry's trace started. */
  exportStarted(entry: GraceEntry): void {
    this.#grace.exportStarted(entry);
  }

  /** A violation export finished (acknowledged or dropped). */
  exportDone(entry: GraceEntry): void {
    this.#grace.exportDone(entry);
  }

  /** Every live trace, for a final evaluation at shutdown. */
  drain(): CompletedTrace[] {
    return this.#live.cutAll('shutdown').map((t) => this.#complete(t, 'shutdown'));
  }

  /** Forgets everything of partitions this worker no longer owns (Kafka rebalance). */
  dropPartitions(keep: (partition: number) => boolean): number {
    let dropped = 0;
    for (const t of [...this.#live.values()]) {
      if (keep(t.value.partition)) continue;
      this.#live.remove(t);
      this.onDiscard(t.value.payloads);
      dropped++;
    }
    this.#grace.dropPartitions(keep);
    return dropped;
  }
}
