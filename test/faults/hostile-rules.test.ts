/**
 * Fault (f): hostile rules. A regex that needs backtracking or a deeply nested
 * condition is rejected at the API with its position; an expensive rule over a huge
 * trace is cut off by the evaluation budget, counted, and the process stays
 * responsive.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { startTestPipeline, metricValue, waitUntil } from '../helpers/pipeline.ts';

describe('hostile rules', () => {
  it('rejects catastrophic regexes and deep nesting, and bounds an expensive rule', async () => {
    const betrace = await startTestPipeline({ worker: { evaluation_budget: '1ms', trace_idle_timeout: '200ms' } });
    const post = (body: object) => fetch(`${betrace.apiUrl}/v1/rules`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    try {
      // Nested repetition is linear on RE2 (test/faults/regex-linear-time.test.ts); what needs backtracking is refused.
      const regex = await post({ id: 'evil-regex', severity: 'low', condition: 'not trace.has(*).where(http.url =~ "(a+)\\\\1$")' });
      assert.equal(regex.status, 400);
      const r = (await regex.json()) as { error: { code: string; message: string; column: number } };
      assert.equal(r.error.code, 'INVALID_CONDITION');
      assert.match(r.error.message, /regular expression refused: the back-reference \\1 is not supported/);
      assert.equal(r.error.column, 41);
      const deep = await post({ id: 'deep', severity: 'low', condition: `${'('.repeat(300)}true${')'.repeat(300)}` });
      assert.equal(deep.status, 400);
      assert.equal(((await deep.json()) as { error: { code: string } }).error.code, 'INVALID_CONDITION');

      // Every span against its ancestors on an attribute join: milliseconds on a big trace, past a 1 ms budget.
      const expensive = await post({ id: 'expensive', severity: 'low', condition: 'trace.every(*).has_ancestor(*).on(k)' });
      assert.equal(expensive.status, 201);
      const spans = Array.from({ length: 8000 }, (_, i) => ({
        traceId: Buffer.alloc(16, 9),
        spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex'),
        parentSpanId: i === 0 ? Buffer.alloc(0) : Buffer.from((Math.floor(i / 2) + 1).toString(16).padStart(16, '0'), 'hex'),
        name: `op${i % 50}`,
        startTimeUnixNano: String(1700000000000000000n + BigInt(i)),
        endTimeUnixNano: String(1700000000000000000n + BigInt(i) + 10n),
        attributes: [{ key: 'k', value: { stringValue: `v${i % 3}` } }],
      }));
      const body = Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans }] }] })).finish());
      assert.equal((await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body })).status, 200);
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_rule_evaluation_budget_exceeded_total', { rule_id: 'expensive' })) >= 1, 20_000, 'budget exceeded');
      const t0 = performance.now();
      assert.equal((await fetch(`${betrace.apiUrl}/health`)).status, 200);
      assert.ok(performance.now() - t0 < 1000, 'the process stays responsive');
    } finally {
      await betrace.stop();
    }
  });
});
