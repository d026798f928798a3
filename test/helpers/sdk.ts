/**
 * A real application instrumented with the OpenTelemetry JS SDK, exporting with
 * the official OTLP exporters (gRPC or HTTP) to betrace, and optionally also
 * straight to a reference sink so a test can compare what arrived downstream.
 */
import { trace, context, SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as HttpExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export type ExporterKind = 'grpc' | 'http';

export function otlpExporter(kind: ExporterKind, baseUrl: string): SpanExporter {
  return kind === 'grpc' ? new GrpcExporter({ url: baseUrl }) : new HttpExporter({ url: `${baseUrl}/v1/traces` });
}

export interface TestApp {
  readonly provider: NodeTracerProvider;
  tracer(name?: string): ReturnType<NodeTracerProvider['getTracer']>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function createTestApp(options: { service: string; exporters: SpanExporter[]; maxExportBatchSize?: number }): TestApp {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.service, 'deployment.environment': 'test' }),
    spanProcessors: options.exporters.map(
      (e) =>
        new BatchSpanProcessor(e, {
          maxQueueSize: 100_000,
          maxExportBatchSize: options.maxExportBatchSize ?? 512,
          scheduledDelayMillis: 50,
        }),
    ),
  });
  return {
    provider,
    tracer: (name = 'betrace-test') => provider.getTracer(name, '1.2.3'),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Emits `traces` traces of `spansPerTrace` spans each (a root and children),
 * with attributes of every type, events, links, statuses and kinds.
 */
export function emitTraces(app: TestApp, traces: number, spansPerTrace: number): void {
  const tracer = app.tracer();
  let previous: Span | undefined;
  for (let t = 0; t < traces; t++) {
    const root = tracer.startSpan(`http.request`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.route': '/api/orders', 'http.status_code': 200, 'order.id': `o-${t}` },
      links: previous ? [{ context: previous.spanContext(), attributes: { 'link.kind': 'previous' } }] : [],
    });
    const ctx = trace.setSpan(context.active(), root);
    for (let s = 1; s < spansPerTrace; s++) {
      const child = tracer.startSpan(
        s % 3 === 0 ? 'db.query' : s % 3 === 1 ? 'payment.charge' : 'cache.get',
        {
          kind: s % 2 === 0 ? SpanKind.CLIENT : SpanKind.INTERNAL,
          attributes: {
            amount: s * 10.5,
            attempt: s,
            ok: s % 2 === 0,
            tags: ['a', 'b'],
            counts: [1, 2, 3],
            'payment_intent_id': `pi-${t}`,
          },
        },
        ctx,
      );
      child.addEvent('step', { index: s });
      if (s % 4 === 0) child.setStatus({ code: SpanStatusCode.ERROR, message: 'failed on purpose' });
      if (s % 4 === 1) child.setStatus({ code: SpanStatusCode.OK });
      child.end();
    }
    root.end();
    previous = root;
  }
}
