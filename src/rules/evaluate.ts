/**
 * Evaluates a set of compiled rules on one trace and builds the violations
 * (src/rules/README.md "Evaluation": triggers, witnesses, root; the fields are those
 * of docs/contract.md "Violation span").
 *
 * A RuleSet keeps a trigger index: span name → the rules it triggers. A trace runs
 * only the rules triggered by one of its span names, plus the rules that always run
 * (no triggers, or a verdict that fails without them); every other rule is
 * skipped, at no per-rule cost. The skipped rules' verdict is a pass by
 * construction (it is their verdict on a trace without their triggers).
 *
 * Evaluation of one trace is bounded by a time budget, one deadline for all its rules:
 * once spent, the running rule is abandoned (`abandonedRuleId`) and it and the remaining
 * rules are reported in `budgetExceededRuleIds`.
 */
import { BUDGET } from './compile.ts';
import { DEFAULT_BUDGET_MS } from './diagnostics.ts';
import type { EvalContext } from './compile.ts';
import type { CompiledRule, Severity } from './rule.ts';
import { RuleViolationIds } from './rule.ts';
import type { SpanRecord } from './span.ts';
import { Scratch, TraceIndex } from './trace-index.ts';

export const MAX_WITNESS_SPAN_IDS = 32;
/** Services and witness span names a violation lists at most (what notifications show). */
export const MAX_VIOLATION_NAMES = 8;
export { DEFAULT_BUDGET_MS };

export interface Violation {
  ruleId: string;
  ruleName: string;
  severity: Severity;
  tags: string[];
  message: string;
  violationId: string;
  traceId: string;
  /** The trace's root span (earliest parentless span, else the trace's entry span); '' for an empty trace. */
  rootSpanId: string;
  /** No parentless span was seen; rootSpanId is the trace's entry span. */
  rootMissing: boolean;
  /** Witness span ids, sorted by start time then span id, at most 32. */
  witnessSpanIds: string[];
  witnessCount: number;
  /** Spans in the evaluated trace (after de-duplication). */
  spanCount: number;
  /** The distinct services (resource service.name) of the listed witnesses, else of the root; at most MAX_VIOLATION_NAMES. */
  services: string[];
  /** The distinct span names of the listed witnesses, in witness order; at most MAX_VIOLATION_NAMES. */
  witnessNames: string[];
  /** Earliest start / latest end of the witnesses, or of the whole trace if none. */
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
}

export interface EvaluateOptions {
  /** Time budget for the whole trace, ms. Default DEFAULT_BUDGET_MS. */
  budgetMs?: number;
}

export interface EvaluationResult {
  /** In rule order. */
  violations: Violation[];
  /** Enabled rules not run because the trace holds none of their triggers. */
  skipped: number;
  /** Rules that ran (the rest of the enabled rules were skipped). */
  evaluated: number;
  /** Records of a span id seen before in the trace (a re-sent span), not counted again. */
  repeatedSpans: number;
  budgetExceeded?: boolean;
  /** Rules not (fully) evaluated because the budget was spent. */
  budgetExceededRuleIds?: string[];
  /**
   * The rule that was running when the budget ran out (abandoned inside it); absent when
   * it ran out between two rules. It is the first of budgetExceededRuleIds when present.
   */
  abandonedRuleId?: string;
  /** Rules whose evaluation failed unexpectedly (a bug; reported, not thrown). */
  failedRuleIds?: string[];
}

export class RuleSet {
  readonly rules: readonly CompiledRule[];
  readonly #byTrigger = new Map<string, number[]>();
  readonly #always: number[] = [];
  /** Per rule, its violation ids' hashing (its input's rule part encoded once). */
  readonly #ids: RuleViolationIds[];
  readonly #stamp: Uint32Array;
  #generation = 0;
  /** The typed arrays of the trace being evaluated (evaluate is synchronous: one trace at a time). */
  readonly #scratch = new Scratch();

