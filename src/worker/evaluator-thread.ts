/**
 * An evaluation thread: decodes a trace's OTLP payloads and evaluates every rule
 * on it, off the I/O thread. Rules arrive as definitions and are compiled here.
 *
 * Before each trace and each rule the thread says where it is in its progress slot
 * (shared memory, see Progress), so that the pool can tell which trace and rule a
 * thread that stopped answering is stuck in, and stop it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DecodeLimits, SpanDecoder } from '../otlp/index.ts';
import { compileRule, createRuleSet, type CompiledRule, type RuleDefinition, type RuleSet } from '../rules/index.ts';
import { decodeAndEvaluate, decoderFor } from './evaluate-trace.ts';
import { Progress, RuleTable, packViolations, type EvalBatch, type EvalResponseWire, type EvalResults, type ThreadData, type ThreadMessage } from './evaluator-protocol.ts';

const progress = new Progress((workerData as ThreadData).progress);
let compiledRules: CompiledRule[] = [];
let ruleSet: RuleSet = createRuleSet([]);
/** Rule sets without some rules (EvalBatch.excluded), by the ids left out; for the current rules. */
let reducedSets = new Map<string, RuleSet>();
let ruleIds: string[] = [];
/** Per rule (index in ruleIds), its evaluation time in the current trace, ms. */
let ruleTime = new Float64Array(0);
/** The attribute limits (the pool sends them before any batch). */
let limits: DecodeLimits | undefined;
/** Only the attributes the rules name are decoded, and only of the spans whose attributes they read. */
let decoder: SpanDecoder = decoderFor([], limits);

/** The rule being evaluated (its index in ruleIds; -1: none) and since when. */
let current = -1;
let currentSince = 0;

/**
 * Rule `index` starts (an entry point of its program): said in the progress slot; the
 * time since the previous rule started goes to that rule (one clock read per rule).
 */
function enter(index: number): void {
  const now = performance.now();
  if (current >= 0) ruleTime[current]! += now - currentSince;
  current = index;
  currentSince = now;
  progress.rule(index);
}

/** The trace's evaluation is over: the last rule's time is added; the thread is in no rule any more. */
function leave(): void {
  if (current >= 0) ruleTime[current]! += performance.now() - currentSince;
  current = -1;
  progress.rule(Progress.NO_RULE);
}

/** The rule with its program's entry points marking where the thread is (enter). */
function instrumented(rule: CompiledRule, index: number): CompiledRule {
  const program = rule.program;
  return {
    ...rule,
    program: {
      test: (c) => {
        enter(index);
        return program.test(c);
      },
      witnesses: (c) => {
        enter(index);
        return program.witnesses(c);
      },
    },
  };
}

function setRules(definitions: readonly RuleDefinition[]): void {
  const compiled: CompiledRule[] = [];
  definitions.forEach((def, i) => {
    const r = compileRule(def);
    if (r.ok) compiled.push(instrumented(r.rule, i));
  });
  ruleIds = definitions.map((d) => d.id);
  ruleTime = new Float64Array(definitions.length);
  compiledRules = compiled;
  ruleSet = createRuleSet(compiled);
  reducedSets = new Map();
  decoder = decoderFor(compiled, limits);
}

/**
 * A rule that spent at least this share of the budget on a trace itself is responsible
 * for the trace going over it (see responsibleRule).
 */
const BLAME_SHARE = 0.5;

/**
 * The rule to blame for the trace going over its budget (it counts toward quarantine),
 * if one is responsible: the budget ran out while it was running (`abandoned`), and its
 * own time on the trace is at least half the budget. The budget is one deadline for all
 * of a trace's rules, so a large trace, a GC pause or a loaded core can spend it while
 * many cheap rules share it; then the rule that happens to be running, or the slowest of
 * them, did nothing wrong and no rule is blamed (the trace is still counted over budget).
 */
function responsibleRule(abandoned: string | undefined, budgetMs: number): string | undefined {
  if (abandoned === undefined) return undefined;
  const index = ruleIds.indexOf(abandoned);
  return index >= 0 && ruleTime[index]! >= BLAME_SHARE * budgetMs ? abandoned : undefined;
}

function ruleSetWithout(excluded: readonly string[]): RuleSet {
  const key = excluded.join('\n');
  let set = reducedSets.get(key);
  if (set === undefined) {
    set = createRuleSet(compiledRules.filter((r) => !excluded.includes(r.definition.id)));
    reducedSets.set(key, set);
  }
  return set;
}

/** The trace at `at` of batch.traces (see EvalBatch). */
function evaluate(batch: EvalBatch, at: number, table: RuleTable): EvalResponseWire {
  const numbers = batch.traces;
  const id = numbers[at]!;
  const budgetMs = numbers[at + 1]!;
  const end = at + 3 + 3 * numbers[at + 2]!;
  const payloads: Uint8Array[] = [];
  /** Payloads placed outside their slab: not readable, counted with those that do not decode. */
  let misplaced = 0;
  for (let i = at + 3; i < end; i += 3) {
    const slab = numbers[i]!;
    const offset = numbers[i + 1]!;
    const length = numbers[i + 2]!;
    try {
      payloads.push(slab < 0 ? batch.packed.subarray(offset, offset + length) : new Uint8Array(batch.slabs[slab]!, offset, length));
    } catch {
      misplaced++;
    }
  }
  ruleTime.fill(0);
  const excluded = batch.excluded?.[id];
  const e = decodeAndEvaluate(payloads, excluded === undefined ? ruleSet : ruleSetWithout(excluded), decoder, budgetMs);
  leave();
  const { result } = e;
  return {
    id,
    violations: packViolations(result.violations, (v) => table.slot(v)),
    spansIn: e.spansIn,
    uniqueSpans: e.spansIn - result.repeatedSpans,
    undecodable: e.undecodable + misplaced,
    budgetExceededRuleIds: result.budgetExceededRuleIds ?? [],
    overBudgetRuleId: responsibleRule(result.abandonedRuleId, budgetMs),
    failedRuleIds: result.failedRuleIds ?? [],
    seconds: e.seconds,
    droppedAttributes: e.droppedAttributes,
    truncatedValues: e.truncatedValues,
  };
}

function evaluateBatch(batch: EvalBatch): EvalResults {
  const results: EvalResponseWire[] = [];
  const table = new RuleTable();
  const numbers = batch.traces;
  for (let at = 0; at < numbers.length; at += 3 + 3 * numbers[at + 2]!) {
    progress.trace(batch.batch, results.length);
    results.push(evaluate(batch, at, table));
  }
  progress.done(batch.batch);
  return { type: 'results', results, rules: table.rules };
}

parentPort?.on('message', (msg: ThreadMessage) => {
  if (msg.type === 'rules') setRules(msg.definitions);
  else if (msg.type === 'limits') {
    limits = { maxAttributesPerSpan: msg.maxAttributesPerSpan, maxAttributeValueLength: msg.maxAttributeValueLength };
    decoder = decoderFor(compiledRules, limits);
  }
  else if (msg.type === 'eval') parentPort!.postMessage(evaluateBatch(msg));
});
