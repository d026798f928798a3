/**
 * The README's Jaeger setup, run for real: Jaeger v2 (built from the Go module
 * proxy, test/helpers/jaeger.ts) as betrace's downstream, betrace as a child process on
 * the example configuration (config/betrace.yaml with `downstream.endpoint` at Jaeger's
 * OTLP/gRPC port), an application instrumented with the OpenTelemetry SDK exporting
 * to betrace. Read back through Jaeger's HTTP API: every span the SDK sent is in Jaeger
 * unchanged (ids, parents, names, attributes, events, kinds, statuses, resource), and
 * the trace that breaks a seed rule holds the violation span, a child of its root,
 * naming the rule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace, SpanKind, SpanStatusCode, type AttributeValue, type Attributes } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { parse, stringify } from 'yaml';
import { VIOLATION_SPAN_NAME } from '../../src/violations/violation-span.ts';
import { startJaeger, jaegerApi, type Jaeger, type JaegerSpan, type JaegerTrace } from '../helpers/jaeger.ts';
import { spawnBetrace, type BetraceProcess } from '../helpers/process.ts';
import { createTestApp, emitTraces, otlpExporter } from '../helpers/sdk.ts';

const root = join(import.meta.dirname, '..', '..');
const RULE_ID = 'shipment-requires-payment';
const SERVICE = 'shop-checkout';
/** A cold build of Jaeger takes minutes; a file's watchdog (test/helpers/watchdog.ts) still bounds it. */
const BUILD_TIMEOUT_MS = 14 * 60_000;

type Tag = { readonly key: string; readonly value: unknown };

/** An OTLP attribute value as Jaeger's model holds it: arrays and maps as their JSON text. */
function jaegerValue(value: AttributeValue | undefined): unknown {
  return Array.isArray(value) ? JSON.stringify(value) : value;
}

function tagsOf(tags: readonly Tag[]): Map<string, unknown> {
  return new Map(tags.map((t) => [t.key, t.value]));
}

function assertHasAttributes(where: string, tags: readonly Tag[], attributes: Attributes): void {
  const byKey = tagsOf(tags);
  for (const [key, value] of Object.entries(attributes)) {
    assert.ok(byKey.has(key), `${where}: attribute ${key} missing in Jaeger (tags: ${[...byKey.keys()].join(', ')})`);
    assert.deepEqual(byKey.get(key), jaegerValue(value), `${where}: attribute ${key}`);
  }
}

const KIND_TAG: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: 'internal',
  [SpanKind.SERVER]: 'server',
  [SpanKind.CLIENT]: 'client',
  [SpanKind.PRODUCER]: 'producer',
  [SpanKind.CONSUMER]: 'consumer',
};

const micros = (t: readonly [number, number]): number => t[0] * 1_000_000 + Math.floor(t[1] / 1000);

/** Asserts the span Jaeger holds is the one the SDK ended. */
function assertSameSpan(sent: ReadableSpan, got: JaegerSpan, stored: JaegerTrace): void {
  const where = `span ${sent.name} ${sent.spanContext().spanId}`;
  assert.equal(got.operationName, sent.name, `${where}: name`);
  assert.equal(got.startTime, micros(sent.startTime), `${where}: start`);
  assert.equal(got.duration, micros(sent.endTime) - micros(sent.startTime), `${where}: duration`);
  const parent = got.references.find((r) => r.refType === 'CHILD_OF');
  assert.equal(parent?.spanID, sent.parentSpanContext?.spanId, `${where}: parent`);
  for (const link of sent.links) {
    assert.ok(
      got.references.some((r) => r.traceID === link.context.traceId && r.spanID === link.context.spanId),
      `${where}: link to ${link.context.spanId}`,
    );
  }
  assertHasAttributes(where, got.tags, sent.attributes);
  const tags = tagsOf(got.tags);
  assert.equal(tags.get('span.kind'), KIND_TAG[sent.kind], `${where}: kind`);
  if (sent.status.code === SpanStatusCode.ERROR) {
    assert.equal(tags.get('otel.status_code'), 'ERROR', `${where}: status`);
    assert.equal(tags.get('otel.status_description'), sent.status.message, `${where}: status message`);
  } else if (sent.status.code === SpanStatusCode.OK) {
    assert.equal(tags.get('otel.status_code'), 'OK', `${where}: status`);
  } else {
    assert.equal(tags.has('otel.status_code'), false, `${where}: status unset`);
  }
  assert.equal(tags.get('otel.scope.name'), sent.instrumentationScope.name, `${where}: scope`);
  assert.equal(got.logs.length, sent.events.length, `${where}: events`);
  sent.events.forEach((event, i) => {
    const fields = got.logs[i]!.fields;
    assert.equal(tagsOf(fields).get('event'), event.name, `${where}: event ${i} name`);
    assertHasAttributes(`${where} event ${event.name}`, fields, event.attributes ?? {});
  });
  const process = stored.processes[got.processID];
  assert.ok(process, `${where}: process ${got.processID}`);
  assert.equal(process.serviceName, sent.resource.attributes['service.name'], `${where}: service`);
  const { 'service.name': _service, ...resource } = sent.resource.attributes;
  assertHasAttributes(`${where} resource`, process.tags, resource);
}

