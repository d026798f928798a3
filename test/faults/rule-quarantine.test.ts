/**
 * Fault: a rule over budget again and again. It is quarantined (not evaluated, logged,
 * counted, shown in GET /v1/rules and /ready) across a restart, until it is re-enabled
 * or changed; file rules and API rules alike, whether the watchdog stopped a thread in
 * it or the rule gave up at its budget itself.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter, type TestApp } from '../helpers/sdk.ts';
import { STALL_RULE, STALL_SPAN, emitTrace, stallingThreadModule } from '../helpers/stall.ts';

const json = { 'Content-Type': 'application/json' };

interface RuleBody {
  state: string;
  version: number;
  quarantine?: { reason: string; since: string };
}

const getRule = async (b: TestPipeline, id: string) => (await (await fetch(`${b.apiUrl}/v1/rules/${id}`)).json()) as RuleBody;
const ready = async (b: TestPipeline) => {
  const res = await fetch(`${b.apiUrl}/ready`);
  return { code: res.status, body: (await res.json()) as { status: string; reasons?: Record<string, string> } };
};
const violations = async (b: TestPipeline, rule: string) =>
  ((await (await fetch(`${b.apiUrl}/v1/violations?rule_id=${rule}&limit=1000`)).json()) as { violations: Array<{ trace_id: string }> }).violations.map((v) => v.trace_id);

describe('rule quarantine', () => {
  it('quarantines an API rule the watchdog stopped twice, keeps it across a restart, lifts it on enable and on change', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-quarantine-'));
    const config = {
      worker: { evaluation_threads: 2, evaluation_budget: '50ms', evaluation_stall_margin: '200ms', trace_idle_timeout: '100ms', quarantine_after: 2, quarantine_window: '10m' },
    };
    let betrace = await startTestPipeline(config, { dataDir, evaluatorThreadModule: stallingThreadModule });
    let app = createTestApp({ service: 'quarantine', exporters: [otlpExporter('http', betrace.httpUrl)] });
    try {
      for (const rule of [
        { id: STALL_RULE, severity: 'low', condition: 'true' },
        { id: 'ordinary', severity: 'high', condition: 'not trace.has(bad)' },
      ]) {
        assert.equal((await fetch(`${betrace.apiUrl}/v1/rules`, { method: 'POST', headers: json, body: JSON.stringify(rule) })).status, 201);
      }
      assert.equal((await getRule(betrace, STALL_RULE)).state, 'enabled');
      const stalls = () => metricValue(betrace.apiUrl, 'betrace_rule_evaluation_stalls_total', { rule_id: STALL_RULE });
      for (let i = 1; i <= 2; i++) {
        emitTrace(app, ['bad', STALL_SPAN]);
        await app.flush();
        await waitUntil(async () => (await stalls()) === i, 10_000, `stall ${i}`);
      }
      await waitUntil(async () => (await getRule(betrace, STALL_RULE)).state === 'quarantined', 5000, 'quarantined');
      const q = (await getRule(betrace, STALL_RULE)).quarantine!;
      assert.match(q.reason, /over the 50 ms evaluation budget 2 times within 10 min \(2 of them stuck/);
      assert.ok(Math.abs(Date.parse(q.since) - Date.now()) < 60_000, q.since);
      const r = await ready(betrace);
      assert.equal(r.code, 200, 'a quarantined rule does not take the process out of service');
      assert.equal(r.body.status, 'degraded');
      assert.match(r.body.reasons?.rules_quarantined ?? '', new RegExp(`quarantined: ${STALL_RULE} \\(over the 50 ms`));
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rules_quarantined'), 1);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_quarantines_total', { rule_id: STALL_RULE }), 1);
      assert.ok(betrace.logs.some((l) => l.includes('"level":40') && l.includes(`rule ${STALL_RULE} quarantined`)), 'a warning names the rule and why');

      // Quarantined: not evaluated, so the trace that got threads stuck is evaluated at once by the other rules.
      const third = emitTrace(app, ['bad', STALL_SPAN]);
      await app.flush();
      await waitUntil(async () => (await violations(betrace, 'ordinary')).includes(third), 10_000, 'the third trace evaluated');
      assert.equal(await stalls(), 2, 'no thread stuck in a quarantined rule');

      // Kept across a restart.
      await app.shutdown();
      await betrace.stop();
      betrace = await startTestPipeline(config, { dataDir, evaluatorThreadModule: stallingThreadModule });
      app = createTestApp({ service: 'quarantine', exporters: [otlpExporter('http', betrace.httpUrl)] });
      assert.equal((await getRule(betrace, STALL_RULE)).state, 'quarantined');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rules_quarantined'), 1);

      // Re-enabled: evaluated again (and stuck again: the watchdog still stops the thread).
      const enabled = await fetch(`${betrace.apiUrl}/v1/rules/${STALL_RULE}/enable`, { method: 'POST' });
      assert.equal(enabled.status, 200);
      const body = (await enabled.json()) as RuleBody;
      assert.equal(body.state, 'enabled');
      assert.equal(body.quarantine, undefined);
      assert.deepEqual((await ready(betrace)).body, { status: 'ready' });
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rules_quarantined'), 0);
      emitTrace(app, ['bad', STALL_SPAN]);
      await app.flush();
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_stalls_total', { rule_id: STALL_RULE })) === 1, 10_000, 'evaluated again');

      // Quarantined again, then changed (PUT): lifted.
      emitTrace(app, ['bad', STALL_SPAN]);
      await app.flush();
      await waitUntil(async () => (await getRule(betrace, STALL_RULE)).state === 'quarantined', 10_000, 'quarantined again');
      const changed = await fetch(`${betrace.apiUrl}/v1/rules/${STALL_RULE}`, { method: 'PUT', headers: json, body: JSON.stringify({ severity: 'medium', condition: 'true' }) });
      assert.equal(changed.status, 200);
      assert.equal(((await changed.json()) as RuleBody).state, 'enabled');
      assert.equal((await ready(betrace)).body.status, 'ready');
    } finally {
      await app.shutdown();
      await betrace.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('quarantines a file rule that exceeds a real budget through the real pipeline; enabling it lifts the quarantine', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-quarantine-file-'));
    // Every span against its ancestors on an attribute join: milliseconds on a big trace, past a 1 ms budget.
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: expensive\n    severity: low\n    condition: trace.every(*).has_ancestor(*).on(k)\n  - id: ordinary\n    severity: high\n    condition: not trace.has(bad)\n');
    const betrace = await startTestPipeline({ rules: { paths: [join(dir, 'rules.yaml')] }, worker: { evaluation_budget: '1ms', trace_idle_timeout: '200ms', quarantine_after: 2 } });
    const app = createTestApp({ service: 'quarantine-file', exporters: [otlpExporter('http', betrace.httpUrl)] });
    const exceeded = () => metricValue(betrace.apiUrl, 'betrace_rule_evaluation_budget_exceeded_total', { rule_id: 'expensive' });
    try {
      for (let i = 1; i <= 2; i++) {
        bigTrace(app, 8000);
        await app.flush();
        await waitUntil(async () => (await exceeded()) === i, 20_000, `budget exceeded ${i}`);
      }
      await waitUntil(async () => (await getRule(betrace, 'expensive')).state === 'quarantined', 5000, 'quarantined');
      assert.match((await getRule(betrace, 'expensive')).quarantine!.reason, /over the 1 ms evaluation budget 2 times within 10 min$/);
      assert.match((await ready(betrace)).body.reasons?.rules_quarantined ?? '', /quarantined: expensive/);

      // Not evaluated any more: a third big trace costs it nothing; the other rule still sees it.
      const third = bigTrace(app, 8000);
      await app.flush();
      await waitUntil(async () => (await violations(betrace, 'ordinary')).includes(third), 20_000, 'third trace evaluated');
      assert.equal(await exceeded(), 2);

      const enabled = await fetch(`${betrace.apiUrl}/v1/rules/expensive/enable`, { method: 'POST' });
      assert.equal(enabled.status, 200);
      assert.equal(((await enabled.json()) as RuleBody).state, 'enabled');
      bigTrace(app, 8000);
      await app.flush();
      await waitUntil(async () => (await exceeded()) === 3, 20_000, 'evaluated again after enable');
    } finally {
      await app.shutdown();
      await betrace.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A trace of `spans` spans in a binary tree (span i under span (i - 1) / 2), with attribute k, and a span named bad; returns its id. */
function bigTrace(app: TestApp, spans: number): string {
  const tracer = app.tracer();
  const all = [tracer.startSpan('bad', { attributes: { k: 'v0' } })];
  for (let i = 1; i < spans; i++) {
    all.push(tracer.startSpan(`op${i % 50}`, { attributes: { k: `v${i % 3}` } }, trace.setSpan(context.active(), all[(i - 1) >> 1]!)));
  }
  for (const s of all) s.end();
  return all[0]!.spanContext().traceId;
}
