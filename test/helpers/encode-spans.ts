/** SpanRecords back into OTLP protobuf, for tests and benches that need them on the wire. */
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import type { AttributeValue, Attributes, SpanRecord } from '../../src/rules/index.ts';

const idBytes = (hexId: string): Buffer => Buffer.from(hexId, 'hex');

function anyValue(v: AttributeValue): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  throw new Error('encodeSpans: arrays and lists are not needed yet');
}

const keyValues = (attrs: Attributes) => Object.entries(attrs).map(([key, value]) => ({ key, value: anyValue(value) }));

/** One ExportTraceServiceRequest holding the spans, a resourceSpans per distinct resource object. */
export function encodeSpans(spans: readonly SpanRecord[]): Uint8Array {
  const byResource = new Map<Attributes, SpanRecord[]>();
  for (const s of spans) byResource.set(s.resource, [...(byResource.get(s.resource) ?? []), s]);
  return ExportTraceServiceRequest.encode(
    ExportTraceServiceRequest.fromObject({
      resourceSpans: [...byResource].map(([resource, list]) => ({
        resource: { attributes: keyValues(resource) },
        scopeSpans: [
          {
            spans: list.map((s) => ({
              traceId: idBytes(s.traceId),
              spanId: idBytes(s.spanId),
              parentSpanId: idBytes(s.parentSpanId),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: s.startTimeUnixNano.toString(),
              endTimeUnixNano: s.endTimeUnixNano.toString(),
              attributes: keyValues(s.attributes),
              status: { code: s.statusCode },
            })),
          },
        ],
      })),
    }),
  ).finish();
}

/**
 * One ExportTraceServiceRequest of one service: a span per [trace id, span id] (hex),
 * starting now, each with a 300-byte string attribute (about 400 bytes a span).
 */
export function paddedRequest(service: string, ids: ReadonlyArray<readonly [traceId: string, spanId: string]>): Buffer {
  const now = BigInt(Date.now()) * 1_000_000n;
  return Buffer.from(
    ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
            scopeSpans: [
              {
                spans: ids.map(([traceId, spanId]) => ({
                  traceId: idBytes(traceId),
                  spanId: idBytes(spanId),
                  name: 'load',
                  startTimeUnixNano: now.toString(),
                  endTimeUnixNano: (now + 1000n).toString(),
                  attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(300) } }],
                })),
              },
            ],
          },
        ],
      }),
    ).finish(),
  );
}
