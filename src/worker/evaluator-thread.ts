/**
 * An evaluation thread: decodes a trace's OTLP payloads and evaluates every rule
 * on it, off the I/O thread. Rules arrive as definitions and are compiled here.
 */
import { parentPort } from 'node:worker_threads';
import { decodeSpans, setDecodeLimits, takeLimitCounts } from '../otlp/index.ts';
import { compileRule, createRuleSet, type CompiledRule, type RuleDefinition, type RuleSet, type SpanRecord } from '../rules/index.ts';
import type { EvalRequest, EvalResponse, ThreadMessage } from './evaluator-protocol.ts';

let ruleSet: RuleSet = createRuleSet([]);

function setRules(definitions: readonly RuleDefinition[]): void {
  const compiled: CompiledRule[] = [];
  for (const def of definitions) {
    const r = compileRule(def);
    if (r.ok) compiled.push(r.rule);
  }
  ruleSet = createRuleSet(compiled);
}

function evaluate(req: EvalRequest): EvalResponse {
  const spans: SpanRecord[] = [];
  let undecodable = 0;
  let start = 0;
  for (const end of req.ends) {
    try {
      for (const s of decodeSpans(req.packed.subarray(start, end))) spans.push(s);
    } catch {
      undecodable++;
    }
    start = end;
  }
  const started = performance.now();
  const result = ruleSet.evaluate(spans, { budgetMs: req.budgetMs });
  return {
    type: 'result',
    id: req.id,
    violations: result.violations,
    spansIn: spans.length,
    uniqueSpans: new Set(spans.map((s) => s.spanId)).size,
    undecodable,
    budgetExceededRuleIds: result.budgetExceededRuleIds ?? [],
    failedRuleIds: result.failedRuleIds ?? [],
    seconds: (performance.now() - started) / 1000,
    ...takeLimitCounts(),
  };
}

parentPort?.on('message', (msg: ThreadMessage) => {
  if (msg.type === 'rules') setRules(msg.definitions);
  else if (msg.type === 'limits') setDecodeLimits(msg);
  else if (msg.type === 'eval') parentPort!.postMessage(evaluate(msg));
});
