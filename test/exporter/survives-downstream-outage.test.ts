/**
 * Acceptance: the downstream backend down for 10 s then back: nothing accepted
 * is lost. Down for good: the export queue stays bounded and the drops show in
 * /metrics.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
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

  it('holds a burst back at the receiver, not dropping it, while a slow downstream takes exports', async () => {
    const sink = await startOtlpSink();
    sink.delayMs = 150;
    const betrace = await startTestPipeline({
      transport: { max_queued_bytes: '64KiB' },
      receiver: { retry_after: '100ms' },
      downstream: { endpoint: sink.url, batch_timeout: '20ms', max_queue_spans: 500, max_batch_spans: 100 },
    });
    const client = rawTraceClient(betrace.grpcUrl);
    try {
      // 40 requests of 100 spans (~40 KB each), 8 at a time, each sent again when refused.
      let unavailable = 0;
      const send = async (body: Buffer) => {
        for (;;) {
          const { err } = await client.export(body);
          if (err === null) return;
          assert.equal(err.code, grpc.status.UNAVAILABLE, err.message);
          unavailable++;
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const bodies = Array.from({ length: 40 }, (_, r) => burstRequest(r));
      for (let i = 0; i < bodies.length; i += 8) await Promise.all(bodies.slice(i, i + 8).map(send));
      await sink.waitFor((s) => new Set(s.map((x) => x.key)).size >= 4000, 10_000, 'every span of the burst').catch(async (e) => { console.log((await (await fetch(betrace.apiUrl + '/metrics')).text()).split('\n').filter((l) => /^betrace_(exporter|receiver|transport)/.test(l)).join('\n'), 'unavailable', unavailable); throw e; });
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder' }), 0, 'nothing dropped');
      assert.ok(unavailable > 0, 'the receiver held the client back');
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_exporter_queue_spans', { exporter: 'forwarder' })) <= 500);
    } finally {
      client.close();
      await betrace.stop();
      await sink.close();
    }
  });
});

/** Request r: 10 traces of 10 spans, ~400 bytes each. */
function burstRequest(r: number): Buffer {
  const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
  return paddedRequest('burst', Array.from({ length: 100 }, (_, i) => [hex(r * 10 + Math.floor(i / 10) + 1, 32), hex(r * 100 + i + 1, 16)] as const));
}
