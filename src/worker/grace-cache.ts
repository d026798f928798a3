/**
 * The late-span grace: an evaluated trace is kept for `graceMs` (wall time) so
 * that a span arriving late re-opens it and the whole trace is evaluated again.
 * Bounded by the bytes of payload kept: past `maxBytes` the trace used longest
 * ago leaves early. A trace leaving its grace (or evicted) discards its
 * payloads and becomes a tombstone; its records are released once its
 * violation exports are also done (acknowledged or dropped), so that a record
 * is acknowledged only when nothing of its trace can still be lost.
 */
import { LRUCache } from 'lru-cache';
import { Tombstones } from './tombstones.ts';

/**
 * Records as numbers, two per record: partition, offset (exact below 2^53). A
 * worker keeps one per record for the grace period (hundreds of thousands), and
 * numbers in an array are no objects of their own for the collector to trace.
 */
export type OffsetPairs = readonly number[];

/** What an assembled trace holds: what it hands to its grace period once evaluated. */
export interface AssembledTrace {
  readonly traceId: string;
  readonly partition: number;
  readonly payloads: Uint8Array[];
  readonly spanCount: number;
  readonly bytes: number;
  /** The records this trace holds (released when its grace period ends), as OffsetPairs. */
  readonly offsets: number[];
  /** Per record (in the order of offsets): its timestamp and the parts of its transport record (ConsumedRecord.parts), as pairs. */
  readonly times: number[];
  /** Cut before it was complete (a bound, not idle time). */
  readonly partial: boolean;
}

/** A trace in its grace period. */
export interface GraceEntry {
  readonly traceId: string;
  readonly partition: number;
  payloads: Uint8Array[];
  readonly spanCount: number;
  readonly bytes: number;
  offsets: number[];
  times: number[];
  readonly emitted: Set<string>;
  readonly expiresAtMs: number;
  readonly overflow: boolean;
  readonly partial: boolean;
  /** Violation exports not yet acknowledged (or dropped). */
  pendingExports: number;
  /** Out of its grace period (expired, evicted, re-opened or dropped). */
  expired: boolean;
}

export interface GraceOptions {
  readonly graceMs: number;
  /** Bytes of payload kept. */
  readonly maxBytes: number;
  /** Trace ids remembered after their grace period. */
  readonly maxTombstones: number;
  readonly now: () => number;
  /** Records that may be acknowledged. */
  readonly onRelease: (offsets: OffsetPairs) => void;
  /** Payloads no longer kept, each once. */
  readonly onDiscard: (payloads: readonly Uint8Array[]) => void;
}

export type GraceLookup = GraceEntry | 'after_grace' | undefined;

export class GraceCache {
  readonly #o: GraceOptions;
  readonly #entries: LRUCache<string, GraceEntry>;
  readonly #tombstones: Tombstones;
  /** Entries in order of expiry (stale ones, replaced or gone, are skipped). */
  readonly #expiry: Array<{ traceId: string; expiresAtMs: number }> = [];
  #expiryHead = 0;

  constructor(options: GraceOptions) {
    this.#o = options;
    this.#tombstones = new Tombstones(options.maxTombstones);
    this.#entries = new LRUCache<string, GraceEntry>({
      maxSize: options.maxBytes,
      sizeCalculation: (d) => Math.max(1, d.bytes + 200),
      dispose: (d, _key, reason) => {
        if (reason === 'set') return;
        this.#o.onDiscard(d.payloads);
        d.payloads = [];
        d.expired = true;
        this.#tombstones.mark(d.traceId);
        if (d.pendingExports === 0) {
          this.#o.onRelease(d.offsets);
          d.offsets = [];
        }
      },
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * What a record of a trace that is not live meets: its grace entry (re-open it,
   * unless it overflowed), 'after_grace' (a tombstone), or undefined (a new trace).
   */
  lookup(traceId: string): GraceLookup {
    const entry = this.#entries.get(traceId);
    if (entry !== undefined) return entry;
    return this.#tombstones.has(traceId) ? 'after_grace' : undefined;
  }

  /**
   * The trace was evaluated with the violation ids `emitted`: its grace period starts.
   * `overflow`: it was cut at a per-trace bound (max spans or bytes), so later spans are
   * counted, not re-evaluated.
   */
  admit(trace: AssembledTrace, overflow: boolean, emitted: Set<string>): GraceEntry {
    const expiresAtMs = this.#o.now() + this.#o.graceMs;
    const entry: GraceEntry = {
      traceId: trace.traceId,
      partition: trace.partition,
      payloads: trace.payloads,
      spanCount: trace.spanCount,
      bytes: trace.bytes,
      offsets: trace.offsets,
      times: trace.times,
      emitted,
      expiresAtMs,
      overflow,
      partial: trace.partial,
      pendingExports: 0,
      expired: false,
    };
    this.#entries.set(trace.traceId, entry);
    this.#expiry.push({ traceId: trace.traceId, expiresAtMs });
    return entry;
  }

  /** A late span re-opens the trace: its payloads and records now belong to the live trace. */
  reopen(entry: GraceEntry): void {
    entry.offsets = [];
    entry.times = [];
    entry.payloads = [];
    entry.expired = true;
    this.#entries.delete(entry.traceId);
  }

  /** A violation export of the entry's trace started. */
  exportStarted(entry: GraceEntry): void {
    entry.pendingExports++;
  }

  /** A violation export finished (acknowledged or dropped). */
  exportDone(entry: GraceEntry): void {
    entry.pendingExports--;
    if (entry.expired && entry.pendingExports === 0) {
      this.#o.onRelease(entry.offsets);
      entry.offsets = [];
    }
  }

  /** Ends the grace periods that are over. */
  expire(): void {
    const now = this.#o.now();
    const q = this.#expiry;
    while (this.#expiryHead < q.length && q[this.#expiryHead]!.expiresAtMs <= now) {
      const { traceId, expiresAtMs } = q[this.#expiryHead++]!;
      const d = this.#entries.peek(traceId);
      if (d !== undefined && d.expiresAtMs === expiresAtMs) this.#entries.delete(traceId);
    }
    if (this.#expiryHead > 1024 && this.#expiryHead * 2 > q.length) {
      q.splice(0, this.#expiryHead);
      this.#expiryHead = 0;
    }
  }

  /** Forgets the traces of partitions not kept: their records are another owner's now. */
  dropPartitions(keep: (partition: number) => boolean): void {
    for (const [id, d] of [...this.#entries.entries()]) {
      if (!keep(d.partition)) {
        d.offsets = [];
        this.#entries.delete(id);
      }
    }
  }
}
