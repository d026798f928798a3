/**
 * POST /v1/rules/validate and POST /v1/rules/try: a draft checked (errors at line and
 * column; the canonical reading and its notes as `rules check --explain` prints them) and
 * tried on a pasted OTLP/JSON trace, without a token, saving nothing.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rulesCheck } from '../../src/cli/rules-check.ts';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const span = (traceId: string, spanId: string, name: string, service: string) => ({
  resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
  scopeSpans: [{ spans: [{ traceId, spanId, name, startTimeUnixNano: '1765000000000000000', endTimeUnixNano: '1765000000500000000' }] }],
});
const TRACE = JSON.stringify({
  resourceSpans: [span('11111111111111111111111111111111', '1111111111111111', 'payment.charge', 'shop'), span('22222222222222222222222222222222', '2222222222222222', 'payment.charge', 'shop'), span('22222222222222222222222222222222', '3333333333333333', 'auth.check', 'auth')],
});

describe('rule drafts: validate and try', () => {
  let betrace: TestPipeline;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${betrace.apiUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  before(async () => {
    betrace = await startTestPipeline({ api: { token: 'drafts-token' } });
  });
  after(() => betrace.stop());

  it('names an error at its line and column', async () => {
    const r = await post('/v1/rules/validate', { condition: 'trace.has(a)\n  and trace.hsa(b)' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: false, errors: [{ line: 2, column: 7, message: 'unknown function trace.hsa (did you mean trace.has?)', code: 'unknown-name' }] });
  });

  it('gives the reading rules check --explain prints', async () => {
    const condition = 'trace.has(payment.charge) and trace.has(auth.check)';
    const r = await post('/v1/rules/validate', { condition });
    assert.equal(r.status, 200);
    const dir = mkdtempSync(join(tmpdir(), 'betrace-drafts-'));
    writeFileSync(join(dir, 'r.yaml'), `rules:\n  - id: draft\n    severity: high\n    condition: ${condition}\n`);
    const lines: string[] = [];
    await rulesCheck([join(dir, 'r.yaml')], { explain: true }, { stdout: (s) => lines.push(s), stderr: () => undefined });
    assert.deepEqual([`draft: ${r.body.canonical}`, ...(r.body.notes as string[]).map((n) => `  # ${n}`)], lines.slice(0, -1));
    assert.equal(r.body.canonical, 'trace.has(payment.charge) implies trace.has(auth.check)');
  });

  it('tries a draft on a pasted trace: which traces violate it, with their witnesses; saves nothing', async () => {
    const r = await post('/v1/rules/try', { id: 'needs-auth', severity: 'high', condition: 'trace.has(payment.charge) and trace.has(auth.check)', trace: TRACE });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.spans, 3);
    assert.deepEqual(
      r.body.traces.map((t: { trace_id: string; violated: boolean }) => [t.trace_id, t.violated]),
      [
        ['11111111111111111111111111111111', true],
        ['22222222222222222222222222222222', false],
      ],
    );
    assert.deepEqual(r.body.traces[0].witnesses, [{ span_id: '1111111111111111', name: 'payment.charge', service: 'shop', start_time_unix_nano: '1765000000000000000', end_time_unix_nano: '1765000000500000000' }]);
    const rules = (await (await fetch(`${betrace.apiUrl}/v1/rules`)).json()) as { rules: unknown[] };
    assert.deepEqual(rules.rules, []);
  });

  it('refuses a draft that does not compile, and a trace that is not OTLP JSON', async () => {
    const bad = await post('/v1/rules/try', { condition: 'trace.hsa(x)', trace: TRACE });
    assert.equal(bad.status, 400);
    assert.deepEqual([bad.body.error.code, bad.body.error.line, bad.body.error.column], ['INVALID_CONDITION', 1, 1]);
    const notJson = await post('/v1/rules/try', { condition: 'not trace.has(x)', trace: 'payment.charge' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, 'INVALID_TRACE');
    const empty = await post('/v1/rules/try', { condition: 'not trace.has(x)', trace: '{"resourceSpans": []}' });
    assert.equal(empty.body.error.code, 'INVALID_TRACE');
    assert.match(empty.body.error.message, /no spans/);
    const many = JSON.stringify({ resourceSpans: Array.from({ length: 1001 }, (_, i) => span(i.toString(16).padStart(32, '0').replace(/^0/, 'a'), '1111111111111111', 'x', 'shop')) });
    const tooMany = await post('/v1/rules/try', { condition: 'not trace.has(x)', trace: many });
    assert.equal(tooMany.body.error.code, 'INVALID_TRACE');
    assert.match(tooMany.body.error.message, /1001 traces: at most 1000/);
    const unknownField = await post('/v1/rules/validate', { condition: 'true', severty: 'high' });
    assert.equal(unknownField.status, 400);
    assert.equal(unknownField.body.error.code, 'INVALID_RULE');
  });
});
