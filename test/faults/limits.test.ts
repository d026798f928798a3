/**
 * Configurable limits, each enforced with a metric: spans per request, bytes per
 * trace, attributes per span and attribute value length (in the copy rules
 * evaluate only: forwarded spans stay unchanged).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue } from '../helpers/pipeline.ts';

function request(traceByte: number, spans: number, attributes: Array<{ key: string; value: { stringValue: string } }> = []): Buffer {
  return Buffer.from(
    ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: Array.from({ length: spans }, (_, i) => ({
                  traceId: Buffer.alloc(16, traceByte),
                  spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex'),
                  name: 'op',
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000000001000',
                  attributes,
                })),
              },
            ],
          },
        ],
      }),
    ).finish(),
  );
}

const post = (url: string, body: Buffer) => fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body });

describe('limits', () => {
  it('refuses a request with more spans than receiver.max_spans_per_request (413)', async () => {
    const betrace = await startTestPipeline({ receiver: { max_spans_per_request: 10 } });
    try {
      assert.equal((await post(betrace.httpUrl, request(1, 10))).status, 200);
      assert.equal((await post(betrace.httpUrl, request(2, 11))).status, 413);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_spans_rejected_total', { reason: 'too_many_spans' }), 11);
    } finally {
      await betrace.stop();
    }
  });

  it('truncates what rules see, counts it, and forwards the span unchanged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-limits-'));
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: sees-truncated\n    severity: low\n    condition: not trace.has(op).where(long == "abcde")\n  - id: sees-dropped\n    severity: low\n    condition: not trace.has(op).where(exists(k4))\n');
    const sink = await startOtlpSink();
    const betrace = await startTestPipeline({
      worker: { max_attributes_per_span: 3, max_attribute_value_length: 5, trace_idle_timeout: '200ms' },
      rules: { paths: [join(dir, 'rules.yaml')] },
      downstream: { endpoint: sink.url, batch_timeout: '10ms' },
    });
    try {
      const attrs = [
        { key: 'long', value: { stringValue: 'abcdefghij' } },
        { key: 'k2', value: { stringValue: 'x' } },
        { key: 'k3', value: { stringValue: 'y' } },
        { key: 'k4', value: { stringValue: 'z' } },
      ];
      assert.equal((await post(betrace.httpUrl, request(3, 1, attrs))).status, 200);
      await sink.waitFor((s) => s.some((x) => x.name === 'betrace.violation') && s.some((x) => x.name === 'op'), 10_000, 'violation and span');
      await new Promise((r) => setTimeout(r, 300));
      const rules = sink.spans.filter((x) => x.name === 'betrace.violation').map((x) => x.attributes['betrace.rule.id']);
      assert.deepEqual(rules, ['sees-truncated'], 'rules saw "abcde" and no k4');
      const forwarded = sink.spans.find((x) => x.name === 'op')!;
      assert.equal(forwarded.attributes.long, 'abcdefghij', 'forwarded unchanged');
      assert.equal(forwarded.attributes.k4, 'z');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_worker_attribute_limits_total', { limit: 'attribute_value_length' }), 1);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_worker_attribute_limits_total', { limit: 'attributes_per_span' }), 1);
    } finally {
      await betrace.stop();
      await sink.close();
    }
  });

  it('cuts a trace at worker.max_trace_bytes and marks its violations partial', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-limits-'));
    writeFileSync(join(dir, 'rules.yaml'), 'rules:\n  - id: no-ops\n    severity: low\n    condition: not trace.has(op)\n');
    const sink = await startOtlpSink();
    const betrace = await startTestPipeline({
      worker: { max_trace_bytes: '2KiB', trace_idle_timeout: '5s' },
      rules: { paths: [join(dir, 'rules.yaml')] },
      downstream: { endpoint: sink.url, batch_timeout: '10ms' },
    });
    try {
      for (let i = 0; i < 10; i++) assert.equal((await post(betrace.httpUrl, request(4, 5, [{ key: 'pad', value: { stringValue: 'p'.repeat(50) } }]))).status, 200);
      await sink.waitFor((s) => s.some((x) => x.name === 'betrace.violation'), 4000, 'violation before the idle timeout');
      const v = sink.spans.find((x) => x.name === 'betrace.violation')!;
      assert.equal(v.attributes['betrace.trace.partial'], true);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_worker_forced_cuts_total', { reason: 'max_bytes' }), 1);
    } finally {
      await betrace.stop();
      await sink.close();
    }
  });
});