  constructor(rules: readonly CompiledRule[]) {
    this.rules = rules.filter((r) => r.definition.enabled);
    this.#stamp = new Uint32Array(this.rules.length);
    this.#ids = this.rules.map((r) => new RuleViolationIds(r.definition.id, r.canonical));
    this.rules.forEach((r, i) => {
      if (r.triggers === null || !r.passesWithoutTriggers) {
        this.#always.push(i);
        return;
      }
      for (const name of r.triggers) {
        const list = this.#byTrigger.get(name);
        if (list === undefined) this.#byTrigger.set(name, [i]);
        else list.push(i);
      }
    });
  }

  /** The rules a trace with these span names must run, in rule order. */
  #selected(index: TraceIndex): number[] {
    if (this.#byTrigger.size === 0) return this.#always;
    const gen = ++this.#generation;
    if (gen === 0xffffffff) {
      this.#stamp.fill(0);
      this.#generation = 1;
    }
    const g = this.#generation;
    const stamp = this.#stamp;
    let triggered = 0;
    for (const name of index.byName.keys()) {
      const list = this.#byTrigger.get(name);
      if (list === undefined) continue;
      for (const i of list) {
        if (stamp[i] !== g) {
          stamp[i] = g;
          triggered++;
        }
      }
    }
    if (triggered === 0) return this.#always;
    for (const i of this.#always) stamp[i] = g;
    // In rule order: a scan of the stamps (no sort, no comparator calls).
    const out: number[] = [];
    for (let i = 0; i < stamp.length; i++) if (stamp[i] === g) out.push(i);
    return out;
  }

  /** Evaluates every enabled rule on the trace made of `spans` (any order, duplicates allowed). */
  evaluate(spans: readonly SpanRecord[], options: EvaluateOptions = {}): EvaluationResult {
    this.#scratch.reset();
    const index = new TraceIndex(spans, this.#scratch);
    const selected = this.#selected(index);
    const deadline = performance.now() + (options.budgetMs ?? DEFAULT_BUDGET_MS);
    const violations: Violation[] = [];
    let exceeded: string[] | undefined;
    let abandoned: string | undefined;
    let failed: string[] | undefined;
    for (const r of selected) {
      const rule = this.rules[r] as CompiledRule;
      if (exceeded !== undefined || performance.now() > deadline) {
        (exceeded ??= []).push(rule.definition.id);
        continue;
      }
      const ctx: EvalContext = { index, steps: 0, deadline };
      try {
        if (!rule.program.test(ctx)) violations.push(buildViolation(rule, this.#ids[r]!, index, rule.program.witnesses(ctx)));
      } catch (e) {
        if (e === BUDGET) {
          abandoned = rule.definition.id;
          (exceeded ??= []).push(abandoned);
        } else (failed ??= []).push(rule.definition.id);
      }
    }
    const result: EvaluationResult = { violations, skipped: this.rules.length - selected.length, evaluated: selected.length, repeatedSpans: index.repeated };
    if (exceeded !== undefined) {
      result.budgetExceeded = true;
      result.budgetExceededRuleIds = exceeded;
      if (abandoned !== undefined) result.abandonedRuleId = abandoned;
    }
    if (failed !== undefined) result.failedRuleIds = failed;
    return result;
  }
}

export function createRuleSet(rules: readonly CompiledRule[]): RuleSet {
  return new RuleSet(rules);
}

const ruleSets = new WeakMap<readonly CompiledRule[], RuleSet>();

/**
 * Evaluates `rules` on one trace. The trigger index is cached per rules array:
 * pass the same array each time (or use createRuleSet) to build it once.
 */
export function evaluateTrace(rules: readonly CompiledRule[], spans: readonly SpanRecord[], options?: EvaluateOptions): EvaluationResult {
  let set = ruleSets.get(rules);
  if (set === undefined) {
    set = new RuleSet(rules);
    ruleSets.set(rules, set);
  }
  return set.evaluate(spans, options);
}

function bySpanOrder(a: SpanRecord, b: SpanRecord): number {
  if (a.startTimeUnixNano !== b.startTimeUnixNano) return a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1;
  return a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0;
}

/**
 * Whether a time of the index (ns relative to the trace's earliest start) is exact: past
 * 2^53 ns (104 days) numbers round, and equal numbers may be different times.
 */
function exact(t: number): boolean {
  return t < 2 ** 53 && t > -(2 ** 53);
}

/** Witness order: start time, then span id; ties of inexact times compared as BigInts. */
function witnessOrder(spans: readonly SpanRecord[], start: Float64Array, a: number, b: number): number {
  const d = start[a]! - start[b]!;
  if (d !== 0) return d;
  const sa = spans[a]!;
  const sb = spans[b]!;
  if (exact(start[a]!)) return sa.spanId < sb.spanId ? -1 : sa.spanId > sb.spanId ? 1 : 0;
  return bySpanOrder(sa, sb);
}

/**
 * Times are compared on the index's numbers (SpanRecords from the wire make a BigInt per
 * time read); only two numbers that are equal but not exact are compared as BigInts.
 * Relative times start at 0 (the earliest start), which is exact.
 */
function buildViolation(rule: CompiledRule, ids: RuleViolationIds, index: TraceIndex, witnessIdx: readonly number[]): Violation {
  const def = rule.definition;
  const spans = index.spans;
  const start = index.start;
  const end = index.end;
  const witnesses = [...witnessIdx];
  if (witnesses.length > 1) {
    if (witnesses.length > 24) witnesses.sort((a, b) => witnessOrder(spans, start, a, b));
    else {
      // Mostly a few spans: an insertion sort, comparing start times inline (a call only on a tie).
      for (let k = 1; k < witnesses.length; k++) {
        const w = witnesses[k]!;
        const s = start[w]!;
        let j = k;
        for (; j > 0; j--) {
          const v = witnesses[j - 1]!;
          const sv = start[v]!;
          if (sv < s || (sv === s && witnessOrder(spans, start, v, w) <= 0)) break;
          witnesses[j] = v;
        }
        witnesses[j] = w;
      }
    }
    // Without repeats: a span listed twice sorts next to itself.
    let kept = 1;
    for (let k = 1; k < witnesses.length; k++) if (witnesses[k] !== witnesses[kept - 1]) witnesses[kept++] = witnesses[k] as number;
    // Only when shorter: setting an array's length is a call into the runtime even when unchanged.
    if (kept < witnesses.length) witnesses.length = kept;
  }
  // The earliest start and the latest end of the witnesses (of the whole trace if none). The
  // sorted witnesses begin with the earliest start; of the whole trace it is relative time 0.
  const timed = witnesses.length > 0 ? witnesses : index.all();
  const first = witnesses.length > 0 ? witnesses[0]! : start.indexOf(0);
  let last = -1;
  for (const i of timed) {
    const e = end[i]!;
    if (last < 0 || e > end[last]! || (e === end[last]! && !exact(e) && spans[i]!.endTimeUnixNano > spans[last]!.endTimeUnixNano)) last = i;
  }
  const root = index.root();
  const traceId = spans[0]?.traceId ?? '';
  // A loop, not slice().map(fn): no intermediate array, no call per id.
  const shown = Math.min(witnesses.length, MAX_WITNESS_SPAN_IDS);
  const witnessSpanIds: string[] = [];
  for (let k = 0; k < shown; k++) witnessSpanIds.push(spans[witnesses[k]!]!.spanId);
  const services: string[] = [];
  const witnessNames: string[] = [];
  const named = shown > 0 ? witnesses.slice(0, shown) : root === null ? [] : [root.index];
  for (const i of named) {
    const s = spans[i]!;
    const service = s.resource['service.name'];
    if (typeof service === 'string' && services.length < MAX_VIOLATION_NAMES && !services.includes(service)) services.push(service);
    if (shown > 0 && witnessNames.length < MAX_VIOLATION_NAMES && !witnessNames.includes(s.name)) witnessNames.push(s.name);
  }
  return {
    ruleId: def.id,
    ruleName: def.name,
    severity: def.severity,
    tags: [...def.tags],
    message: def.message ?? (def.description !== '' ? def.description : def.name),
    violationId: ids.of(traceId),
    traceId,
    rootSpanId: root === null ? '' : spans[root.index]!.spanId,
    rootMissing: root?.missing ?? false,
    witnessSpanIds,
    witnessCount: witnesses.length,
    spanCount: index.size,
    services,
    witnessNames,
    startTimeUnixNano: first < 0 ? 0n : spans[first]!.startTimeUnixNano,
    endTimeUnixNano: last < 0 ? 0n : spans[last]!.endTimeUnixNano,
  };
}
