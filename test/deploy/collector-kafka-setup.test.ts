/**
 * The README's "beside an existing OpenTelemetry Collector" setup, run for real: an
 * application exports to a Collector (built from the Go module proxy with the contrib
 * `kafka` exporter v0.165.1, configured as the README shows: traces.topic the spans
 * topic, traces.encoding otlp_proto, partition_traces_by_id) which exports every span to
 * the backend (an OTLP sink here) and to Kafka; betrace runs only `--roles worker,api`
 * on that topic, off the trace path. The backend gets every span once, from the
 * Collector, and the violation span of the trace that breaks a seed rule, from betrace,
 * under the trace's root; the API serves the violation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace, SpanKind } from '@opentelemetry/api';
import { parse, stringify } from 'yaml';
import { VIOLATION_SPAN_NAME } from '../../src/violations/violation-span.ts';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { startKafkaExportingCollector, type OtelCollector } from '../helpers/otelcol.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { spawnBetrace, type BetraceProcess } from '../helpers/process.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const root = join(import.meta.dirname, '..', '..');
const RULE_ID = 'shipment-requires-payment';
/** A cold build of the Collector takes minutes; a file's watchdog (test/helpers/watchdog.ts) still bounds it. */
const BUILD_TIMEOUT_MS = 10 * 60_000;

describe('beside an existing Collector: a Collector kafka exporter feeds betrace workers', { timeout: BUILD_TIMEOUT_MS + 120_000 }, () => {
  let backend: OtlpSink;
  let collector: OtelCollector;
  let betrace: BetraceProcess;
  let dir: string;

  before(
    async () => {
      const { brokers } = await getTestKafka();
      const prefix = uniqueName('beside-collector');
      const kafka = kafkaTestConfig(brokers, prefix);
      backend = await startOtlpSink();
      dir = mkdtempSync(join(tmpdir(), 'betrace-beside-collector-'));
      const seed = parse(readFileSync(join(root, 'config', 'rules', 'seed-invariants.yaml'), 'utf8')) as { rules: Array<{ id: string }> };
      writeFileSync(join(dir, 'rules.yaml'), stringify({ rules: seed.rules.filter((r) => r.id === RULE_ID) }));
      writeFileSync(
        join(dir, 'betrace.yaml'),
        stringify({
          transport: { kind: 'kafka', kafka },
          downstream: { endpoint: backend.url },
          worker: { trace_idle_timeout: '1s' },
          rules: { paths: ['rules.yaml'] },
          api: { endpoint: '127.0.0.1:0' },
          data_dir: 'data',
        }),
      );
      // betrace first: its workers create the spans topic (transport.partitions partitions).
      betrace = spawnBetrace('betrace', ['run', '--config', join(dir, 'betrace.yaml'), '--roles', 'worker,api']);
      await betrace.waitFor(/betrace started/);
      collector = await startKafkaExportingCollector({ exportTo: backend.url, brokers, topic: kafka.spans_topic as string });
    },
    { timeout: BUILD_TIMEOUT_MS },
  );

  after(async () => {
    await collector?.close();
    await betrace?.stop();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the backend gets every span once from the Collector and the violation span from betrace, in its trace under the root', async () => {
    assert.doesNotMatch(betrace.output(), /receiver listening/, 'betrace receives no OTLP');
    const api = `http://${await betrace.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;
    const app = createTestApp({ service: 'shop-checkout', exporters: [otlpExporter('grpc', collector.url)] });
    const tracer = app.tracer();
    const t0 = Date.now() - 10_000;
    const checkout = (paid: string, shipped: string): { traceId: string; rootId: string; shipmentId: string } => {
      const rootSpan = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER, startTime: t0 });
      const ctx = trace.setSpan(context.active(), rootSpan);
      tracer.startSpan('payment.confirm', { startTime: t0 + 10, attributes: { 'order.id': paid } }, ctx).end(t0 + 20);
      const shipment = tracer.startSpan('shipment.initiate', { startTime: t0 + 30, attributes: { 'order.id': shipped } }, ctx);
      shipment.end(t0 + 40);
      rootSpan.end(t0 + 50);
      return { traceId: rootSpan.spanContext().traceId, rootId: rootSpan.spanContext().spanId, shipmentId: shipment.spanContext().spanId };
    };
    const violating = checkout('o-2', 'o-1');
    const traces = [violating, ...['o-3', 'o-4', 'o-5'].map((o) => checkout(o, o))];
    await app.flush();
    await app.shutdown();

    await backend.waitFor((spans) => spans.some((s) => s.name === VIOLATION_SPAN_NAME), 30_000, 'the violation span');
    const violations = backend.spans.filter((s) => s.name === VIOLATION_SPAN_NAME);
    assert.equal(violations.length, 1);
    const v = violations[0]!;
    assert.equal(v.traceId, violating.traceId);
    assert.equal(Buffer.from(v.span.parentSpanId as string, 'base64').toString('hex'), violating.rootId, 'under the root of the violating trace');
    assert.equal(v.attributes['betrace.rule.id'], RULE_ID);
    assert.deepEqual(v.attributes['betrace.violation.span_ids'], { values: [{ stringValue: violating.shipmentId }] }, 'the witness is the shipment');

    // The application's spans came once each, from the Collector: betrace forwards nothing.
    const appSpans = backend.spans.filter((s) => s.name !== VIOLATION_SPAN_NAME);
    assert.equal(appSpans.length, traces.length * 3);
    assert.equal(new Set(appSpans.map((s) => s.spanId)).size, appSpans.length);

    type Listed = { violations: Array<{ rule_id: string; trace_id: string }> };
    let listed: Listed = { violations: [] };
    await waitUntil(
      async () => {
        listed = (await (await fetch(`${api}/v1/violations`)).json()) as Listed;
        return listed.violations.length > 0;
      },
      15_000,
      'the violation in /v1/violations',
    );
    assert.deepEqual(
      listed.violations.map((x) => [x.rule_id, x.trace_id]),
      [[RULE_ID, violating.traceId]],
    );
  });
});
