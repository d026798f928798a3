/**
 * Acceptance: an app instrumented with the OpenTelemetry JS SDK sends 10,000
 * spans in 1,000 traces through betrace (OTLP/gRPC, then OTLP/HTTP); the
 * downstream sink receives every span exactly once, identical to what the same
 * SDK sent straight to a reference sink (ids, names, times, attributes, events,
 * links, status, resource and scope).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpSink, type OtlpSink, type FlatSpan } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, emitTraces, otlpExporter, type ExporterKind } from '../helpers/sdk.ts';

function byKey(spans: readonly FlatSpan[]): Map<string, FlatSpan> {
  return new Map(spans.map((s) => [s.key, s]));
}

for (const kind of ['grpc', 'http'] as ExporterKind[]) {
  describe(`forwarding over OTLP/${kind}`, () => {
    let downstream: OtlpSink;
    let reference: OtlpSink;
    let betrace: TestPipeline;

    before(async () => {
      downstream = await startOtlpSink();
      reference = await startOtlpSink();
      betrace = await startTestPipeline({ downstream: { endpoint: downstream.url, batch_timeout: '20ms' } });
    });
    after(async () => {
      await betrace.stop();
      await downstream.close();
      await reference.close();
    });

    it('delivers 10,000 spans in 1,000 traces exactly once and unchanged', async () => {
      const app = createTestApp({
        service: `shop-${kind}`,
        exporters: [otlpExporter(kind, kind === 'grpc' ? betrace.grpcUrl : betrace.httpUrl), otlpExporter('grpc', reference.url)],
      });
      emitTraces(app, 1000, 10);
      await app.flush();
      await app.shutdown();
      await reference.waitFor((s) => s.length >= 10_000, 30_000, 'reference spans');
      await downstream.waitFor((s) => s.length >= 10_000, 30_000, 'downstream spans');
      // Let any duplicate arrive before counting.
      await new Promise((r) => setTimeout(r, 300));

      assert.equal(reference.spans.length, 10_000);
      assert.equal(downstream.spans.length, 10_000, 'every span exactly once');
      const got = byKey(downstream.spans);
      assert.equal(got.size, 10_000, 'no span twice');
      assert.equal(new Set(downstream.spans.map((s) => s.traceId)).size, 1000);
      for (const want of reference.spans) {
        const have = got.get(want.key);
        assert.ok(have, `span ${want.key} arrived`);
        assert.deepEqual(have.full, want.full, `span ${want.key} unchanged`);
      }
      // The comparison covers what the SDK sent: events, links, status and array attributes are present.
      const sample = reference.spans.find((s) => s.name === 'payment.charge' && (s.span.events as unknown[] | undefined)?.length);
      assert.ok(sample, 'reference spans carry events');
      assert.ok(reference.spans.some((s) => (s.span.links as unknown[] | undefined)?.length), 'reference spans carry links');
      assert.ok(reference.spans.some((s) => (s.span.status as { code?: number } | undefined)?.code === 2), 'reference spans carry error statuses');

      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_spans_accepted_total', { protocol: kind }), 10_000);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_exporter_spans_sent_total', { exporter: 'forwarder' }), 10_000);
    });
  });
}
