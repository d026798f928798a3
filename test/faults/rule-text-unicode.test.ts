/**
 * Fault: a rule whose name (or description, message, tags, condition) holds a lone
 * surrogate. Violation spans carry those fields as UTF-8, which cannot hold it: a
 * conformant decoder downstream refuses the whole export, and with it the violations of
 * every other rule in the batch. Such a rule is refused at load: through the API with
 * INVALID_RULE naming the field (in rule files at FILE:LINE:COL, test/rules/rule-file.test.ts),
 * and the other rules' violation spans all reach a real OpenTelemetry Collector.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { startOtelCollector } from '../helpers/otelcol.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

interface ApiError {
  error: { code: string; message: string; errors?: { path: string; field: string; offset: number }[] };
}

describe('rule text that is not Unicode', () => {
  it('is refused by the API naming the field, and the other rules\' violation spans all reach a Go decoder', async () => {
    const sink = await startOtlpSink();
    const collector = await startOtelCollector({ exportTo: sink.url });
    const betrace = await startTestPipeline({ downstream: { endpoint: collector.url }, worker: { trace_idle_timeout: '200ms' } });
    const app = createTestApp({ service: 'shop', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    const send = (method: string, path: string, body: object): Promise<Response> =>
      fetch(`${betrace.apiUrl}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    try {
      const base = { severity: 'high', condition: 'trace.has(checkout) implies trace.has(payment)' };
      const bad: [object, string, string][] = [
        [{ id: 'lone-name', name: 'x\ud800', ...base }, 'name', '/name'],
        [{ id: 'lone-message', message: 'paid \udc00 twice', ...base }, 'message', '/message'],
        [{ id: 'lone-description', description: '\ud83d', ...base }, 'description', '/description'],
        [{ id: 'lone-tag', tags: ['pci', 'x\udfffy'], ...base }, 'tags[1]', '/tags/1'],
        [{ id: 'lone-condition', severity: 'high', condition: 'trace.has("a\ud800")' }, 'condition', '/condition'],
      ];
      for (const [rule, field, path] of bad) {
        const r = await send('POST', '/v1/rules', rule);
        assert.equal(r.status, 400, field);
        const e = (await r.json()) as ApiError;
        assert.equal(e.error.code, 'INVALID_RULE', field);
        assert.ok(e.error.message.startsWith(`\`${field}\` is not valid Unicode text: a lone surrogate`), e.error.message);
        assert.equal(e.error.errors?.[0]?.path, path);
      }
      // A replacement through PUT is refused the same way and leaves the rule as it was.
      assert.equal((await send('POST', '/v1/rules', { id: 'ordinary', name: 'checkout needs payment 💳', ...base })).status, 201);
      const put = await send('PUT', '/v1/rules/ordinary', { name: 'checkout \ud800', ...base });
      assert.equal(put.status, 400);
      assert.equal(((await put.json()) as ApiError).error.code, 'INVALID_RULE');
      const rules = (await (await fetch(`${betrace.apiUrl}/v1/rules`)).json()) as { rules: { id: string; name: string }[] };
      assert.deepEqual(rules.rules.map((r) => [r.id, r.name]), [['ordinary', 'checkout needs payment 💳']]);

      const tracer = app.tracer();
      for (let t = 0; t < 40; t++) tracer.startSpan('checkout', { kind: SpanKind.SERVER, attributes: { n: t } }).end();
      await app.flush();
      await sink.waitFor((spans) => spans.filter((s) => s.name === 'betrace.violation').length === 40, 10_000, '40 violation spans through the Collector');
      const names = new Set(sink.spans.filter((s) => s.name === 'betrace.violation').map((s) => s.attributes['betrace.rule.name']));
      assert.deepEqual([...names], ['checkout needs payment 💳']);
    } finally {
      await app.shutdown();
      await betrace.stop();
      await collector.close();
      await sink.close();
    }
  });
});
