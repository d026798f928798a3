/**
 * Acceptance (workers): a simulated e-commerce system instrumented with the
 * OpenTelemetry JS SDK, several services, each trace's spans split over several
 * export requests and arriving out of order, with known injected violations of
 * each example rule. Downstream receives exactly one violation span per injected
 * violation (right trace, rule, witnesses, parent = root span), none for clean
 * traces, and every original span.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue, type TestPipeline } from '../helpers/pipeline.ts';
import { otlpExporter } from '../helpers/sdk.ts';
import { Shop, runScenario, type ShopOrder } from '../helpers/shop.ts';

const rulesFile = join(import.meta.dirname, '..', '..', 'config', 'rules', 'seed-invariants.yaml');

describe('detecting injected violations', () => {
  let sink: OtlpSink;
  let reference: OtlpSink;
  let betrace: TestPipeline;
  let orders: ShopOrder[];

  before(async () => {
    sink = await startOtlpSink();
    reference = await startOtlpSink();
    betrace = await startTestPipeline({
      downstream: { endpoint: sink.url, batch_timeout: '20ms' },
      worker: { trace_idle_timeout: '1500ms', late_span_grace: '5s' },
      rules: { paths: [rulesFile] },
    });
    const shop = new Shop((service) => [
      otlpExporter(service === 'payments' ? 'http' : 'grpc', service === 'payments' ? betrace.httpUrl : betrace.grpcUrl),
      otlpExporter('grpc', reference.url),
    ]);
    orders = runScenario(shop, 60);
    await shop.flush(200);
    await shop.shutdown();
  });
  after(async () => {
    await betrace.stop();
    await sink.close();
    await reference.close();
  });

  it('emits exactly one violation span per injected violation and none for clean traces', async () => {
    const injected = orders.filter((o) => o.violates !== undefined);
    assert.equal(injected.length, 12);
    const violationSpans = () => sink.spans.filter((s) => s.name === 'betrace.violation');
    await sink.waitFor(() => violationSpans().length >= injected.length, 30_000, 'violation spans');
    // Wait past the idle timeout again so that a wrong extra violation would show.
    await new Promise((r) => setTimeout(r, 2500));
    const spans = violationSpans();
    assert.equal(spans.length, injected.length, `violations: ${spans.map((s) => s.attributes['betrace.rule.id']).join(', ')}`);
    const byTrace = new Map(spans.map((s) => [s.traceId, s]));
    assert.equal(byTrace.size, injected.length, 'one per violating trace');
    for (const order of injected) {
      const v = byTrace.get(order.traceId);
      assert.ok(v, `violation for ${order.violates} in trace ${order.traceId}`);
      assert.equal(v.attributes['betrace.rule.id'], order.violates);
      assert.equal(Buffer.from(v.span.parentSpanId as string, 'base64').toString('hex'), order.rootSpanId, 'parent is the root span');
      const witnessIds = (v.attributes['betrace.violation.span_ids'] as { values: Array<{ stringValue: string }> }).values.map((x) => x.stringValue).sort();
      assert.deepEqual(witnessIds, order.witnesses, `witnesses of ${order.violates}`);
      assert.equal(Number(v.attributes['betrace.violation.witness_count']), order.witnesses.length);
      assert.equal((v.span.status as { code: number }).code, 2);
      assert.equal(v.span.kind, 1);
      assert.equal((v.full.resource as { attributes: Array<{ key: string; value: { stringValue: string } }> }).attributes[0]!.value.stringValue, 'betrace');
      assert.equal(v.spanId, (v.attributes['betrace.violation.id'] as string).slice(0, 16));
    }
  });

  it('passes every original span through', async () => {
    await reference.waitFor((s) => s.length > 0);
    const originals = sink.spans.filter((s) => s.name !== 'betrace.violation');
    const got = new Set(originals.map((s) => s.key));
    for (const s of reference.spans) assert.ok(got.has(s.key), `span ${s.name} ${s.key} forwarded`);
    assert.equal(originals.length, reference.spans.length);
  });

  it('stores and counts the violations', async () => {
    const page = betrace.pipeline.violations!.query({ limit: 1000 });
    assert.equal(page.violations.length, 12);
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_violations_total'), 12);
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_violations_total', { rule_id: 'payment-idempotency', severity: 'critical' }), 3);
    assert.ok((await metricValue(betrace.apiUrl, 'betrace_worker_traces_evaluated_total')) >= 60);
  });
});
