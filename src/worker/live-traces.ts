/**
 * Live traces: the traces being assembled, keyed by trace id, each with the
 * times of its first and last append, and the explicit cuts that end them.
 * Used by the worker (TraceWindows, on a PausableClock) and by replay (one per
 * lane, on an EventClock), so both cut a trace by the same rules.
 *
 * A trace is cut:
 * - `idle`: no append for more than `idleMs` of the idle clock;
 * - `root_idle`: more than `rootIdleMs` of the idle clock after its root span
 *   arrived (0: off);
 * - `max_duration`: more than `maxDurationMs` after its first append;
 * - `max_spans` / `max_bytes`: at the append that reaches the bound;
 * - and on the caller's word: `max_live_spans` (the oldest, to stay in bounded
 *   memory), `shutdown`, `end_of_input`.
 * When several deadlines passed before `cut()` looked, the earliest names the cut.
 *
 * The clocks do not go back, so deadlines come in the order of the appends they
 * are measured from: appends, first appends and root appends are queued as they
 * happen, and a cut looks only at the fronts, so it costs what it cuts (an
 * append given an earlier time of its own waits behind those made before it). The value of a trace (its payloads and whatever the
 * caller keeps) is the caller's; this module counts spans and bytes.
 */
import type { TraceClock } from './trace-clock.ts';

export type CutReason = 'idle' | 'root_idle' | 'max_duration' | 'max_spans' | 'max_bytes' | 'max_live_spans' | 'shutdown' | 'end_of_input';

/** A trace cut before it was complete: by a bound, not by idle time or the end of the input. */
export function isPartialCut(reason: CutReason): boolean {
  return reason !== 'idle' && reason !== 'root_idle' && reason !== 'end_of_input';
}

export interface CutLimits {
  readonly idleMs: number;
  /** Infinity: none. */
  readonly maxDurationMs: number;
  /** 0: off. */
  readonly rootIdleMs: number;
  /** Infinity: none. */
  readonly maxSpans: number;
  /** Infinity: none. */
  readonly maxBytes: number;
}

export class LiveTrace<T> {
  readonly id: string;
  readonly value: T;
  spans: number;
  bytes: number;
  /** Clock `now` at the first append. */
  readonly firstAt: number;
  /** Idle clock at the latest append (the highest, for appends given their own time). */
  lastIdleAt: number;
  /** Idle clock when the root span arrived. */
  rootIdleAt: number | undefined;
  /** Why it was cut; undefined while live. */
  cut: CutReason | undefined;
  /** No longer live (cut or removed). */
  gone = false;
  /** Appends so far: the one an entry of the append queue stands for. */
  appends = 0;

  constructor(id: string, value: T, spans: number, bytes: number, firstAt: number, idleAt: number) {
    this.id = id;
    this.value = value;
    this.spans = spans;
    this.bytes = bytes;
    this.firstAt = firstAt;
    this.lastIdleAt = idleAt;
    this.rootIdleAt = undefined;
    this.cut = undefined;
  }
}

/**
 * Trace ids in the order of one of their deadlines, with the time it is measured
 * from. Ids and numbers only, so that the traces cut meanwhile are not kept alive
 * by the queue; an entry whose trace is gone (or re-opened since) is skipped.
 */
class DeadlineQueue {
  #ids: string[] = [];
  #times: number[] = [];
  #head = 0;

  push(id: string, time: number): void {
    this.#ids.push(id);
    this.#times.push(time);
  }

