/** Messages between the worker and its evaluation threads. */
import type { RuleDefinition, Violation } from '../rules/index.ts';

export interface RulesMessage {
  readonly type: 'rules';
  readonly definitions: readonly RuleDefinition[];
}

export interface LimitsMessage {
  readonly type: 'limits';
  readonly maxAttributesPerSpan: number;
  readonly maxAttributeValueLength: number;
}

/**
 * Traces to evaluate, batched: every message between threads costs more than
 * a small trace's evaluation, so all the evaluations asked for in one turn of
 * the worker's event loop travel together, and their results come back together.
 * Payloads in shared memory (the worker's PayloadArena) are read in place;
 * others travel copied into `packed`.
 */
export interface EvalBatch {
  readonly type: 'eval';
  /** The batch's number, written to the thread's progress slot while it runs (see Progress). */
  readonly batch: number;
  /** The shared slabs holding the batch's payloads (shared, not copied). */
  readonly slabs: readonly SharedArrayBuffer[];
  /** Payloads in no slab, back to back (transferred); empty when there are none. */
  readonly packed: Uint8Array;
  /**
   * The traces, back to back, as numbers (transferred; a structured clone of an
   * object and an array per trace cost the thread more than reading them):
   * per trace its request id, budget in ms, payload count n, then three numbers
   * per payload: its slab's index in `slabs` (-1: `packed`), byte offset, length.
   */
  readonly traces: Float64Array;
  /**
   * Per request id, rules not to evaluate on that trace: those a thread was
   * stopped in while on it (see EvaluatorPool). Absent for almost every trace.
   */
  readonly excluded?: Readonly<Record<number, readonly string[]>>;
}

/**
 * Results as they travel back. A structured clone writes every property name and
 * string of every object again, a cost per violation that a trace with several
 * violations pays several times over, so violations travel packed (ViolationsWire):
 * the rule's fields once per batch in `rules`, the trace's once per trace.
 */
export interface EvalResults {
  readonly type: 'results';
  readonly results: readonly EvalResponseWire[];
  /** Per rule of the batch's violations: id, name, severity, tags, message. */
  readonly rules: readonly RuleFieldsWire[];
}

export type RuleFieldsWire = readonly [ruleId: string, ruleName: string, severity: Violation['severity'], tags: readonly string[], message: string];

/**
 * A trace's violations: [traceId, rootSpanId, rootMissing, spanCount], then six values per
 * violation: its rule's index in EvalResults.rules, violation id, witness span ids, witness
 * count, start and end time. Empty when there are none.
 */
export type ViolationsWire = readonly (string | number | boolean | bigint | readonly string[])[];

export interface EvalResponseWire extends Omit<EvalResponse, 'violations'> {
  readonly violations: ViolationsWire;
}

/**
 * The rule fields of a batch's violations, each rule once (EvalResults.rules). A batch is
 * evaluated with one rule set (a thread handles its messages one at a time): one id, one rule.
 */
export class RuleTable {
  readonly rules: RuleFieldsWire[] = [];
  readonly #slots = new Map<string, number>();

  /** The index of the violation's rule fields in `rules`. */
  slot(v: Violation): number {
    let slot = this.#slots.get(v.ruleId);
    if (slot === undefined) {
      slot = this.rules.push([v.ruleId, v.ruleName, v.severity, v.tags, v.message]) - 1;
      this.#slots.set(v.ruleId, slot);
    }
    return slot;
  }
}

/** Packs the violations of one trace (all of one trace: trace id, root and span count shared); `ruleSlot` numbers each rule's fields in the batch. */
export function packViolations(violations: readonly Violation[], ruleSlot: (v: Violation) => number): ViolationsWire {
  if (violations.length === 0) return [];
  const first = violations[0]!;
  const out: ViolationsWire[number][] = [first.traceId, first.rootSpanId, first.rootMissing, first.spanCount];
  for (const v of violations) out.push(ruleSlot(v), v.violationId, v.witnessSpanIds, v.witnessCount, v.startTimeUnixNano, v.endTimeUnixNano, v.services, v.witnessNames);
  return out;
}

