/**
 * The replay engine: source-agnostic. A source feeds it records (a Kafka
 * record's value, a file's request) on lanes, each lane a stream whose records
 * are roughly in event-time order (a Kafka partition; a sequence of files). The
 * engine assembles whole traces by trace id per lane, in bounded memory,
 * evaluates each trace once and collects the violations of the traces whose
 * earliest span start lies in [from, to).
 *
 * Completeness. Each lane assembles its traces in LiveTraces, as a worker does,
 * on an event-time clock: the lane's read position (the highest record
 * timestamp read so far). A trace is complete when that position passed the
 * trace's last record timestamp by more than trace_max_duration (its idle
 * cut), or at the end of the lane. A record of a trace already evaluated is
 * counted (late_records) and not evaluated on its own, as a worker does with
 * spans past its grace period (Tombstones).
 *
 * Bounds. At most `maxLiveSpans` spans are held; past it the traces read longest
 * ago (of the fullest lane) are evaluated early and their violations marked
 * partial. The set of evaluated trace ids (for late records) keeps the last
 * `completedMemory` ids.
 *
 * Triggers (src/rules/README.md "Evaluation"). When every rule has triggers and passes on a trace that
 * holds none of them, a trace none of whose spans is named like a trigger is
 * skipped whole, never decoded: its verdict is a pass for every rule. The span
 * names come from a byte-level scan (scan.ts), so skipping is never partial.
 *
 * Index. A source with a trace index (the local history's, the Kafka index topic) feeds
 * summaries instead of records (ReplayLane.addSummary: a record's trace, times, span count,
 * whether it holds a trigger, and where the record is). They are assembled exactly as the
 * records would be; a trace that must be evaluated is held until the source fetches its
 * records by location (fetchPending), every other one is counted and never read.
 */
import { NameMatcher, isPlausibleTimeMs, scanPart, splitByTrace, type SpanDecoder } from '../otlp/index.ts';
import { createRuleSet, type CompiledRule, type RuleSet } from '../rules/index.ts';
import { toViolationRecord, type ViolationRecord } from '../violations/violation-record.ts';
import { decodeAndEvaluate, decoderFor } from '../worker/evaluate-trace.ts';
import { LiveTraces, isPartialCut, type LiveTrace } from '../worker/live-traces.ts';
import { EventClock } from '../worker/trace-clock.ts';
import { Tombstones } from '../worker/tombstones.ts';

export const DEFAULT_MAX_LIVE_SPANS = 1_000_000;
export const DEFAULT_COMPLETED_MEMORY = 250_000;

export interface ReplayEngineOptions {
  readonly rules: readonly CompiledRule[];
  /** Traces whose earliest span start is in [fromMs, toMs) are evaluated and reported. */
  readonly fromMs: number;
  readonly toMs: number;
  /** worker.trace_max_duration: how far a trace's records may lie apart. */
  readonly traceMaxDurationMs: number;
  readonly maxLiveSpans?: number;
  readonly completedMemory?: number;
  /** Evaluation budget per trace (worker.evaluation_budget). */
  readonly budgetMs?: number;
  /** Skip traces without trigger names (default true); false evaluates every trace. */
  readonly skipByTriggers?: boolean;
  /** Evaluation time written into the records (default Date.now() at evaluation). */
  readonly now?: () => number;
}

/** A violation found by replay: the violation record plus the day it is counted on. */
export interface ReplayViolation extends ViolationRecord {
  /** UTC day (YYYY-MM-DD) of the trace's earliest span start. */
  readonly day: string;
  /** The trace's earliest span start, unix ms. */
  readonly trace_start_unix_ms: number;
}

export interface ReplayCounters {
  /** Records (or file requests) read. */
  records: number;
  /** Spans read, whatever their time. */
  spansRead: number;
  /** Traces with their earliest span start in [from, to). */
  tracesScanned: number;
  spansScanned: number;
  /** Of those, skipped whole because they hold no trigger. */
  tracesSkipped: number;
  /** Of those, evaluated early (live span bound reached). */
  tracesPartial: number;
  /** Traces outside [from, to) (read for the margins, not evaluated). */
  tracesOutside: number;
  /** Spans whose start time is 0 or not plausible (src/otlp isPlausibleTimeMs): a trace is placed by its other spans. */
  spansWithoutTime: number;
  /** Traces none of whose spans has a plausible start: not placed in any day, not evaluated (reported apart). */
  tracesWithoutTime: number;
  /** The earliest plausible record time read (unix ms; Infinity when none): where the history read starts. */
  firstRecordMs: number;
  lateRecords: number;
  /** Records known from an index only (never read). */
  indexedRecords: number;
  /** Records read by their location in the index (of the traces that had to be evaluated). */
  fetchedRecords: number;
  undecodableRecords: number;
  budgetExceededTraces: number;
  violations: number;
}

