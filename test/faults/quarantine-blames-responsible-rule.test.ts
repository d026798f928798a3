/**
 * Fault: a trace goes over its evaluation budget through no single rule's fault (a big
 * trace, a tight budget, many cheap rules sharing it). The budget is one deadline for all
 * of a trace's rules: the rule running when it passes is abandoned and counted over
 * budget, but it is not blamed, so no rule is quarantined however often this happens.
 * A rule that is itself responsible still is: one that spends the budget on its own, and
 * one the watchdog stops the thread in.
 *
 * Real evaluation threads, rule registry, rule store and quarantine, wired as the worker
 * wires them (worker.ts: stalledRuleIds and overBudgetRuleId go to onOverBudget). The pool
 * is driven directly because the budget is per call there: the threads' code is warmed up
 * with an ample budget first, as a long-running worker's is (cold code can spend a tight
 * budget in the first rule it runs).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileRule, type CompiledRule, type SpanRecord } from '../../src/rules/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { EvaluatorPool } from '../../src/worker/index.ts';
import type { EvalResponse } from '../../src/worker/evaluator-protocol.ts';
import { RuleQuarantine } from '../../src/ruleset/rule-quarantine.ts';
import { RuleRegistry } from '../../src/ruleset/rule-registry.ts';
import { FileRuleStore } from '../../src/ruleset/rule-store.ts';
import { encodeSpans } from '../helpers/encode-spans.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { STALL_RULE, STALL_SPAN, stallingThreadModule } from '../helpers/stall.ts';
import { span } from '../rules/trace.ts';

const CHEAP_RULES = 400;
const SPANS = 8000;
const BUDGET_MS = 20;
/** Traces over budget through no rule's fault; at quarantine_after 2 any rule blamed twice would be quarantined. */
const SHARED_TRACES = 20;

function compiled(id: string, condition: string): CompiledRule {
  const r = compileRule({ id, name: id, description: '', severity: 'low', enabled: true, tags: [], condition });
  if (!r.ok) assert.fail(`${id}: ${JSON.stringify(r.errors)}`);
  return r.rule;
}

/**
 * One OTLP request: a root and `spans` - 1 spans named `name` with attribute k, children of
 * the root, or (`chain`) each the child of the one before, with a k of its own.
 */
function tracePayload(name: string, spans: number, extra: readonly string[] = [], chain = false): Uint8Array {
  const records: SpanRecord[] = [span('root', { id: '1', attrs: { k: 'v' } })];
  for (let i = 2; i <= spans; i++) {
    records.push(span(name, { id: i.toString(16), parent: chain ? (i - 1).toString(16) : '1', start: i, end: i + 1, attrs: { k: chain ? `v${i}` : `v${i % 3}` } }));
  }
  for (const n of extra) records.push(span(n, { id: (spans + 1).toString(16), parent: '1' }));
  return encodeSpans(records);
}

describe('quarantine blames only a rule responsible for the overrun', () => {
  it('many cheap rules sharing a trace over a tight budget: counted over budget, none blamed or quarantined; a slow rule and a stuck one are', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-quarantine-blame-'));
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    const logger = createLogger('error');
    const registry = new RuleRegistry();
    const store = new FileRuleStore({ dataDir, registry, logger });
    await store.start();
    t.after(() => store.shutdown());
    const quarantine = new RuleQuarantine({ registry, store, after: 2, windowMs: 600_000, budgetMs: BUDGET_MS, metrics: createMetrics(), logger });
    const pool = new EvaluatorPool({ threads: 1, logger, stallMarginMs: 500, threadModule: stallingThreadModule });
    await pool.start();
    t.after(() => pool.shutdown());
    registry.onChange(() => pool.setRules(registry.definitions()));

    // Each cheap rule scans the spans once, on a field of the span itself (span:duration would
    // charge the first rule reading it with converting every span's times).
    const cheap = Array.from({ length: CHEAP_RULES }, (_, i) => compiled(`cheap-${String(i).padStart(3, '0')}`, 'trace.every(*).satisfies(span:status != error)'));
    // Every heavy span against its ancestors on an attribute join: on a chain of spans whose
    // values all differ, a walk to the root from each (quadratic): the whole budget on its own.
    const expensive = compiled('expensive', 'trace.every(heavy).has_ancestor(*).on(k)');
    registry.setFileRules('rules.yaml', [compiled(STALL_RULE, 'true'), expensive, ...cheap]);

    const evaluate = async (payload: Uint8Array, budgetMs: number): Promise<EvalResponse> => {
      const result = await pool.evaluate([payload], budgetMs);
      for (const id of result.stalledRuleIds ?? []) quarantine.overrun(id, true);
      if (result.overBudgetRuleId !== undefined) quarantine.overrun(result.overBudgetRuleId, false);
      return result;
    };
    const quarantined = () => registry.quarantined().map((r) => r.definition.id);

    const shared = tracePayload('op', SPANS);
    for (let i = 0; i < 10; i++) assert.deepEqual((await evaluate(shared, 10_000)).budgetExceededRuleIds, [], 'within an ample budget');

    const blamed: string[] = [];
    for (let i = 0; i < SHARED_TRACES; i++) {
      const r = await evaluate(shared, BUDGET_MS);
      const abandoned = r.budgetExceededRuleIds.length;
      assert.ok(abandoned > 0 && abandoned < CHEAP_RULES, `over budget, with rules evaluated before the deadline: ${abandoned} of ${CHEAP_RULES + 1} abandoned`);
      if (r.overBudgetRuleId !== undefined) blamed.push(r.overBudgetRuleId);
    }
    // A pause of the thread (a loaded core) of half the budget inside the rule running at the
    // deadline does blame that rule; it would take two in one rule to quarantine it.
    assert.ok(blamed.length <= 2, `no rule is blamed for sharing the budget: ${blamed.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100)); // a quarantine is stored asynchronously
    assert.deepEqual(quarantined(), [], 'no cheap rule is quarantined');

    // A rule that spends the budget on its own is blamed, and quarantined after two such traces.
    const heavy = tracePayload('heavy', SPANS, [], true);
    for (let i = 0; i < 2; i++) {
      const r = await evaluate(heavy, BUDGET_MS);
      assert.equal(r.budgetExceededRuleIds[0], 'expensive');
      assert.equal(r.overBudgetRuleId, 'expensive');
    }
    await waitUntil(() => quarantined().includes('expensive'), 5000, 'expensive quarantined');

    // A rule the watchdog stops the thread in is blamed, and quarantined after two.
    const stuck = tracePayload('op', 10, [STALL_SPAN]);
    for (let i = 0; i < 2; i++) assert.deepEqual((await evaluate(stuck, BUDGET_MS)).stalledRuleIds, [STALL_RULE]);
    await waitUntil(() => quarantined().includes(STALL_RULE), 5000, 'stuck rule quarantined');
    assert.deepEqual(quarantined().sort(), ['expensive', STALL_RULE]);
  });
});