/** The violations packViolations packed, with the rule fields of their batch. */
export function unpackViolations(wire: ViolationsWire, rules: readonly RuleFieldsWire[]): Violation[] {
  const out: Violation[] = [];
  if (wire.length === 0) return out;
  const traceId = wire[0] as string;
  const rootSpanId = wire[1] as string;
  const rootMissing = wire[2] as boolean;
  const spanCount = wire[3] as number;
  for (let i = 4; i < wire.length; i += 8) {
    const [ruleId, ruleName, severity, tags, message] = rules[wire[i] as number]!;
    out.push({
      ruleId,
      ruleName,
      severity,
      tags: [...tags],
      message,
      violationId: wire[i + 1] as string,
      traceId,
      rootSpanId,
      rootMissing,
      witnessSpanIds: wire[i + 2] as string[],
      witnessCount: wire[i + 3] as number,
      spanCount,
      startTimeUnixNano: wire[i + 4] as bigint,
      endTimeUnixNano: wire[i + 5] as bigint,
      services: wire[i + 6] as string[],
      witnessNames: wire[i + 7] as string[],
    });
  }
  return out;
}

export interface EvalResponse {
  readonly id: number;
  /**
   * The rule responsible for the trace going over its budget (counted toward its
   * quarantine): the budget ran out while it was running and it had itself spent at
   * least half of it on the trace. Undefined when within budget, and when over budget
   * through no single rule's fault (many rules sharing the budget, a pause of the thread);
   * the rules abandoned are in budgetExceededRuleIds either way.
   */
  readonly overBudgetRuleId?: string | undefined;
  /**
   * Threads were stopped by the pool's watchdog while on this trace, this many times;
   * in these rules (each then left out of the trace's evaluation, and counted in
   * budgetExceededRuleIds). A stop outside any rule fails the trace instead.
   */
  readonly stalls?: number;
  readonly stalledRuleIds?: readonly string[];
  readonly violations: Violation[];
  /** Spans decoded (before de-duplication by span id). */
  readonly spansIn: number;
  readonly uniqueSpans: number;
  readonly undecodable: number;
  readonly budgetExceededRuleIds: string[];
  readonly failedRuleIds: string[];
  readonly seconds: number;
  readonly droppedAttributes: number;
  readonly truncatedValues: number;
}

export type ThreadMessage = RulesMessage | LimitsMessage | EvalBatch;

/** What the pool passes a thread as workerData. */
export interface ThreadData {
  /** The thread's progress slot (Progress), shared with the pool. */
  readonly progress: SharedArrayBuffer;
}

/**
 * Where a thread is, in memory shared with the pool: the pool's watchdog reads it
 * without a message (a thread stuck in a rule cannot post one). The thread writes
 * the batch number and the trace's position in the batch before each trace, and
 * the rule's index (in the definitions of the last RulesMessage) before each rule;
 * POSITION_DONE once the batch's results are being posted.
 */
export class Progress {
  static readonly BYTES = 3 * Int32Array.BYTES_PER_ELEMENT;
  static readonly POSITION_DONE = -1;
  /** The rule index while the trace is being decoded, or between rules. */
  static readonly NO_RULE = -1;
  readonly #slot: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#slot = new Int32Array(buffer, 0, 3);
  }

  static create(): SharedArrayBuffer {
    const buffer = new SharedArrayBuffer(Progress.BYTES);
    new Int32Array(buffer).fill(-1);
    return buffer;
  }

  trace(batch: number, position: number): void {
    Atomics.store(this.#slot, 2, Progress.NO_RULE);
    Atomics.store(this.#slot, 0, batch);
    Atomics.store(this.#slot, 1, position);
  }

  /** A plain store (it is on the path of every rule's evaluation): an aligned Int32 is never torn, and the pool reads it long after. */
  rule(index: number): void {
    this.#slot[2] = index;
  }

  done(batch: number): void {
    Atomics.store(this.#slot, 0, batch);
    Atomics.store(this.#slot, 1, Progress.POSITION_DONE);
  }

  read(): { batch: number; position: number; rule: number } {
    return { batch: Atomics.load(this.#slot, 0), position: Atomics.load(this.#slot, 1), rule: Atomics.load(this.#slot, 2) };
  }
}
