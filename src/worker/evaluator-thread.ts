/**
 * An evaluation thread: decodes a trace's OTLP payloads and evaluates every rule
 * on it, off the I/O thread. Rules arrive as definitions and are compiled here.
 */
import { parentPort } from 'node:worker_threads';
import { AttributeKeyFilter, decodeSpans, setDecodeLimits, takeLimitCounts, type DecodeOptions } from '../otlp/index.ts';
import { attributeKeys, compileRule, createRuleSet, type CompiledRule, type RuleDefinition, type RuleSet, type SpanRecord } from '../rules/index.ts';
import { RuleTable, packViolations, type EvalBatch, type EvalResponseWire, type EvalResults, type ThreadMessage } from './evaluator-protocol.ts';

let ruleSet: RuleSet = createRuleSet([]);
/** Only the attributes the rules name are decoded, and only of the spans whose attributes they read. */
let decodeOptions: DecodeOptions = { attributes: new AttributeKeyFilter([]), lazyAttributes: true };

function setRules(definitions: readonly RuleDefinition[]): void {
  const compiled: CompiledRule[] = [];
  for (const def of definitions) {
    const r = compileRule(def);
    if (r.ok) compiled.push(r.rule);
  }
  ruleSet = createRuleSet(compiled);
  decodeOptions = { attributes: new AttributeKeyFilter(attributeKeys(compiled)), lazyAttributes: true };
}

/** The trace at `at` of batch.traces (see EvalBatch). */
function evaluate(batch: EvalBatch, at: number, table: RuleTable): EvalResponseWire {
  const spans: SpanRecord[] = [];
  let undecodable = 0;
  const numbers = batch.traces;
  const id = numbers[at]!;
  const budgetMs = numbers[at + 1]!;
  const end = at + 3 + 3 * numbers[at + 2]!;
  for (let i = at + 3; i < end; i += 3) {
    const slab = numbers[i]!;
    const offset = numbers[i + 1]!;
    const length = numbers[i + 2]!;
    try {
      const payload = slab < 0 ? batch.packed.subarray(offset, offset + length) : new Uint8Array(batch.slabs[slab]!, offset, length);
      for (const s of decodeSpans(payload, decodeOptions)) spans.push(s);
    } catch {
      undecodable++;
    }
  }
  const started = performance.now();
  const result = ruleSet.evaluate(spans, { budgetMs });
  return {
    id,
    violations: packViolations(result.violations, (v) => table.slot(v)),
    spansIn: spans.length,
    uniqueSpans: spans.length - result.repeatedSpans,
    undecodable,
    budgetExceededRuleIds: result.budgetExceededRuleIds ?? [],
    failedRuleIds: result.failedRuleIds ?? [],
    seconds: (performance.now() - started) / 1000,
    ...takeLimitCounts(),
  };
}

function evaluateBatch(batch: EvalBatch): EvalResults {
  const results: EvalResponseWire[] = [];
  const table = new RuleTable();
  const numbers = batch.traces;
  for (let at = 0; at < numbers.length; at += 3 + 3 * numbers[at + 2]!) results.push(evaluate(batch, at, table));
  return { type: 'results', results, rules: table.rules };
}

parentPort?.on('message', (msg: ThreadMessage) => {
  if (msg.type === 'rules') setRules(msg.definitions);
  else if (msg.type === 'limits') setDecodeLimits(msg);
  else if (msg.type === 'eval') parentPort!.postMessage(evaluateBatch(msg));
});