/** A record known from an index: fetched by its location when the trace must be evaluated. */
class Located {
  readonly location: unknown;
  constructor(location: unknown) {
    this.location = location;
  }
}

/** What a lane keeps of a live trace besides its counts. */
interface Assembling {
  /** The trace's records in the order read: payloads, or the locations of those known from an index. */
  readonly payloads: Array<Uint8Array | Located>;
  located: number;
  earliestStartMs: number;
  triggered: boolean;
}

/** One record as an index describes it (ReplayLane.addSummary). */
export interface RecordSummary {
  readonly traceId: string;
  /** The record's event-time timestamp, unix ms. */
  readonly timestampMs: number;
  readonly earliestStartMs: number;
  readonly spanCount: number;
  readonly untimedSpans: number;
  /** Some span in the record is named like a trigger of the engine's rules (triggerNames). */
  readonly triggered: boolean;
  /** Where the record is, for the source's fetch (fetchPending). */
  readonly location: unknown;
}

/** What a source counted from an index alone (ReplayEngine.countIndexed). */
export interface IndexedCounts {
  readonly records: number;
  readonly spansRead: number;
  readonly spansWithoutTime: number;
  readonly tracesInRange: number;
  readonly spansInRange: number;
  readonly tracesOutside: number;
  /** Traces without any plausible span start: the first ids, and how many more. */
  readonly untimedTraceIds: readonly string[];
  readonly moreUntimedTraces: number;
  readonly firstRecordMs: number;
}

/** Reads records by their locations, in the order given (verifying them). */
export type RecordFetcher = (locations: readonly unknown[]) => Promise<Uint8Array[]>;

type ReplayTrace = LiveTrace<Assembling>;

/** Ids of traces without a plausible start time kept for the report. */
const UNTIMED_IDS_KEPT = 10;

export class ReplayEngine {
  readonly counters: ReplayCounters = {
    records: 0,
    spansRead: 0,
    tracesScanned: 0,
    spansScanned: 0,
    tracesSkipped: 0,
    tracesPartial: 0,
    tracesOutside: 0,
    spansWithoutTime: 0,
    tracesWithoutTime: 0,
    firstRecordMs: Infinity,
    lateRecords: 0,
    indexedRecords: 0,
    fetchedRecords: 0,
    undecodableRecords: 0,
    budgetExceededTraces: 0,
    violations: 0,
  };
  readonly ruleIds: readonly string[];
  readonly fromMs: number;
  readonly toMs: number;
  readonly traceMaxDurationMs: number;
  /** The rules' trigger span names when traces without them are skipped (a pass for every rule); null when every trace is evaluated. */
  readonly triggerNames: ReadonlySet<string> | null;
  readonly #o: ReplayEngineOptions;
  readonly #ruleSet: RuleSet;
  /** Only the attributes the rules name are decoded, and only of the spans whose attributes they read. */
  readonly #decoder: SpanDecoder;
  /** Non-null when traces without trigger names may be skipped. */
  readonly #matcher: NameMatcher | null;
  readonly #maxLiveSpans: number;
  /** Traces evaluated, for late records. */
  readonly #completed: Tombstones;
  readonly #lanes = new Set<ReplayLane>();
  readonly #violations = new Map<string, ReplayViolation>();
  /** The first traces without a plausible start time (ids, for the report). */
  readonly untimedTraceIds: string[] = [];
  /** Complete traces waiting for their records to be fetched (fetchPending). */
  #pending: Array<{ trace: ReplayTrace; partial: boolean }> = [];
  #liveSpans = 0;