  /** The front entry's trace, when it is live and the entry is its own (`timeOf` it). */
  front<T>(traces: ReadonlyMap<string, LiveTrace<T>>, timeOf: (t: LiveTrace<T>) => number | undefined): LiveTrace<T> | undefined {
    const ids = this.#ids;
    const times = this.#times;
    for (; this.#head < ids.length; this.#head++) {
      const t = traces.get(ids[this.#head]!);
      if (t !== undefined && timeOf(t) === times[this.#head]) break;
    }
    if (this.#head > 1024 && this.#head * 2 > ids.length) {
      ids.splice(0, this.#head);
      times.splice(0, this.#head);
      this.#head = 0;
    }
    return this.#head < ids.length ? traces.get(ids[this.#head]!) : undefined;
  }

  clear(): void {
    this.#ids = [];
    this.#times = [];
    this.#head = 0;
  }
}

/** What cut() returns when nothing is cut (most calls). */
const NONE: ReadonlyArray<never> = Object.freeze([]);

/**
 * Traces in the order of their appends, an entry per append; an entry is the
 * trace's latest while the trace is live and has had no append since. The
 * entries hold the traces: one is dropped within an idle timeout of its trace's
 * last append, when the traces appended before are cut.
 */
class AppendQueue<T> {
  #traces: Array<LiveTrace<T>> = [];
  #appends: number[] = [];
  #head = 0;

  push(t: LiveTrace<T>): void {
    this.#traces.push(t);
    this.#appends.push(t.appends);
  }

  /** The live trace appended to longest ago. */
  front(): LiveTrace<T> | undefined {
    const traces = this.#traces;
    const appends = this.#appends;
    let h = this.#head;
    while (h < traces.length && (traces[h]!.gone || traces[h]!.appends !== appends[h])) h++;
    if (h > 1024 && h * 2 > traces.length) {
      traces.splice(0, h);
      appends.splice(0, h);
      h = 0;
    }
    this.#head = h;
    return traces[h];
  }

  clear(): void {
    this.#traces = [];
    this.#appends = [];
    this.#head = 0;
  }
}

const firstAt = <T>(t: LiveTrace<T>): number => t.firstAt;
const rootIdleAt = <T>(t: LiveTrace<T>): number | undefined => t.rootIdleAt;

export class LiveTraces<T> {
  readonly #limits: CutLimits;
  readonly #clock: TraceClock;
  /** In order of first append. */
  readonly #traces = new Map<string, LiveTrace<T>>();
  readonly #byLast = new AppendQueue<T>();
  readonly #byFirst = new DeadlineQueue();
  readonly #byRoot = new DeadlineQueue();
  #spans = 0;

  constructor(limits: CutLimits, clock: TraceClock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get size(): number {
    return this.#traces.size;
  }

  /** Spans held by live traces. */
  get spans(): number {
    return this.#spans;
  }

  get(id: string): LiveTrace<T> | undefined {
    return this.#traces.get(id);
  }

  /** Live traces, in order of first append. */
  values(): IterableIterator<LiveTrace<T>> {
    return this.#traces.values();
  }

  /**
   * Starts trace `id` (not live) holding `value`, with the spans and bytes it
   * already holds (a trace re-opened); `at`: the event's own time (default: the clock's).
   */
  open(id: string, value: T, spans = 0, bytes = 0, at?: number): LiveTrace<T> {
    const t = new LiveTrace(id, value, spans, bytes, at ?? this.#clock.now(), at ?? this.#clock.idleNow());
    this.#traces.set(id, t);
    this.#byLast.push(t);
    this.#spans += spans;
    if (this.#limits.maxDurationMs !== Infinity) this.#byFirst.push(id, t.firstAt);
    return t;
  }

  /**
   * Appends to a live trace; `root` when the spans include its root, `at` the
   * event's own time (default: the clock's). Returns the cut when a per-trace
   * bound is reached (the trace is then no longer live), else undefined.
   */
  append(t: LiveTrace<T>, spans: number, bytes: number, root = false, at?: number): CutReason | undefined {
    const idleAt = at ?? this.#clock.idleNow();
    if (idleAt > t.lastIdleAt) t.lastIdleAt = idleAt;
    t.appends++;
    this.#byLast.push(t);
    t.spans += spans;
    t.bytes += bytes;
    this.#spans += spans;
    const limits = this.#limits;
    if (root && t.rootIdleAt === undefined && limits.rootIdleMs > 0) {
      t.rootIdleAt = idleAt;
      this.#byRoot.push(t.id, idleAt);
    }
    if (t.spans >= limits.maxSpans) return this.#cut(t, 'max_spans');
    if (t.bytes >= limits.maxBytes) return this.#cut(t, 'max_bytes');
    return undefined;
  }

  /** The traces whose idle, root idle or maximum duration deadline has passed, cut. */
  cut(): ReadonlyArray<LiveTrace<T>> {
    const { idleMs, maxDurationMs, rootIdleMs } = this.#limits;
    const now = this.#clock.now();
    const idleNow = this.#clock.idleNow();
    let out: Array<LiveTrace<T>> | undefined;
    const idleBefore = idleNow - idleMs;
    for (let t = this.#byLast.front(); t !== undefined && t.lastIdleAt < idleBefore; t = this.#byLast.front()) {
      (out ??= []).push(t);
      this.#cut(t, this.#earliest(t, now, idleNow));
    }
    if (maxDurationMs !== Infinity) {
      const firstBefore = now - maxDurationMs;
      for (let t = this.#byFirst.front(this.#traces, firstAt); t !== undefined && t.firstAt < firstBefore; t = this.#byFirst.front(this.#traces, firstAt)) {
        (out ??= []).push(t);
        this.#cut(t, this.#earliest(t, now, idleNow));
      }
    }
    if (rootIdleMs > 0) {
      const rootBefore = idleNow - rootIdleMs;
      for (let t = this.#byRoot.front(this.#traces, rootIdleAt); t !== undefined && t.rootIdleAt! < rootBefore; t = this.#byRoot.front(this.#traces, rootIdleAt)) {
        (out ??= []).push(t);
        this.#cut(t, this.#earliest(t, now, idleNow));
      }
    }
    return out ?? NONE;
  }

  /** The deadline of `t` passed longest ago (ties: idle, max_duration, root_idle). */
  #earliest(t: LiveTrace<T>, now: number, idleNow: number): CutReason {
    const { idleMs, maxDurationMs, rootIdleMs } = this.#limits;
    let reason: CutReason = 'idle';
    let over = idleNow - (t.lastIdleAt + idleMs);
    const maxOver = now - (t.firstAt + maxDurationMs);
    if (maxOver > over) {
      reason = 'max_duration';
      over = maxOver;
    }
    if (t.rootIdleAt !== undefined && idleNow - (t.rootIdleAt + rootIdleMs) > over) reason = 'root_idle';
    return reason;
  }

  /** Cuts the trace appended to longest ago, for `reason`; undefined when none is live. */
  cutOldest(reason: CutReason): LiveTrace<T> | undefined {
    const t = this.#byLast.front();
    if (t !== undefined) this.#cut(t, reason);
    return t;
  }

  /** Cuts every live trace, for `reason`, in order of first append. */
  cutAll(reason: CutReason): Array<LiveTrace<T>> {
    const out = [...this.#traces.values()];
    for (const t of out) this.#cut(t, reason);
    this.#byLast.clear();
    this.#byFirst.clear();
    this.#byRoot.clear();
    return out;
  }

  /** Forgets a live trace without cutting it. */
  remove(t: LiveTrace<T>): void {
    if (t.gone) return;
    t.gone = true;
    this.#traces.delete(t.id);
    this.#spans -= t.spans;
  }

  #cut(t: LiveTrace<T>, reason: CutReason): CutReason {
    this.remove(t);
    t.cut = reason;
    return reason;
  }
}
