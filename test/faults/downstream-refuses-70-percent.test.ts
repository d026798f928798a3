/**
 * Fault (c): a downstream that refuses 70% of export calls with UNAVAILABLE:
 * every violation span and every forwarded span is eventually delivered.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue } from '../helpers/pipeline.ts';
import { otlpExporter } from '../helpers/sdk.ts';
import { Shop, runScenario } from '../helpers/shop.ts';

const rulesFile = join(import.meta.dirname, '..', '..', 'config', 'rules', 'seed-invariants.yaml');

describe('a flaky downstream', () => {
  it('gets every span and every violation despite refusing 70% of calls', async () => {
    const sink = await startOtlpSink();
    const reference = await startOtlpSink();
    sink.refuseRatio = 0.7;
    const betrace = await startTestPipeline({
      downstream: { endpoint: sink.url, batch_timeout: '20ms', max_batch_spans: 200, max_retry_time: '10m' },
      worker: { trace_idle_timeout: '1s' },
      rules: { paths: [rulesFile] },
    });
    try {
      const shop = new Shop(() => [otlpExporter('grpc', betrace.grpcUrl), otlpExporter('grpc', reference.url)]);
      const orders = runScenario(shop, 40);
      await shop.flush(50);
      await shop.shutdown();
      const injected = orders.filter((o) => o.violates !== undefined);
      await sink.waitFor(
        (spans) =>
          new Set(spans.filter((s) => s.name !== 'betrace.violation').map((s) => s.key)).size >= reference.spans.length &&
          new Set(spans.filter((s) => s.name === 'betrace.violation').map((s) => s.traceId)).size >= injected.length,
        120_000,
        'every span and violation',
      );
      const violated = new Set(sink.spans.filter((s) => s.name === 'betrace.violation').map((s) => s.traceId));
      assert.deepEqual([...violated].sort(), injected.map((o) => o.traceId).sort());
      assert.ok(sink.calls > 10, 'many calls');
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_exporter_retries_total')) > 0, 'refusals were retried');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_exporter_spans_dropped_total'), 0, 'nothing dropped');
    } finally {
      await betrace.stop();
      await sink.close();
      await reference.close();
    }
  });
});
