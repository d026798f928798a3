/**
 * The worker: reads its partitions of the transport (consumer group
 * betrace-workers), assembles traces in TraceWindows, evaluates them on the
 * EvaluatorPool, and for each violation not emitted before: exports a violation
 * span downstream, stores the violation, counts it.
 *
 * Acknowledgements: a record is acknowledged to the transport once its
 * trace's grace period ended and the trace's violations were written (Kafka:
 * to the violations topic, then their spans acknowledged downstream and a
 * delivered marker written; see ViolationLedger) or dropped; the transport
 * commits the low watermark.
 *
 * Idle clocks stop while the transport is paused for backpressure and while
 * the consumer's partitions cannot be read or are far behind: an outage or a
 * backlog is not the end of a trace.
 */
import type { Component } from '../component.ts';
import type { QueuedExporter } from '../exporter/index.ts';
import { scanPart } from '../otlp/index.ts';
import type { Violation } from '../rules/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ViolationLedger } from '../violations/kafka-ledger.ts';
import type { IndexedRecord, TraceIndexWriter } from '../transport/kafka-index.ts';
import type { ConsumedRecord, Transport, TransportConsumer } from '../transport/transport.ts';
import type { EvaluatorPool } from './evaluator-pool.ts';
import { PayloadArena } from './payload-arena.ts';
import { DEFAULT_TICK_MS, TraceWindows, type CompletedTrace, type WindowOptions } from './trace-windows.ts';
import { toViolationRecord, type ViolationRecord } from '../violations/violation-record.ts';
import { violationSpansPayload } from '../violations/violation-span.ts';
import type { ViolationSink } from '../violations/violation-store.ts';

/**
 * After an outage, idle clocks stay stopped this much longer: the spans held back meanwhile
 * arrive only then (receivers' spools drain, retrying up to every second; clients retry with
 * their own backoff, the OpenTelemetry SDKs' up to 5 s), and a trace must not be cut before.
 */
const RESUME_GRACE_MS = 10_000;

/**
 * The worker owns its consumer group and its trace windows: start() and shutdown() start and
 * stop those only. The evaluator pool, the exporter and the ledger it uses are started before
 * it and stopped after it by whoever built them (the composition root's lifecycle list).
 */
export interface WorkerOptions {
  readonly transport: Transport;
  readonly group: string;
  /** Started before the worker and stopped after it (the traces left at shutdown are evaluated on it). */
  readonly pool: EvaluatorPool;
  readonly windows: WindowOptions;
  readonly maxLiveTraces: number;
  readonly evaluationBudgetMs: number;
  /** Where violation spans go; undefined when no downstream is configured. Started before the worker. */
  readonly exporter: QueuedExporter | undefined;
  /** Where violation records go (embedded: the store). */
  readonly sinks: readonly ViolationSink[];
  /**
   * Kafka mode: the violations topic, which makes a violation "once" across owners of a partition.
   * Started before the worker; a trace's violations are written to it before its spans go downstream.
   */
  readonly ledger?: ViolationLedger | undefined;
  /**
   * Kafka mode: the trace index. A completed trace's index record is queued at once; its
   * records are acknowledged only once it is written.
   */
  readonly index?: TraceIndexWriter | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Evaluate what is still assembling at shutdown (embedded: nothing would see it again). */
  readonly evaluateOnShutdown: boolean;
  /**
   * At shutdown, once the consumer stopped delivering and every evaluation settled, before the
   * transport's final commit: the builder flushes the exporter, then drains the ledger, so that
   * the commit carries the traces whose violations went out (what is not flushed stays
   * unacknowledged, and the partition's next owner evaluates it again).
   */
  readonly beforeFinalCommit?: () => Promise<void>;
  /**
   * Rule `ruleId` is responsible for a trace going over budget (`stalled`: the watchdog
   * stopped a thread in it; else EvalResponse.overBudgetRuleId); see RuleQuarantine.
   */
  readonly onOverBudget?: (ruleId: string, stalled: boolean) => void;
}

