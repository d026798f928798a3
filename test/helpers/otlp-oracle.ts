/**
 * Test oracles for src/otlp's wire readers: a span decoder through protobufjs (the
 * schema, the reference the span decoder must agree with), and a span count and
 * trace ids read without either (sinks and load clients count with it).
 */
import { putAttribute, type AttributeValue, type Attributes, type SpanRecord } from '../../src/rules/span.ts';
import { toHex } from '../../src/otlp/hex.ts';
import { ExportTraceServiceRequest, longToBigInt, type PbAnyValue, type PbExportRequest, type PbKeyValue } from '../../src/otlp/schema.ts';
import { WIRE_LEN, WireCursor } from '../../src/otlp/wire.ts';

const LEN = (field: number): number => (field << 3) | WIRE_LEN;

function anyValue(v: PbAnyValue | undefined): AttributeValue | undefined {
  if (v === undefined || v === null) return undefined;
  // Decoded messages carry defaults on their prototype: the set oneof member is the own property.
  const has = (key: keyof PbAnyValue): boolean => Object.hasOwn(v, key);
  if (has('stringValue')) return v.stringValue;
  if (has('boolValue')) return v.boolValue;
  if (has('intValue')) return Number(longToSigned(v.intValue));
  if (has('doubleValue')) return v.doubleValue;
  if (has('arrayValue') && v.arrayValue !== undefined) {
    const out: AttributeValue[] = [];
    for (const item of v.arrayValue.values ?? []) {
      const x = anyValue(item);
      if (x !== undefined) out.push(x);
    }
    return out;
  }
  if (has('kvlistValue') && v.kvlistValue !== undefined) return attributes(v.kvlistValue.values);
  if (has('bytesValue') && v.bytesValue !== undefined) return toHex(v.bytesValue);
  return undefined;
}

function longToSigned(value: PbAnyValue['intValue']): bigint {
  const u = longToBigInt(value);
  return u >= 1n << 63n ? u - (1n << 64n) : u;
}

function attributes(list: readonly PbKeyValue[] | undefined): Attributes {
  const out: Record<string, AttributeValue> = {};
  if (list === undefined) return out;
  for (const kv of list) {
    const value = anyValue(kv.value);
    if (kv.key !== undefined && value !== undefined) putAttribute(out, kv.key, value);
  }
  return out;
}

/** Spans of a decoded request. */
export function requestToSpans(request: PbExportRequest): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const traceId = s.traceId instanceof Uint8Array ? toHex(s.traceId) : '';
        const spanId = s.spanId instanceof Uint8Array ? toHex(s.spanId) : '';
        if (traceId.length !== 32 || spanId.length !== 16) continue;
        out.push({
          traceId,
          spanId,
          parentSpanId: s.parentSpanId instanceof Uint8Array && s.parentSpanId.length === 8 ? toHex(s.parentSpanId) : '',
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startTimeUnixNano: longToBigInt(s.startTimeUnixNano),
          endTimeUnixNano: longToBigInt(s.endTimeUnixNano),
          statusCode: s.status?.code ?? 0,
          statusMessage: s.status?.message ?? '',
          attributes: attributes(s.attributes),
          resource,
        });
      }
    }
  }
  return out;
}

/** Spans of an ExportTraceServiceRequest in protobuf, through the schema (the reference decoder). */
export function decodeSpansWithSchema(payload: Uint8Array): SpanRecord[] {
  return requestToSpans(ExportTraceServiceRequest.decode(payload) as unknown as PbExportRequest);
}

/**
 * The span count, trace ids and parentless (root) spans of an
 * ExportTraceServiceRequest, read from the wire without decoding the spans.
 * Throws WireError on a malformed message.
 */
export function scanRequest(buf: Uint8Array): { spanCount: number; traceIds: Set<string>; rootSpans: number } {
  const traceIds = new Set<string>();
  let spanCount = 0;
  let rootSpans = 0;
  const c = new WireCursor(buf);
  const messages = (end: number, tag: number, each: (start: number, end: number) => void): void => {
    while (c.pos < end) {
      const t = c.varint(end);
      if (t !== tag) {
        c.skip(t & 7, end);
        continue;
      }
      const s = c.len(end);
      const e = c.pos;
      c.pos = s;
      each(s, e);
      c.pos = e;
    }
  };
  messages(buf.length, LEN(1), (_rs, rsEnd) => {
    messages(rsEnd, LEN(2), (_ss, ssEnd) => {
      messages(ssEnd, LEN(2), (_span, spEnd) => {
        spanCount++;
        let hasParent = false;
        while (c.pos < spEnd) {
          const t = c.varint(spEnd);
          if (t === LEN(1)) {
            const s = c.len(spEnd);
            traceIds.add(toHex(buf.subarray(s, c.pos)));
          } else if (t === LEN(4)) {
            const s = c.len(spEnd);
            hasParent = c.pos - s === 8;
          } else c.skip(t & 7, spEnd);
        }
        if (!hasParent) rootSpans++;
      });
    });
  });
  return { spanCount, traceIds, rootSpans };
}
