/**
 * OTLP/JSON (the OTLP/HTTP JSON encoding, also what the Collector's file exporter
 * writes) to OTLP protobuf. Ids are hex strings in JSON; an id that is not hex of
 * the right length becomes an empty id, so the span is rejected like any invalid id.
 */
import { ExportTraceServiceRequest } from './schema.ts';
import { fromHexId } from './hex.ts';

export type JsonResult = { ok: true; protobuf: Uint8Array } | { ok: false; error: string };

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayField(obj: JsonObject, camel: string, snake: string): unknown[] {
  const v = obj[camel] ?? obj[snake];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new TypeError(`${camel} must be an array`);
  return v;
}

function convertId(value: unknown, length: number): Buffer {
  if (value === undefined || value === null || value === '') return Buffer.alloc(0);
  return fromHexId(value, length) ?? Buffer.alloc(0);
}

/** Accepts snake_case keys too (the protobuf JSON mapping allows the original field names). */
function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    out[k.includes('_') ? k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()) : k] = camelize(v);
  }
  return out;
}

/** Converts a parsed OTLP/JSON ExportTraceServiceRequest (or TracesData) to protobuf bytes. */
export function jsonValueToProtobuf(value: unknown): JsonResult {
  try {
    if (!isObject(value)) return { ok: false, error: 'request must be a JSON object' };
    const request = camelize(value) as JsonObject;
    for (const rs of arrayField(request, 'resourceSpans', 'resource_spans')) {
      if (!isObject(rs)) throw new TypeError('resourceSpans[] must be objects');
      for (const ss of arrayField(rs, 'scopeSpans', 'scope_spans')) {
        if (!isObject(ss)) throw new TypeError('scopeSpans[] must be objects');
        for (const span of arrayField(ss, 'spans', 'spans')) {
          if (!isObject(span)) throw new TypeError('spans[] must be objects');
          span.traceId = convertId(span.traceId, 16);
          span.spanId = convertId(span.spanId, 8);
          span.parentSpanId = convertId(span.parentSpanId, 8);
          for (const link of arrayField(span, 'links', 'links')) {
            if (!isObject(link)) throw new TypeError('links[] must be objects');
            link.traceId = convertId(link.traceId, 16);
            link.spanId = convertId(link.spanId, 8);
          }
        }
      }
    }
    const message = ExportTraceServiceRequest.fromObject(request);
    return { ok: true, protobuf: ExportTraceServiceRequest.encode(message).finish() };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Parses OTLP/JSON text. */
export function jsonTextToProtobuf(text: string): JsonResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  return jsonValueToProtobuf(value);
}