  constructor(options: ReplayEngineOptions) {
    this.#o = options;
    this.fromMs = options.fromMs;
    this.toMs = options.toMs;
    this.traceMaxDurationMs = options.traceMaxDurationMs;
    const enabled = options.rules.filter((r) => r.definition.enabled);
    this.ruleIds = enabled.map((r) => r.definition.id);
    this.#ruleSet = createRuleSet(enabled);
    this.#decoder = decoderFor(enabled);
    const skippable = enabled.length > 0 && enabled.every((r) => r.triggers !== null && r.passesWithoutTriggers);
    this.triggerNames = skippable && options.skipByTriggers !== false ? new Set(enabled.flatMap((r) => [...(r.triggers ?? [])])) : null;
    this.#matcher = this.triggerNames === null ? null : new NameMatcher(this.triggerNames);
    this.#maxLiveSpans = options.maxLiveSpans ?? DEFAULT_MAX_LIVE_SPANS;
    this.#completed = new Tombstones(options.completedMemory ?? DEFAULT_COMPLETED_MEMORY);
  }

  /** True when traces without trigger names are skipped undecoded. */
  get skipsByTriggers(): boolean {
    return this.#matcher !== null;
  }

  get liveSpans(): number {
    return this.#liveSpans;
  }

  /** A new lane: records read from it should be roughly in event-time order. */
  lane(): ReplayLane {
    const lane = new ReplayLane(this);
    this.#lanes.add(lane);
    return lane;
  }

