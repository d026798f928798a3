/**
 * Acceptance: the downstream backend down for 10 s then back: nothing accepted
 * is lost. Down for good: the export queue stays bounded and the drops show in
 * /metrics.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue, waitUntil } from '../helpers/pipeline.ts';
import { createTestApp, emitTraces, otlpExporter } from '../helpers/sdk.ts';

describe('downstream outages', () => {
  it('delivers every accepted span after a 10 s outage', async () => {
    const sink = await startOtlpSink();
    const betrace = await startTestPipeline({ downstream: { endpoint: sink.url, batch_timeout: '20ms', max_retry_time: '2m' } });
    try {
      await sink.stop();
      const app = createTestApp({ service: 'outage', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
      emitTraces(app, 200, 10);
      await app.flush();
      await app.shutdown();
      const accepted = await metricValue(betrace.apiUrl, 'betrace_receiver_spans_accepted_total');
      assert.equal(accepted, 2000, 'betrace accepted every span while downstream was down');
      await new Promise((r) => setTimeout(r, 10_000));
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_exporter_retries_total')) > 0, 'exports were retried');
      await sink.start();
      await sink.waitFor((s) => s.length >= 2000, 60_000, 'all spans after the outage');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(new Set(sink.spans.map((s) => s.key)).size, 2000);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total'), 0);
    } finally {
      await betrace.stop();
      await sink.close();
    }
  });

  it('keeps the queue bounded and counts drops when downstream never returns', async () => {
    const sink = await startOtlpSink();
    await sink.stop();
    const betrace = await startTestPipeline({
      downstream: { endpoint: sink.url, batch_timeout: '20ms', max_queue_spans: 500, max_batch_spans: 100, max_retry_time: '1s' },
    });
    try {
      const app = createTestApp({ service: 'gone', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
      emitTraces(app, 300, 10);
      await app.flush();
      await app.shutdown();
      let maxQueued = 0;
      await waitUntil(
        async () => {
          maxQueued = Math.max(maxQueued, await metricValue(betrace.apiUrl, 'betrace_exporter_queue_spans', { exporter: 'forwarder' }));
          const dropped = await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder' });
          return dropped === 3000;
        },
        60_000,
        'every span dropped and counted',
      );
      assert.ok(maxQueued <= 500, `queue bounded (saw ${maxQueued})`);
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total', { reason: 'queue_full' })) > 0);
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total', { reason: 'retries_exhausted' })) > 0);
      assert.equal((await fetch(`${betrace.apiUrl}/health`)).status, 200);
    } finally {
      await betrace.stop();
      await sink.close();
    }
  });
});
