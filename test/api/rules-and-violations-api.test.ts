/** The admin API, embedded mode: every endpoint and every error. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_ERRORS } from '../../src/api/errors.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const TOKEN = 's3cret-token-for-tests';

async function call(base: string, method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as Record<string, any> };
}

describe('rules and violations API (embedded)', () => {
  let betrace: TestPipeline;
  let sink: OtlpSink;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'betrace-api-'));
    writeFileSync(join(dir, 'file-rules.yaml'), 'rules:\n  - id: from-file\n    severity: low\n    condition: not trace.has(file.bad)\n');
    sink = await startOtlpSink();
    betrace = await startTestPipeline(
      {
        api: { token: TOKEN },
        rules: { paths: [join(dir, '*.yaml')] },
        worker: { trace_idle_timeout: '300ms' },
        downstream: { endpoint: sink.url, batch_timeout: '10ms' },
      },
      { dataDir: join(dir, 'data') },
    );
  });
  after(async () => {
    await betrace.stop();
    await sink.close();
  });

  it('serves its OpenAPI document', async () => {
    const r = await call(betrace.apiUrl, 'GET', '/openapi.json');
    assert.equal(r.status, 200);
    const file = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'src', 'api', 'openapi.json'), 'utf8')) as unknown;
    assert.deepEqual(r.body, file);
    assert.ok(r.body.paths['/v1/rules/{id}/disable']);
  });

  it('lists file rules as read-only with a version', async () => {
    const r = await call(betrace.apiUrl, 'GET', '/v1/rules');
    assert.equal(r.status, 200);
    const rule = r.body.rules.find((x: { id: string }) => x.id === 'from-file');
    assert.equal(rule.source, 'file');
    assert.equal(rule.version, 1);
    assert.equal(rule.condition.trim(), 'not trace.has(file.bad)');
    assert.equal((await call(betrace.apiUrl, 'PUT', '/v1/rules/from-file', { severity: 'low', condition: 'true' })).body.error.code, 'RULE_READ_ONLY');
    const del = await call(betrace.apiUrl, 'DELETE', '/v1/rules/from-file');
    assert.equal(del.status, 409);
    assert.equal(del.body.error.code, 'RULE_READ_ONLY');
  });

  it('creates, reads, replaces and deletes an API rule, its version growing', async () => {
    const created = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'api-rule', severity: 'HIGH'.toLowerCase(), condition: 'not trace.has(api.bad)', tags: ['x'] });
    assert.equal(created.status, 201);
    assert.equal(created.body.source, 'api');
    assert.equal(created.body.version, 1);
    assert.equal(created.body.canonical, 'not trace.has(api.bad)');
    assert.equal((await call(betrace.apiUrl, 'GET', '/v1/rules/api-rule')).body.id, 'api-rule');
    const again = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'api-rule', severity: 'high', condition: 'true' });
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'RULE_EXISTS');
    const replaced = await call(betrace.apiUrl, 'PUT', '/v1/rules/api-rule', { severity: 'critical', condition: 'not trace.has(api.worse)' });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.version, 2);
    assert.equal(replaced.body.severity, 'critical');
    const fresh = await call(betrace.apiUrl, 'PUT', '/v1/rules/put-created', { severity: 'info', condition: 'true' });
    assert.equal(fresh.status, 201);
    assert.equal((await call(betrace.apiUrl, 'DELETE', '/v1/rules/put-created')).status, 204);
    const gone = await call(betrace.apiUrl, 'GET', '/v1/rules/put-created');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'RULE_NOT_FOUND');
    assert.equal((await call(betrace.apiUrl, 'DELETE', '/v1/rules/never-was')).status, 404);
    assert.ok(betrace.logs.some((l) => /"audit":true/.test(l) && /"action":"replaced"/.test(l) && /"oldVersion":1/.test(l) && /"newVersion":2/.test(l)));
    assert.ok(!betrace.logs.some((l) => l.includes(TOKEN)), 'the token is never logged');
  });

  it('rejects invalid rules: schema errors, and conditions with line and column', async () => {
    const schema = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'Bad Id', severity: 'urgent', condition: 'true', extra: 1 });
    assert.equal(schema.status, 400);
    assert.equal(schema.body.error.code, 'INVALID_RULE');
    assert.ok(schema.body.error.errors.length >= 3);
    const cond = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'bad-cond', severity: 'low', condition: 'trace.has(x) and\n  trace.count(y) >' });
    assert.equal(cond.status, 400);
    assert.equal(cond.body.error.code, 'INVALID_CONDITION');
    assert.equal(cond.body.error.line, 2);
    assert.equal(typeof cond.body.error.column, 'number');
    assert.equal(typeof cond.body.error.message, 'string');
    const json = await call(betrace.apiUrl, 'POST', '/v1/rules', '{"id": ');
    assert.equal(json.status, 400);
    assert.equal(json.body.error.code, 'INVALID_JSON');
    const mismatch = await call(betrace.apiUrl, 'PUT', '/v1/rules/one', { id: 'two', severity: 'low', condition: 'true' });
    assert.equal(mismatch.body.error.code, 'INVALID_RULE');
  });

  it('requires the bearer token on mutating calls only: 401 without, 403 wrong', async () => {
    const none = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'auth-rule', severity: 'low', condition: 'true' }, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHENTICATED');
    const wrong = await call(betrace.apiUrl, 'POST', '/v1/rules/from-file/disable', undefined, 'nope');
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error.code, 'FORBIDDEN');
    assert.equal((await call(betrace.apiUrl, 'DELETE', '/v1/rules/api-rule', undefined, null)).status, 401);
    assert.equal((await call(betrace.apiUrl, 'GET', '/v1/rules', undefined, null)).status, 200);
  });

  it('answers unknown routes and methods', async () => {
    assert.equal((await call(betrace.apiUrl, 'GET', '/v1/nothing')).body.error.code, 'NOT_FOUND');
    assert.equal((await call(betrace.apiUrl, 'PATCH', '/v1/rules')).body.error.code, 'METHOD_NOT_ALLOWED');
  });

  it('a rule created while the pipeline runs yields violations within seconds; disabled, it yields none', async () => {
    const created = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'no-refund-without-charge', severity: 'critical', condition: 'trace.has(refund) and trace.has(charge)' });
    assert.equal(created.status, 201);
    const app = createTestApp({ service: 'api-live', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    const emit = () => {
      const s = app.tracer().startSpan('refund');
      s.end();
      return s.spanContext().traceId;
    };
    const first = emit();
    await app.flush();
    await waitUntil(async () => (await call(betrace.apiUrl, 'GET', `/v1/violations?trace_id=${first}`)).body.violations.length === 1, 10_000, 'violation of the new rule');
    // By service: the app's names it, another does not.
    assert.equal((await call(betrace.apiUrl, 'GET', `/v1/violations?trace_id=${first}&service=api-live`)).body.violations.length, 1);
    assert.equal((await call(betrace.apiUrl, 'GET', `/v1/violations?trace_id=${first}&service=elsewhere`)).body.violations.length, 0);
    const disabled = await call(betrace.apiUrl, 'POST', '/v1/rules/no-refund-without-charge/disable');
    assert.equal(disabled.status, 200);
    assert.equal(disabled.body.enabled, false);
    assert.equal(disabled.body.version, 2);
    await new Promise((r) => setTimeout(r, 200));
    const second = emit();
    await app.flush();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await call(betrace.apiUrl, 'GET', `/v1/violations?trace_id=${second}`)).body.violations.length, 0, 'disabled: no violation');
    const enabled = await call(betrace.apiUrl, 'POST', '/v1/rules/no-refund-without-charge/enable');
    assert.equal(enabled.body.enabled, true);
    assert.equal(enabled.body.version, 3);
    await app.shutdown();
  });

  it('disables and re-enables a file rule as an override', async () => {
    const off = await call(betrace.apiUrl, 'POST', '/v1/rules/from-file/disable');
    assert.equal(off.status, 200);
    assert.equal(off.body.enabled, false);
    assert.equal(off.body.source, 'file');
    assert.equal(off.body.version, 2);
    const on = await call(betrace.apiUrl, 'POST', '/v1/rules/from-file/enable');
    assert.equal(on.body.enabled, true);
    assert.equal(on.body.version, 3);
    assert.equal((await call(betrace.apiUrl, 'POST', '/v1/rules/missing/enable')).status, 404);
  });

  it('enabling an enabled rule or disabling a disabled one changes nothing: same version, state and rule', async () => {
    const created = await call(betrace.apiUrl, 'POST', '/v1/rules', { id: 'idempotent-toggle', severity: 'low', condition: 'trace.has(x)' });
    assert.equal(created.body.version, 1);
    for (const id of ['idempotent-toggle', 'from-file']) {
      const before = (await call(betrace.apiUrl, 'GET', `/v1/rules/${id}`)).body;
      assert.equal(before.enabled, true);
      const again = await call(betrace.apiUrl, 'POST', `/v1/rules/${id}/enable`);
      assert.equal(again.status, 200);
      assert.equal(again.body.version, before.version, `${id}: enabling an enabled rule keeps its version`);
      const off = await call(betrace.apiUrl, 'POST', `/v1/rules/${id}/disable`);
      assert.equal(off.body.version, before.version + 1);
      const offAgain = await call(betrace.apiUrl, 'POST', `/v1/rules/${id}/disable`);
      assert.equal(offAgain.status, 200);
      assert.equal(offAgain.body.enabled, false);
      assert.equal(offAgain.body.version, before.version + 1, `${id}: disabling a disabled rule keeps its version`);
      assert.equal((await call(betrace.apiUrl, 'GET', `/v1/rules/${id}`)).body.version, before.version + 1);
      assert.equal((await call(betrace.apiUrl, 'POST', `/v1/rules/${id}/enable`)).body.version, before.version + 2);
    }
    assert.equal((await call(betrace.apiUrl, 'DELETE', '/v1/rules/idempotent-toggle')).status, 204);
  });

  it('queries violations with filters and cursor pagination, newest first', async () => {
    const app = createTestApp({ service: 'api-query', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    const traces: string[] = [];
    for (let i = 0; i < 5; i++) {
      const s = app.tracer().startSpan('file.bad');
      s.end();
      traces.push(s.spanContext().traceId);
      await app.flush();
      await new Promise((r) => setTimeout(r, 30));
    }
    await app.shutdown();
    await waitUntil(async () => (await call(betrace.apiUrl, 'GET', '/v1/violations?rule_id=from-file')).body.violations.length === 5, 10_000, '5 violations');
    const low = await call(betrace.apiUrl, 'GET', '/v1/violations?severity=LOW&limit=2');
    assert.equal(low.body.violations.length, 2);
    assert.ok(low.body.next_cursor);
    const seen = [...low.body.violations];
    let cursor = low.body.next_cursor as string | null;
    while (cursor) {
      const page = await call(betrace.apiUrl, 'GET', `/v1/violations?severity=low&limit=2&cursor=${cursor}`);
      seen.push(...page.body.violations);
      cursor = page.body.next_cursor;
    }
    assert.deepEqual(seen.map((v) => v.trace_id), [...traces].reverse(), 'every one once, newest first');
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await call(betrace.apiUrl, 'GET', `/v1/violations?rule_id=from-file&start_time=${now - 120}&end_time=${now + 60}`)).body.violations.length, 5);
    assert.equal((await call(betrace.apiUrl, 'GET', `/v1/violations?rule_id=from-file&end_time=${now - 3600}`)).body.violations.length, 0);
    assert.equal((await call(betrace.apiUrl, 'GET', '/v1/violations?severity=critical&rule_id=from-file')).body.violations.length, 0);
    for (const bad of ['start_time=yesterday', 'severity=urgent', 'limit=0', 'limit=5000', 'trace_id=xyz', 'cursor=%%%']) {
      const r = await call(betrace.apiUrl, 'GET', `/v1/violations?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error.code, 'INVALID_PARAMETER', bad);
    }
  });

  it('keeps API rules across a restart', async () => {
    const other = await startTestPipeline({ api: { token: TOKEN } }, { dataDir: join(dir, 'data') });
    try {
      const r = await call(other.apiUrl, 'GET', '/v1/rules/api-rule');
      assert.equal(r.status, 200);
      assert.equal(r.body.version, 2);
      assert.equal((await call(other.apiUrl, 'GET', '/v1/violations?rule_id=from-file')).body.violations.length, 5, 'violations kept too');
    } finally {
      await other.stop();
    }
  });

  it('documents every error code in src/api/README.md', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'api', 'README.md'), 'utf8');
    for (const code of Object.keys(API_ERRORS)) assert.ok(doc.includes(`\`${code}\``), `${code} documented`);
  });
});