  /** Violations so far, by trace start then rule order. */
  violations(): ReplayViolation[] {
    return sortViolations([...this.#violations.values()], this.ruleIds);
  }

  /** Ends every lane still open (evaluates what they hold). A source with an index fetches what is pending first. */
  finish(): void {
    for (const lane of this.#lanes) lane.end();
    if (this.#pending.length > 0) throw new Error('replay: traces known from an index were not fetched');
  }

  // ---- used by ReplayLane

  /** @internal */
  scan(payload: Uint8Array): ReturnType<typeof scanPart> | undefined {
    try {
      return scanPart(payload, this.#matcher);
    } catch {
      return undefined;
    }
  }

  /** @internal */
  isCompleted(traceId: string): boolean {
    return this.#completed.has(traceId);
  }

  /** @internal */
  addLive(spans: number): void {
    this.#liveSpans += spans;
    if (this.#liveSpans > this.#maxLiveSpans) this.#relieve();
  }

  /** @internal */
  laneEnded(lane: ReplayLane): void {
    this.#lanes.delete(lane);
  }

  /** Evaluates the oldest traces of the fullest lanes early, until under the bound. */
  #relieve(): void {
    while (this.#liveSpans > this.#maxLiveSpans) {
      let fullest: ReplayLane | undefined;
      for (const lane of this.#lanes) if (fullest === undefined || lane.liveSpans > fullest.liveSpans) fullest = lane;
      if (fullest === undefined || !fullest.evictOldest()) return;
    }
  }

  /** @internal The trace was cut (complete, or partial when cut early): evaluate it once. */
  complete(trace: ReplayTrace): void {
    const partial = trace.cut !== undefined && isPartialCut(trace.cut);
    this.#liveSpans -= trace.spans;
    this.#completed.mark(trace.id);
    const c = this.counters;
    const { earliestStartMs } = trace.value;
    if (earliestStartMs === Infinity) {
      c.tracesWithoutTime++;
      if (this.untimedTraceIds.length < UNTIMED_IDS_KEPT) this.untimedTraceIds.push(trace.id);
      return;
    }
    if (!(earliestStartMs >= this.fromMs && earliestStartMs < this.toMs)) {
      c.tracesOutside++;
      return;
    }
    c.tracesScanned++;
    c.spansScanned += trace.spans;
    if (partial) c.tracesPartial++;
    if (this.#matcher !== null && !trace.value.triggered) {
      c.tracesSkipped++;
      return;
    }
    if (trace.value.located > 0) {
      this.#pending.push({ trace, partial });
      return;
    }
    this.#evaluate(trace.value.payloads as Uint8Array[], earliestStartMs, partial);
  }

  /**
   * Counts what a source learnt from an index without assembling it (traces holding no
   * trigger: a pass for every rule): records, spans and traces, as complete() would count them.
   */
  countIndexed(delta: IndexedCounts): void {
    const c = this.counters;
    c.records += delta.records;
    c.indexedRecords += delta.records;
    c.spansRead += delta.spansRead;
    c.spansWithoutTime += delta.spansWithoutTime;
    c.tracesScanned += delta.tracesInRange;
    c.spansScanned += delta.spansInRange;
    c.tracesSkipped += delta.tracesInRange;
    c.tracesOutside += delta.tracesOutside;
    c.tracesWithoutTime += delta.untimedTraceIds.length + delta.moreUntimedTraces;
    if (delta.firstRecordMs < c.firstRecordMs) c.firstRecordMs = delta.firstRecordMs;
    for (const id of delta.untimedTraceIds) if (this.untimedTraceIds.length < UNTIMED_IDS_KEPT) this.untimedTraceIds.push(id);
  }

  /** Fetches the records of the complete traces known from an index, and evaluates them. */
  async fetchPending(fetch: RecordFetcher): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending;
      this.#pending = [];
      const locations: unknown[] = [];
      for (const { trace } of batch) for (const p of trace.value.payloads) if (p instanceof Located) locations.push(p.location);
      const fetched = await fetch(locations);
      this.counters.fetchedRecords += fetched.length;
      let k = 0;
      for (const { trace, partial } of batch) {
        const payloads = trace.value.payloads.map((p) => (p instanceof Located ? fetched[k++]! : p));
        this.#evaluate(payloads, trace.value.earliestStartMs, partial);
      }
    }
  }

  #evaluate(payloads: readonly Uint8Array[], earliestStartMs: number, partial: boolean): void {
    const c = this.counters;
    const { result, undecodable } = decodeAndEvaluate(payloads, this.#ruleSet, this.#decoder, this.#o.budgetMs);
    c.undecodableRecords += undecodable;
    if (result.budgetExceeded === true) c.budgetExceededTraces++;
    if (result.violations.length === 0) return;
    const now = this.#o.now?.() ?? Date.now();
    const day = utcDay(earliestStartMs);
    for (const v of result.violations) {
      if (this.#violations.has(v.violationId)) continue;
      c.violations++;
      this.#violations.set(v.violationId, { ...toViolationRecord(v, partial, now), day, trace_start_unix_ms: earliestStartMs });
    }
  }
}

/** One stream of records in rough event-time order: a Kafka partition, a sequence of files. */
export class ReplayLane {
  readonly #engine: ReplayEngine;
  /** The lane's read position: the highest record timestamp read. */
  readonly #clock = new EventClock();
  readonly #traces: LiveTraces<Assembling>;
  #ended = false;

  constructor(engine: ReplayEngine) {
    this.#engine = engine;
    // Complete once the read position passed a trace's last record by trace_max_duration; no other bound per trace.
    this.#traces = new LiveTraces<Assembling>(
      { idleMs: engine.traceMaxDurationMs, maxDurationMs: Infinity, rootIdleMs: 0, maxSpans: Infinity, maxBytes: Infinity },
      this.#clock,
    );
  }

  /** The highest record timestamp read, unix ms. */
  get positionMs(): number {
    return this.#clock.now();
  }

  /** Spans of the traces this lane holds. */
  get liveSpans(): number {
    return this.#traces.spans;
  }

  /**
   * One record: an ExportTraceServiceRequest (any number of traces) and its
   * timestamp (the Kafka record's; for files, omitted: the earliest span start).
   * Trace ids come from the spans, never from a key.
   */
  addRecord(payload: Uint8Array, timestampMs?: number): void {
    if (this.#ended) throw new Error('replay lane already ended');
    const engine = this.#engine;
    engine.counters.records++;
    const scan = engine.scan(payload);
    if (scan === undefined) {
      engine.counters.undecodableRecords++;
      return;
    }
    if (scan.spanCount === 0) return;
    if (!scan.multipleTraces) {
      this.#addPart(scan.traceId, payload, scan, timestampMs);
    } else {
      const split = splitByTrace(payload);
      if (!split.ok) {
        engine.counters.undecodableRecords++;
        return;
      }
      for (const part of split.traces) {
        const partScan = engine.scan(part.payload);
        if (partScan !== undefined) this.#addPart(part.traceId, part.payload, partScan, timestampMs);
      }
    }
    for (const trace of this.#traces.cut()) this.#engine.complete(trace);
  }

  #addPart(traceId: string, payload: Uint8Array, scan: NonNullable<ReturnType<ReplayEngine['scan']>>, timestampMs: number | undefined): void {
    const engine = this.#engine;
    if (traceId === '') return;
    const c = engine.counters;
    c.spansRead += scan.spanCount;
    c.spansWithoutTime += scan.untimedSpans;
    let ts = timestampMs !== undefined && isPlausibleTimeMs(timestampMs) ? timestampMs : scan.earliestStartMs;
    if (Number.isFinite(ts)) {
      if (ts < c.firstRecordMs) c.firstRecordMs = ts;
    } else ts = Number.isFinite(this.positionMs) ? this.positionMs : 0;
    this.#clock.observe(ts);
    let trace = this.#traces.get(traceId);
    if (trace === undefined) {
      if (engine.isCompleted(traceId)) {
        engine.counters.lateRecords++;
        return;
      }
      trace = this.#traces.open(traceId, { payloads: [], located: 0, earliestStartMs: Infinity, triggered: false }, 0, 0, ts);
    }
    const value = trace.value;
    value.payloads.push(payload);
    if (scan.earliestStartMs < value.earliestStartMs) value.earliestStartMs = scan.earliestStartMs;
    if (scan.triggered) value.triggered = true;
    this.#traces.append(trace, scan.spanCount, payload.length, false, ts);
    engine.addLive(scan.spanCount);
  }

  /**
   * One record known from an index: assembled exactly as addRecord would assemble the record
   * (same clock, same late records), read only if its trace must be evaluated (fetchPending).
   */
  addSummary(s: RecordSummary): void {
    if (this.#ended) throw new Error('replay lane already ended');
    const engine = this.#engine;
    const c = engine.counters;
    c.records++;
    c.indexedRecords++;
    if (s.spanCount === 0 || s.traceId === '') return;
    c.spansRead += s.spanCount;
    c.spansWithoutTime += s.untimedSpans;
    let ts = isPlausibleTimeMs(s.timestampMs) ? s.timestampMs : s.earliestStartMs;
    if (Number.isFinite(ts)) {
      if (ts < c.firstRecordMs) c.firstRecordMs = ts;
    } else ts = Number.isFinite(this.positionMs) ? this.positionMs : 0;
    this.#clock.observe(ts);
    let trace = this.#traces.get(s.traceId);
    if (trace === undefined) {
      if (engine.isCompleted(s.traceId)) {
        c.lateRecords++;
        return;
      }
      trace = this.#traces.open(s.traceId, { payloads: [], located: 0, earliestStartMs: Infinity, triggered: false }, 0, 0, ts);
    }
    const value = trace.value;
    value.payloads.push(new Located(s.location));
    value.located++;
    if (s.earliestStartMs < value.earliestStartMs) value.earliestStartMs = s.earliestStartMs;
    if (s.triggered) value.triggered = true;
    this.#traces.append(trace, s.spanCount, 0, false, ts);
    engine.addLive(s.spanCount);
    for (const t of this.#traces.cut()) engine.complete(t);
  }

  /** @internal Evaluates the live trace appended to longest ago early (partial). False when none is live. */
  evictOldest(): boolean {
    const trace = this.#traces.cutOldest('max_live_spans');
    if (trace === undefined) return false;
    this.#engine.complete(trace);
    return true;
  }

  /** End of the lane's input: every trace it holds is complete. Idempotent. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const trace of this.#traces.cutAll('end_of_input').sort((a, b) => a.lastIdleAt - b.lastIdleAt)) this.#engine.complete(trace);
    this.#engine.laneEnded(this);
  }
}

/** Creates an engine (the factory the sources and the CLI use). */
export function createReplayEngine(options: ReplayEngineOptions): ReplayEngine {
  return new ReplayEngine(options);
}

/** UTC day, YYYY-MM-DD. */
/** Sorts `violations` in place by trace start, trace id, then the order of `ruleIds`. */
export function sortViolations(violations: ReplayViolation[], ruleIds: readonly string[]): ReplayViolation[] {
  const order = new Map(ruleIds.map((id, i) => [id, i]));
  return violations.sort(
    (a, b) =>
      a.trace_start_unix_ms - b.trace_start_unix_ms ||
      (a.trace_id < b.trace_id ? -1 : a.trace_id > b.trace_id ? 1 : 0) ||
      (order.get(a.rule_id) ?? 0) - (order.get(b.rule_id) ?? 0),
  );
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