export class Worker implements Component {
  readonly #o: WorkerOptions;
  readonly #windows: TraceWindows;
  /** Payloads are kept in shared memory, which the evaluation threads read in place (payload-arena.ts). */
  readonly #arena = new PayloadArena();
  readonly #consumer: TransportConsumer;
  readonly #rateLimited: RateLimitedLog;
  readonly #inFlight = new Set<Promise<void>>();
  #tick: NodeJS.Timeout | undefined;
  #running = false;
  #owned: ReadonlySet<number> | undefined;
  /** Partitions whose violation ledger was asked for since they were assigned. */
  readonly #prepared = new Set<number>();
  #backpressured = false;
  #stalled = false;
  /** Clocks stay stopped until then after the partitions can be read again (RESUME_GRACE_MS). */
  #stalledUntil = 0;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#windows = new TraceWindows(options.windows);
    const ack = (offsets: readonly number[]) => {
      for (let i = 0; i < offsets.length; i += 2) this.#consumer.ack(offsets[i]!, BigInt(offsets[i + 1]!));
    };
    const index = options.index;
    this.#windows.onRelease = index === undefined ? ack : (offsets) => index.afterWritten(offsets, () => ack(offsets));
    this.#windows.onDiscard = (payloads) => {
      for (const payload of payloads) this.#arena.release(payload);
    };
    this.#rateLimited = new RateLimitedLog(options.logger);
    this.#consumer = options.transport.createConsumer(options.group, {
      onBatch: (partition, records) => this.#onBatch(partition, records),
      copiesPayloads: true, // into the arena, at once (#onBatch)
      onAssigned: (partitions) => this.#onAssigned(partitions),
      drain: () => this.#drain(),
      // Embedded: what the receiver accepted and this worker had not read yet (paused at
      // max_live_traces) is evaluated with the rest at shutdown.
      ...(options.evaluateOnShutdown ? { onUnreadAtShutdown: (partition: number, records: readonly ConsumedRecord[]) => void this.#onBatch(partition, records) } : {}),
    });
  }

  get liveTraces(): number {
    return this.#windows.liveTraces;
  }

  #onAssigned(partitions: readonly number[]): void {
    const owned = new Set(partitions);
    const before = this.#owned ?? new Set<number>();
    this.#owned = owned;
    const dropped = this.#windows.dropPartitions((p) => owned.has(p));
    for (const p of [...this.#prepared]) {
      if (owned.has(p)) continue;
      this.#prepared.delete(p);
      this.#o.ledger?.forget(p);
    }
    for (const p of before) if (!owned.has(p)) this.#o.index?.forget(p);
    if (dropped > 0) this.#o.logger.info({ dropped, partitions }, 'partitions reassigned: traces of lost partitions dropped');
  }

  #onBatch(partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const { metrics } = this.#o;
    if (this.#owned !== undefined && !this.#owned.has(partition)) return Promise.resolve();
    if (this.#o.ledger !== undefined && !this.#prepared.has(partition) && records.length > 0) {
      // The partition's violations since its first record here are read before anything of it is emitted.
      this.#prepared.add(partition);
      void this.#o.ledger.prepare(partition, records[0]!.timestampMs);
    }
    let spans = 0;
    for (const record of records) {
      spans += record.spanCount;
      this.#add({ ...record, payload: this.#arena.copy(record.payload) });
    }
    metrics.workerSpansConsumed.inc(spans);
    this.#updateGauges();
    this.#applyBackpressure();
    return Promise.resolve();
  }

  #add(record: ConsumedRecord): void {
    this.#wake();
    const { metrics } = this.#o;
    const hasRoot = this.#o.windows.rootIdleMs > 0 && (record.rootSpans === undefined ? this.#holdsRoot(record.payload) : record.rootSpans > 0);
    const outcome = this.#windows.add(record, hasRoot);
    switch (outcome.kind) {
      case 'cut':
        metrics.workerForcedCuts.inc({ reason: outcome.trace.reason });
        this.#evaluate(outcome.trace);
        return;
      case 'reopened':
        metrics.workerLateSpans.inc({ outcome: 'reevaluated' }, record.spanCount);
        return;
      case 'late_ignored':
        this.#arena.release(record.payload);
        metrics.workerLateSpans.inc({ outcome: outcome.reason }, record.spanCount);
        return;
      default:
        return;
    }
  }

  /** A parentless span in the record, read from the wire (no decoding on the I/O thread). */
  #holdsRoot(payload: Uint8Array): boolean {
    try {
      return scanPart(payload, null).rootSpans > 0;
    } catch {
      return false;
    }
  }

  #applyBackpressure(): void {
    const live = this.#windows.liveTraces;
    if (!this.#backpressured && live >= this.#o.maxLiveTraces) {
      this.#backpressured = true;
      this.#consumer.pause();
      this.#o.metrics.workerPaused.set(1);
      this.#rateLimited.warn('paused', { liveTraces: live }, 'worker.max_live_traces reached: transport paused');
    } else if (this.#backpressured && live < this.#o.maxLiveTraces * 0.9) {
      this.#backpressured = false;
      this.#consumer.resume();
      this.#o.metrics.workerPaused.set(0);
    }
    this.#pauseClocks();
  }

  /**
   * Idle clocks run only while records can arrive: not paused for backpressure, partitions
   * read and caught up. While a backlog is read, clocks stop only until half of
   * worker.max_live_traces is assembled: past it, traces are cut rather than the worker stalled.
   */
  #pauseClocks(): void {
    const now = Date.now();
    let stalled = this.#consumer.caughtUp?.() === false && this.#windows.liveTraces < this.#o.maxLiveTraces / 2;
    if (stalled) this.#stalledUntil = now + RESUME_GRACE_MS;
    else if (now < this.#stalledUntil) stalled = true;
    if (stalled !== this.#stalled) {
      this.#stalled = stalled;
      if (stalled) this.#rateLimited.warn('stalled', {}, 'partitions cannot be read or are behind: trace idle clocks stopped');
      else this.#o.logger.info('partitions read again: trace idle clocks run');
    }
    const pause = this.#backpressured || stalled;
    if (pause && !this.#windows.paused) this.#windows.pause();
    else if (!pause && this.#windows.paused) this.#windows.resume();
  }

  #updateGauges(): void {
    this.#o.metrics.workerLiveTraces.set(this.#windows.liveTraces);
    this.#o.metrics.workerLiveSpans.set(this.#windows.liveSpans);
    this.#o.metrics.workerPayloadBytes.set(this.#arena.bytes);
  }

  #onTick(): void {
    for (const trace of this.#windows.advance()) {
      if (trace.reason === 'max_duration') this.#o.metrics.workerForcedCuts.inc({ reason: 'max_duration' });
      this.#evaluate(trace);
    }
    this.#arena.trim();
    this.#updateGauges();
    this.#applyBackpressure();
    // Nothing to cut, expire or give back until a record arrives: an idle worker does not wake every tick.
    if (this.#windows.quiet && this.#inFlight.size === 0 && !this.#backpressured && this.#arena.bytes === 0) {
      clearInterval(this.#tick);
      this.#tick = undefined;
    }
  }

  /** Ticks again (a record arrived, an evaluation settled). */
  #wake(): void {
    if (this.#running && this.#tick === undefined) this.#tick = setInterval(() => this.#onTick(), this.#o.windows.tickMs ?? DEFAULT_TICK_MS);
  }

  #evaluate(trace: CompletedTrace): void {
    if (this.#o.index !== undefined) this.#index(this.#o.index, trace);
    const p = this.#evaluateNow(trace).catch((err: unknown) => {
      this.#rateLimited.warn('evaluation_failed', { err, traceId: trace.traceId }, 'trace evaluation failed');
    });
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  /** Queues the trace's index record: its records, their times, its span names (read from the wire). */
  #index(index: TraceIndexWriter, trace: CompletedTrace): void {
    const names = new Set<string>();
    const records: IndexedRecord[] = [];
    for (let i = 0; i < trace.payloads.length; i++) {
      let scan: ReturnType<typeof scanPart>;
      try {
        scan = scanPart(trace.payloads[i]!, null, names);
      } catch {
        continue; // not OTLP: not indexed, so replay reads the record in full
      }
      records.push({
        offset: trace.offsets[2 * i + 1]!,
        timestampMs: trace.times[2 * i]!,
        parts: trace.times[2 * i + 1]!,
        earliestStartMs: scan.earliestStartMs,
        spanCount: scan.spanCount,
        untimedSpans: scan.untimedSpans,
      });
    }
    index.write(trace.partition, { traceId: trace.traceId, names: [...names], records });
  }

  async #evaluateNow(trace: CompletedTrace): Promise<void> {
    const { metrics, pool, logger } = this.#o;
    let violations: Violation[] = [];
    try {
      const result = await pool.evaluate(trace.payloads, this.#o.evaluationBudgetMs);
      violations = result.violations;
      metrics.ruleEvaluationDuration.observe(result.seconds);
      for (const id of result.budgetExceededRuleIds) metrics.ruleEvaluationBudgetExceeded.inc({ rule_id: id });
      if (result.spansIn > result.uniqueSpans) metrics.workerDuplicateSpans.inc(result.spansIn - result.uniqueSpans);
      if (result.droppedAttributes > 0) metrics.workerAttributeLimits.inc({ limit: 'attributes_per_span' }, result.droppedAttributes);
      if (result.truncatedValues > 0) metrics.workerAttributeLimits.inc({ limit: 'attribute_value_length' }, result.truncatedValues);
      if (result.undecodable > 0) this.#rateLimited.warn('undecodable', { traceId: trace.traceId }, 'records that do not decode were skipped');
      const stalledIn = result.stalledRuleIds ?? [];
      for (const id of stalledIn) metrics.ruleEvaluationStalls.inc({ rule_id: id });
      if ((result.stalls ?? 0) > stalledIn.length) metrics.ruleEvaluationStalls.inc({ rule_id: '' }, (result.stalls ?? 0) - stalledIn.length);
      if (result.budgetExceededRuleIds.length > 0) {
        this.#rateLimited.warn('budget', { traceId: trace.traceId, rules: result.budgetExceededRuleIds }, 'evaluation budget exceeded');
      }
      for (const id of stalledIn) this.#o.onOverBudget?.(id, true);
      if (result.overBudgetRuleId !== undefined) this.#o.onOverBudget?.(result.overBudgetRuleId, false);
    } catch (err) {
      this.#rateLimited.warn('pool', { err, traceId: trace.traceId }, 'evaluation failed: trace not evaluated');
    }
    metrics.workerTracesEvaluated.inc({ outcome: trace.reevaluation ? 'late' : trace.partial ? 'partial' : 'complete' });
    const emitted = new Set(trace.emitted);
    let found: ViolationRecord[] = [];
    const now = Date.now();
    for (const v of violations) {
      if (emitted.has(v.violationId)) continue;
      emitted.add(v.violationId);
      found.push(toViolationRecord(v, trace.partial, now));
    }
    // Kafka: what the violations topic already holds of them (a partition's earlier owner).
    let fresh = found;
    let again: ViolationRecord[] = [];
    const ledger = this.#o.ledger;
    if (ledger !== undefined && found.length > 0) {
      const status = await ledger.status(trace.partition, found.map((r) => r.violation_id));
      fresh = found.filter((_, i) => status[i] === undefined);
      again = found.filter((_, i) => status[i] === 'written');
      const delivered = found.length - fresh.length - again.length;
      if (delivered > 0) metrics.violationsAlreadyDelivered.inc(delivered);
      // Written before the span goes downstream; a write that cannot be made leaves the trace unacknowledged.
      await ledger.write(trace.partition, fresh);
    }
    const { entry, arrived } = this.#windows.settle(trace, emitted);
    this.#wake();
    const debug = logger.isLevelEnabled('debug');
    for (const record of fresh) {
      metrics.violations.inc({ rule_id: record.rule_id, severity: record.severity });
      for (const sink of this.#o.sinks) sink.append(record);
      if (debug) {
        logger.debug(
          { violationId: record.violation_id, ruleId: record.rule_id, traceId: record.trace_id, severity: record.severity },
          'violation',
        );
      }
    }
    for (const record of again) metrics.violationReemissions.inc({ rule_id: record.rule_id });
    found = [...fresh, ...again];
    if (found.length > 0 && this.#o.exporter !== undefined) {
      this.#windows.exportStarted(entry);
      metrics.violationsEmitted.inc(found.length);
      const ids = found.map((r) => r.violation_id);
      this.#o.exporter.enqueue({
        payload: violationSpansPayload(found),
        spanCount: found.length,
        onDone: (deliveredDownstream, abandoned) => {
          // Abandoned at the shutdown deadline with Kafka: the trace's records stay unacknowledged, the next owner sends these again.
          if (abandoned === true && ledger !== undefined) return;
          if (ledger === undefined || !deliveredDownstream) {
            this.#windows.exportDone(entry);
            return;
          }
          // Acknowledged downstream: the marker, then the trace's records may be acknowledged.
          ledger.delivered(trace.partition, trace.traceId, ids).then(
            () => this.#windows.exportDone(entry),
            () => undefined, // stopping: the records stay unacknowledged, the next owner sends these again
          );
        },
      });
    }
    for (const record of arrived) this.#add(record);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#consumer.start();
    this.#wake();
  }

  /** The consumer stopped delivering: finish what can be finished, so that its final commit carries it. */
  async #drain(): Promise<void> {
    this.#o.ledger?.stopWithin(5000);
    if (this.#o.evaluateOnShutdown) {
      const remaining = this.#windows.drain();
      if (remaining.length > 0) this.#o.metrics.workerForcedCuts.inc({ reason: 'shutdown' }, remaining.length);
      for (const t of remaining) this.#evaluate(t);
    }
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    await this.#o.beforeFinalCommit?.();
  }

  async shutdown(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#tick);
    this.#tick = undefined;
    await this.#consumer.shutdown();
  }
}
