/**
 * Fault: a rule gets an evaluation thread stuck (as a catastrophic regex did). The
 * pool's watchdog stops the thread past budget + margin and replaces it; the stuck
 * trace counts as over budget for that rule and is evaluated again without it; the
 * other traces keep being evaluated, by the other rules too; shutdown is not held up.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';
import { STALL_RULE, STALL_SPAN, emitTrace, stallingThreadModule } from '../helpers/stall.ts';

const json = { 'Content-Type': 'application/json' };

describe('evaluator watchdog', () => {
  it('stops a stuck thread; other traces and rules keep being evaluated', async () => {
    const betrace = await startTestPipeline(
      { worker: { evaluation_threads: 1, evaluation_budget: '100ms', evaluation_stall_margin: '400ms', trace_idle_timeout: '100ms', quarantine_after: 0 } },
      { evaluatorThreadModule: stallingThreadModule },
    );
    const app = createTestApp({ service: 'watchdog', exporters: [otlpExporter('http', betrace.httpUrl)] });
    const violations = async (rule: string) =>
      ((await (await fetch(`${betrace.apiUrl}/v1/violations?rule_id=${rule}&limit=1000`)).json()) as { violations: Array<{ trace_id: string }> }).violations;
    try {
      for (const rule of [
        { id: STALL_RULE, severity: 'low', condition: 'true' },
        { id: 'ordinary', severity: 'high', condition: 'not trace.has(bad)' },
      ]) {
        assert.equal((await fetch(`${betrace.apiUrl}/v1/rules`, { method: 'POST', headers: json, body: JSON.stringify(rule) })).status, 201);
      }
      const stuck = emitTrace(app, ['bad', STALL_SPAN]);
      await app.flush();
      // The only thread is stuck on `stuck`; these arrive meanwhile, in three requests.
      const others: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 10; i++) others.push(emitTrace(app, ['bad', 'ok']));
        await app.flush();
        await new Promise((r) => setTimeout(r, 150));
      }
      const sentAt = Date.now();
      await waitUntil(async () => (await violations('ordinary')).length === 31, 10_000, "31 violations of rule 'ordinary' within 10 s");
      const found = new Set((await violations('ordinary')).map((v) => v.trace_id));
      assert.ok(found.has(stuck), 'the stuck trace is evaluated again, without the rule it was stuck in');
      for (const id of others) assert.ok(found.has(id), `trace ${id} evaluated`);
      assert.ok(Date.now() - sentAt < 10_000);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_stalls_total', { rule_id: STALL_RULE }), 1);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_budget_exceeded_total', { rule_id: STALL_RULE }), 1);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_budget_exceeded_total', { rule_id: 'ordinary' }), 0);
      assert.ok(betrace.logs.some((l) => l.includes('"level":40') && l.includes(`stuck in rule ${STALL_RULE}`)), 'a warning names the rule');

      // Shutdown with a thread stuck again: the watchdog stops it, SIGTERM's shutdown completes.
      emitTrace(app, ['bad', STALL_SPAN]);
      await app.flush();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await app.shutdown();
      const t0 = Date.now();
      await betrace.stop();
      assert.ok(Date.now() - t0 < 10_000, `shutdown within 10 s with a stuck thread (${Date.now() - t0} ms)`);
      assert.equal(betrace.logs.filter((l) => l.includes(`stuck in rule ${STALL_RULE}`)).length, 2, 'the thread stuck at shutdown was stopped');
    }
  });
});
