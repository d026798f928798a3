/**
 * Traces an index says hold no trigger of any rule (a pass for every rule, never read),
 * counted from the index's records alone: the counts a full scan reports for them (traces
 * and spans in range, outside it, without a plausible time). A trace is its records within
 * `traceMaxDurationMs` of the one before (by record time), as the replay lanes assemble
 * them; the records are keyed by a number from the trace id (IndexEntryScratch.idHash), so
 * a trace costs a map entry while it is live, in two generations of trace_max_duration.
 */
import { isPlausibleTimeMs } from '../otlp/index.ts';
import type { IndexedCounts } from './engine.ts';

interface Counting {
  earliestStartMs: number;
  spans: number;
  /** Kept only while the trace has no plausible start (for the report's ids). */
  id: string | undefined;
}

const UNTIMED_IDS_KEPT = 10;

export class IndexCounter {
  readonly #fromMs: number;
  readonly #toMs: number;
  readonly #idleMs: number;
  #current = new Map<number, Counting>();
  #previous = new Map<number, Counting>();
  #generationStartMs = -Infinity;
  #clockMs = -Infinity;
  readonly #counts = { records: 0, spansRead: 0, spansWithoutTime: 0, tracesInRange: 0, spansInRange: 0, tracesOutside: 0, moreUntimedTraces: 0, firstRecordMs: Infinity };
  readonly #untimedIds: string[] = [];

  constructor(fromMs: number, toMs: number, traceMaxDurationMs: number) {
    this.#fromMs = fromMs;
    this.#toMs = toMs;
    this.#idleMs = Math.max(1, traceMaxDurationMs);
  }

  /** One record of a trace without triggers; `traceId` is asked for only while the trace has no plausible start. */
  add(idHash: number, timestampMs: number, earliestStartMs: number, spanCount: number, untimedSpans: number, traceId: () => string): void {
    const c = this.#counts;
    c.records++;
    if (spanCount === 0) return;
    c.spansRead += spanCount;
    c.spansWithoutTime += untimedSpans;
    const ts = isPlausibleTimeMs(timestampMs) ? timestampMs : earliestStartMs;
    if (Number.isFinite(ts)) {
      if (ts < c.firstRecordMs) c.firstRecordMs = ts;
      if (ts > this.#clockMs) this.#clockMs = ts;
    }
    if (this.#clockMs >= this.#generationStartMs + this.#idleMs) this.#rotate();
    let t = this.#current.get(idHash);
    if (t === undefined) {
      t = this.#previous.get(idHash);
      if (t !== undefined) this.#previous.delete(idHash);
      else t = { earliestStartMs: Infinity, spans: 0, id: undefined };
      this.#current.set(idHash, t);
    }
    t.spans += spanCount;
    if (earliestStartMs < t.earliestStartMs) t.earliestStartMs = earliestStartMs;
    if (t.earliestStartMs === Infinity) t.id ??= traceId();
    else t.id = undefined;
  }

  /** The previous generation's traces got no record for trace_max_duration: complete. */
  #rotate(): void {
    for (const t of this.#previous.values()) this.#complete(t);
    this.#previous = this.#current;
    this.#current = new Map();
    this.#generationStartMs = this.#clockMs;
  }

  #complete(t: Counting): void {
    const c = this.#counts;
    if (t.earliestStartMs === Infinity) {
      if (this.#untimedIds.length < UNTIMED_IDS_KEPT && t.id !== undefined) this.#untimedIds.push(t.id);
      else c.moreUntimedTraces++;
    } else if (t.earliestStartMs >= this.#fromMs && t.earliestStartMs < this.#toMs) {
      c.tracesInRange++;
      c.spansInRange += t.spans;
    } else c.tracesOutside++;
  }

  /** Completes every trace still counting; the counts. */
  finish(): IndexedCounts {
    for (const t of this.#previous.values()) this.#complete(t);
    for (const t of this.#current.values()) this.#complete(t);
    this.#previous = new Map();
    this.#current = new Map();
    return { ...this.#counts, untimedTraceIds: this.#untimedIds };
  }
}
