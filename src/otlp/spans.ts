/**
 * OTLP protobuf to the rule language's SpanRecord. Used by workers on each
 * trace's payload, by replay and by `rules test`.
 */
import { putAttribute, type AttributeValue, type Attributes, type SpanRecord } from '../rules/span.ts';
import { toHex } from './hex.ts';
import { decodeSpansFast, type DecodeOptions } from './span-decoder.ts';
import {
  ExportTraceServiceRequest,
  longToBigInt,
  type PbAnyValue,
  type PbExportRequest,
  type PbKeyValue,
} from './schema.ts';

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

export function attributes(list: readonly PbKeyValue[] | undefined): Attributes {
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

/** Spans of an ExportTraceServiceRequest in protobuf. Throws on a malformed message. */
export const decodeSpans: (payload: Uint8Array, options?: DecodeOptions) => SpanRecord[] = decodeSpansFast;
