/**
 * Fault: a regex that backtracks polynomially or exponentially in JavaScript, and one span
 * whose attribute makes it do so, must not stop evaluation. Rule regexes run on RE2, so
 * these patterns are accepted and match in time linear in the value: every rule, theirs
 * included, is evaluated on the poison span within the budget, and other traces keep
 * being evaluated.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { compileRule, evaluateTrace, type RuleDefinition } from '../../src/rules/index.ts';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';
import { span } from '../rules/trace.ts';

/** The three polynomial patterns and the classic exponential ones. */
const POLYNOMIAL = ['a.*a.*a.*a.*a.*a.*!', '^(.*)(.*)(.*)(.*)(.*)(.*)!', '^[a-z]*[a-z]*[a-z]*[a-z]*[a-z]*!$'];
const EXPONENTIAL = ['(a+)+$', '(a|a)*!', '(a|aa)+!', '(.*a){12}!', '(\\w+\\s?)*!'];

const rule = (id: string, condition: string): RuleDefinition => ({ id, name: id, description: '', severity: 'high', enabled: true, tags: [], condition });
/** `not trace.has(*).where(v =~ "P")`: a violation iff some span's v matches P. */
const regexRule = (id: string, pattern: string): RuleDefinition => rule(id, `not trace.has(*).where(v =~ "${pattern.replaceAll('\\', '\\\\')}")`);

describe('rule regexes match in linear time', () => {
  for (const length of [4000, 4096]) {
    it(`evaluates every backtracking pattern on a value of ${length} "a"s within the budget, with the right answer`, () => {
      const patterns = [...POLYNOMIAL, ...EXPONENTIAL];
      const rules = patterns.map((p, i) => {
        const c = compileRule(regexRule(`r${i}`, p));
        assert.ok(c.ok, `${p} compiles: ${JSON.stringify(c)}`);
        return c.rule;
      });
      // The right answers: what RegExp says on short values of the same shape (instant there).
      const matches = (value: string, short: string): void => {
        const r = evaluateTrace(rules, [span('poison', { attrs: { v: value } })], { budgetMs: 1000 });
        assert.equal(r.budgetExceeded ?? false, false, JSON.stringify(r.budgetExceededRuleIds));
        assert.deepEqual(r.failedRuleIds ?? [], []);
        assert.equal(r.evaluated, rules.length);
        assert.deepEqual(
          r.violations.map((v) => patterns[Number(v.ruleId.slice(1))]),
          patterns.filter((p) => new RegExp(p).test(short)),
        );
      };
      matches('a'.repeat(length), 'a'.repeat(14));
      matches(`${'a'.repeat(length - 1)}!`, `${'a'.repeat(13)}!`);
    });
  }

  it('keeps evaluating other traces after a poison span (real pipeline, OTLP/gRPC client)', async () => {
    const betrace = await startTestPipeline({ worker: { trace_idle_timeout: '200ms', evaluation_budget: '250ms' } });
    const app = createTestApp({ service: 'poison', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    try {
      const post = async (def: RuleDefinition): Promise<number> =>
        (await fetch(`${betrace.apiUrl}/v1/rules`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(def) })).status;
      for (const [i, p] of POLYNOMIAL.entries()) assert.equal(await post(regexRule(`poly-${i}`, p)), 201, p);
      assert.equal(await post(rule('ordinary', 'trace.has(checkout) implies trace.has(payment)')), 201);

      const tracer = app.tracer();
      tracer.startSpan('poison', { kind: SpanKind.SERVER, attributes: { v: 'a'.repeat(4000) } }).end();
      await app.flush();
      for (let t = 0; t < 5; t++) tracer.startSpan('checkout', { kind: SpanKind.SERVER, attributes: { n: t } }).end();
      await app.flush();

      const ordinary = async (): Promise<number> => {
        const r = (await (await fetch(`${betrace.apiUrl}/v1/violations?rule_id=ordinary`)).json()) as { violations: unknown[] };
        return r.violations.length;
      };
      await waitUntil(async () => (await ordinary()) === 5, 10_000, 'the other traces are evaluated: 5 violations of the ordinary rule');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_worker_traces_evaluated_total'), 6, 'the poison trace was evaluated too');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_budget_exceeded_total'), 0);
      assert.equal((await fetch(`${betrace.apiUrl}/ready`)).status, 200);
    } finally {
      await app.shutdown();
      await betrace.stop();
    }
  });
});