/** The trace as Jaeger serves it, once it holds at least `spans` spans (within `timeoutMs`). */
async function storedTrace(jaeger: Jaeger, traceId: string, spans: number, timeoutMs = 20_000): Promise<JaegerTrace> {
  const deadline = Date.now() + timeoutMs;
  let last: JaegerTrace | undefined;
  for (;;) {
    last = (await jaegerApi<JaegerTrace[]>(jaeger, `/api/traces/${traceId}`))?.[0];
    if (last !== undefined && last.spans.length >= spans) return last;
    if (Date.now() > deadline) {
      assert.fail(`trace ${traceId}: Jaeger holds ${last?.spans.length ?? 0} spans after ${timeoutMs / 1000} s, expected ${spans}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The example configuration with its downstream at Jaeger, rules from `rulesFile`; ports come from environment overrides. */
function exampleConfig(dir: string, downstream: string, rulesFile: string): string {
  const config = parse(readFileSync(join(root, 'config', 'betrace.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  config.downstream!.endpoint = downstream;
  config.rules!.paths = [rulesFile];
  // Shorter than the example's 5 s so the test does not wait for the trace to go quiet.
  config.worker!.trace_idle_timeout = '1s';
  const file = join(dir, 'betrace.yaml');
  writeFileSync(file, stringify({ ...config, data_dir: join(dir, 'data') }));
  return file;
}

/** The seed's rule, verbatim, alone in a rule file (the other seed rules flag these traces too). */
function seedRuleFile(dir: string): string {
  const seed = parse(readFileSync(join(root, 'config', 'rules', 'seed-invariants.yaml'), 'utf8')) as { rules: Array<{ id: string }> };
  const rule = seed.rules.find((r) => r.id === RULE_ID);
  assert.ok(rule, `${RULE_ID} is in config/rules/seed-invariants.yaml`);
  const file = join(dir, 'rules.yaml');
  writeFileSync(file, stringify({ rules: [rule] }));
  return file;
}

describe('Jaeger setup: betrace between an OpenTelemetry SDK and Jaeger', { timeout: BUILD_TIMEOUT_MS + 120_000 }, () => {
  let jaeger: Jaeger;
  let betrace: BetraceProcess;
  let dir: string;

  before(
    async () => {
      jaeger = await startJaeger();
      dir = mkdtempSync(join(tmpdir(), 'betrace-jaeger-'));
      const env: Record<string, string> = {
        BETRACE_RECEIVER_GRPC_ENDPOINT: '127.0.0.1:0',
        BETRACE_RECEIVER_HTTP_ENDPOINT: '127.0.0.1:0',
        BETRACE_API_ENDPOINT: '127.0.0.1:0',
      };
      betrace = spawnBetrace('betrace', ['run', '--config', exampleConfig(dir, jaeger.otlpGrpcUrl, seedRuleFile(dir))], env);
      await betrace.waitFor(/betrace started/);
    },
    { timeout: BUILD_TIMEOUT_MS },
  );

  after(async () => {
    await betrace?.stop();
    await jaeger?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores every span the SDK sent unchanged, and the violation span in its trace under the root', async () => {
    const grpc = await betrace.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
    const sent = new InMemorySpanExporter();
    const app = createTestApp({ service: SERVICE, exporters: [otlpExporter('grpc', `http://${grpc}`), sent] });
    const tracer = app.tracer();
    const t0 = Date.now() - 10_000;
    /** A checkout: payment confirmed for `paid`, shipment started for `shipped`. */
    const checkout = (paid: string, shipped: string): string => {
      const rootSpan = tracer.startSpan('POST /checkout', { kind: SpanKind.SERVER, startTime: t0, attributes: { 'http.route': '/checkout' } });
      const ctx = trace.setSpan(context.active(), rootSpan);
      tracer.startSpan('payment.confirm', { startTime: t0 + 10, attributes: { 'order.id': paid } }, ctx).end(t0 + 20);
      tracer.startSpan('shipment.initiate', { kind: SpanKind.CLIENT, startTime: t0 + 30, attributes: { 'order.id': shipped } }, ctx).end(t0 + 40);
      rootSpan.end(t0 + 50);
      return rootSpan.spanContext().traceId;
    };
    // Shipped o-1 after confirming the payment of another order: the rule's `.on(order.id)` is broken.
    const violating = checkout('o-2', 'o-1');
    const paid = checkout('o-3', 'o-3');
    // Spans with attributes of every type, events, links, statuses and kinds; no shipment, so no violation.
    emitTraces(app, 3, 6);
    // Flushed before the shutdown, which empties the in-memory exporter.
    await app.flush();
    const finished = sent.getFinishedSpans();
    await app.shutdown();

    const byTrace = new Map<string, ReadableSpan[]>();
    for (const span of finished) {
      const id = span.spanContext().traceId;
      byTrace.set(id, [...(byTrace.get(id) ?? []), span]);
    }
    assert.equal(byTrace.size, 5);

    let checked = 0;
    for (const [traceId, spans] of byTrace) {
      const expected = spans.length + (traceId === violating ? 1 : 0);
      const stored = await storedTrace(jaeger, traceId, expected);
      const gotById = new Map(stored.spans.map((s) => [s.spanID, s]));
      for (const span of spans) {
        const got = gotById.get(span.spanContext().spanId);
        assert.ok(got, `span ${span.name} ${span.spanContext().spanId} of trace ${traceId} is in Jaeger`);
        assertSameSpan(span, got, stored);
        checked++;
      }
      const violations = stored.spans.filter((s) => s.operationName === VIOLATION_SPAN_NAME);
      if (traceId !== violating) {
        assert.equal(violations.length, 0, `trace ${traceId} breaks no rule`);
        assert.equal(stored.spans.length, spans.length, `trace ${traceId}: Jaeger holds exactly the spans sent`);
        continue;
      }
      assert.equal(violations.length, 1, `trace ${traceId}: one violation span`);
      const violation = violations[0]!;
      const rootSpan = spans.find((s) => s.parentSpanContext === undefined)!;
      assert.deepEqual(
        violation.references.map((r) => [r.refType, r.traceID, r.spanID]),
        [['CHILD_OF', traceId, rootSpan.spanContext().spanId]],
        'the violation span is a child of the trace root',
      );
      const tags = tagsOf(violation.tags);
      assert.equal(tags.get('betrace.rule.id'), RULE_ID);
      assert.equal(tags.get('betrace.rule.severity'), 'critical');
      assert.equal(tags.get('otel.status_code'), 'ERROR');
      const shipment = spans.find((s) => s.name === 'shipment.initiate')!;
      assert.equal(tags.get('betrace.violation.span_ids'), JSON.stringify([shipment.spanContext().spanId]), 'the witness is the shipment');
      assert.equal(stored.processes[violation.processID]?.serviceName, 'betrace');
    }
    assert.equal(checked, finished.length);
    assert.ok(byTrace.has(paid));

    const services = (await jaegerApi<string[]>(jaeger, '/api/services')) ?? [];
    assert.deepEqual([...services].sort(), ['betrace', SERVICE].sort());
  });
});
