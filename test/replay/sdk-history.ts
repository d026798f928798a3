/**
 * Simulated history sent by the OpenTelemetry JS SDK, as instrumented services would
 * have sent it: one tracer provider per service (its `service.name` resource), the
 * SDK's OTLP/gRPC exporter, and spans started and ended at the history's times, with the
 * simulated trace and span ids (an IdGenerator that hands out the next planned id) and
 * parents (a remote parent context), so a backend holds the same traces the Kafka and
 * file tests replay.
 */
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { SimTrace } from './history.ts';

/** Hands out the planned ids of the span being started. */
class PlannedIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

/** Sends every span of `traces` to the OTLP/gRPC endpoint `url` and waits until each export is acknowledged. */
export async function sendWithSdk(traces: readonly SimTrace[], url: string): Promise<void> {
  const ids = new PlannedIds();
  const providers = new Map<string, BasicTracerProvider>();
  const tracerOf = (service: string) => {
    let provider = providers.get(service);
    if (provider === undefined) {
      provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': service }),
        idGenerator: ids,
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { maxQueueSize: 1_000_000, maxExportBatchSize: 512, scheduledDelayMillis: 50 })],
      });
      providers.set(service, provider);
    }
    return provider.getTracer('shop');
  };
  try {
    for (const t of traces) {
      for (const s of t.spans) {
        ids.traceId = t.traceId;
        ids.spanId = s.spanId;
        const parent =
          s.parentSpanId === '' ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { traceId: t.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
        // Dates, not numbers: the SDK reads a number before its time origin as a performance.now() offset.
        const span = tracerOf(s.service).startSpan(
          s.name,
          { kind: s.parentSpanId === '' ? SpanKind.SERVER : SpanKind.INTERNAL, startTime: new Date(s.startMs), attributes: s.attributes },
          parent,
        );
        span.end(new Date(s.startMs + s.durationMs));
      }
    }
    await Promise.all([...providers.values()].map((p) => p.forceFlush()));
  } finally {
    await Promise.all([...providers.values()].map((p) => p.shutdown()));
  }
}
