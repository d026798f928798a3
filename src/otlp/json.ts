/**
 * OTLP/JSON (the OTLP/HTTP JSON encoding, also what the Collector's file exporter
 * writes) to OTLP protobuf, following the protobuf JSON mapping as OTLP defines it:
 * ids are hex strings (an id that is not hex of the right length becomes an empty
 * id, so the span is rejected like any invalid id); 64-bit integers are decimal
 * strings or numbers, exponent form included, when integral and in range, their
 * exact value kept beyond 2^53; strings are well-formed UTF-16 (no lone surrogate,
 * which has no UTF-8 form); enums are numbers or names; field names lowerCamelCase
 * (or the .proto's snake_case); unknown fields ignored.
 *
 * A value that does not follow the mapping rejects the smallest part it belongs to,
 * as in protobuf: a span's own field its span; a resource's or scope's field every
 * span of its resourceSpans or scopeSpans. The request's own shape (resourceSpans,
 * scopeSpans and spans arrays of objects) refuses it whole.
 */
import { ExportTraceServiceRequest } from './schema.ts';
import { fromHexId } from './hex.ts';

export type JsonResult =
  | {
      ok: true;
      protobuf: Uint8Array;
      /** Spans left out as not following the mapping (0 when none). */
      rejectedSpans: number;
      /** The first such fault, naming the field ('' when none). */
      errorMessage: string;
    }
  | { ok: false; error: string };

type JsonObject = Record<string, unknown>;

/** A JSON number literal that a double may not hold exactly: its source text (JSON.parse source access). */
class JsonNumber {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

/** A value that does not follow the mapping, at `path`. */
class MappingError extends Error {}

/** The request's own shape is wrong: refuse it whole. */
class ShapeError extends Error {}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/** A field by its lowerCamelCase or its .proto name; null is the default, as absent. */
function field(obj: JsonObject, camel: string, snake: string): unknown {
  const v = obj[camel] ?? obj[snake];
  return v === null ? undefined : v;
}

const fail = (path: string, what: string): never => {
  throw new MappingError(`${path}: ${what}`);
};

function string(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return fail(path, 'must be a string');
  if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) return fail(path, 'holds a lone surrogate (not valid UTF-8)');
  return v;
}

const NUMBER_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** The exact integer a JSON number or numeric string stands for; fails for fractions, NaN, Infinity and text that is no number. */
function integer(v: unknown, path: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return fail(path, `${v} is not an integer`);
    if (!Number.isInteger(v)) return fail(path, `${v} is not an integer`);
    return BigInt(v);
  }
  const text = v instanceof JsonNumber ? v.source : typeof v === 'string' ? v : undefined;
  if (text === undefined) return fail(path, 'must be an integer (a number or a decimal string)');
  const m = NUMBER_TEXT.exec(text);
  if (m === null) return fail(path, `${JSON.stringify(text)} is not an integer`);
  const negative = text.startsWith('-');
  const fraction = m[2] === undefined ? '' : m[2].slice(1);
  let digits = (m[1]! + fraction).replace(/^0+(?=\d)/, '');
  let exponent = (m[3] === undefined ? 0 : Number(m[3].slice(1))) - fraction.length;
  if (/^0+$/.test(digits)) return 0n;
  while (exponent < 0 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exponent++;
  }
  if (exponent < 0) return fail(path, `${text} is not an integer`);
  // Past 2^64 whatever the range asked: no need to build the number.
  if (digits.length + exponent > 21) return fail(path, `${text} is out of range`);
  const value = BigInt(digits) * 10n ** BigInt(exponent);
  return negative ? -value : value;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** A Long as protobufjs takes it, bit for bit. */
function long(value: bigint, unsigned: boolean): { low: number; high: number; unsigned: boolean } {
  const bits = BigInt.asUintN(64, value);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned };
}

function uint64(v: unknown, path: string): ReturnType<typeof long> | undefined {
  if (v === undefined) return undefined;
  const n = integer(v, path);
  if (n < 0n || n > UINT64_MAX) return fail(path, `${describe(v)} is out of range for an unsigned 64-bit integer`);
  return long(n, true);
}

function int64(v: unknown, path: string): ReturnType<typeof long> | undefined {
  if (v === undefined) return undefined;
  const n = integer(v, path);
  if (n < INT64_MIN || n > INT64_MAX) return fail(path, `${describe(v)} is out of range for a 64-bit integer`);
  return long(n, false);
}

function uint32(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  const n = integer(v, path);
  if (n < 0n || n > 0xffffffffn) return fail(path, `${describe(v)} is out of range for an unsigned 32-bit integer`);
  return Number(n);
}

/** An enum: its number (any int32: proto3 enums are open) or one of its names. */
function enumValue(v: unknown, path: string, names: readonly string[]): number | string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && names.includes(v)) return v;
  const n = integer(v, path);
  if (n < -(1n << 31n) || n >= 1n << 31n) return fail(path, `${describe(v)} is out of range for an enum`);
  return Number(n);
}

function double(v: unknown, path: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (v instanceof JsonNumber) return Number(v.source);
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (typeof v === 'string' && NUMBER_TEXT.test(v)) return Number(v);
  return fail(path, 'must be a number');
}

function bool(v: unknown, path: string): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  return fail(path, 'must be true or false');
}

const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

function bytes(v: unknown, path: string): Buffer | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !BASE64.test(v)) return fail(path, 'must be base64');
  return Buffer.from(v, 'base64');
}

function describe(v: unknown): string {
  return v instanceof JsonNumber ? v.source : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function array(v: unknown, path: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return fail(path, 'must be an array');
  return v;
}

function object(v: unknown, path: string): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) return fail(path, 'must be an object');
  return v;
}

/** Drops undefined members (absent fields), for protobufjs. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function anyValue(v: unknown, path: string, depth: number): Record<string, unknown> | undefined {
  const o = object(v, path);
  if (o === undefined) return undefined;
  if (depth > 32) return fail(path, 'nested deeper than 32');
  const arrayValue = object(field(o, 'arrayValue', 'array_value'), `${path}.arrayValue`);
  const kvlistValue = object(field(o, 'kvlistValue', 'kvlist_value'), `${path}.kvlistValue`);
  return defined({
    stringValue: string(field(o, 'stringValue', 'string_value'), `${path}.stringValue`),
    boolValue: bool(field(o, 'boolValue', 'bool_value'), `${path}.boolValue`),
    intValue: int64(field(o, 'intValue', 'int_value'), `${path}.intValue`),
    doubleValue: double(field(o, 'doubleValue', 'double_value'), `${path}.doubleValue`),
    bytesValue: bytes(field(o, 'bytesValue', 'bytes_value'), `${path}.bytesValue`),
    arrayValue:
      arrayValue === undefined
        ? undefined
        : { values: array(field(arrayValue, 'values', 'values'), `${path}.arrayValue.values`).map((x, i) => anyValue(x, `${path}.arrayValue.values[${i}]`, depth + 1) ?? {}) },
    kvlistValue:
      kvlistValue === undefined ? undefined : { values: keyValues(field(kvlistValue, 'values', 'values'), `${path}.kvlistValue.values`, depth + 1) },
  });
}

function keyValues(v: unknown, path: string, depth = 0): Record<string, unknown>[] {
  return array(v, path).map((kv, i) => {
    const at = `${path}[${i}]`;
    const o = object(kv, at) ?? {};
    return defined({ key: string(field(o, 'key', 'key'), `${at}.key`), value: anyValue(field(o, 'value', 'value'), `${at}.value`, depth + 1) });
  });
}

/**
 * How ids are written: `hex`, as OTLP/JSON defines them (what OTLP/HTTP JSON
 * carries and the Collector's file exporter writes), or `base64`, the plain
 * proto3 JSON mapping of bytes fields (what protojson and Python's MessageToJson
 * write). A receiver takes hex only, per the OTLP specification.
 */
export type IdForm = 'hex' | 'base64';

const BASE64_ID: Readonly<Record<number, RegExp>> = {
  16: /^[A-Za-z0-9+/_-]{21}[AQgw](?:==)?$/,
  8: /^[A-Za-z0-9+/_-]{10}[AEIMQUYcgkosw048]=?$/,
};

/** Bytes of a base64 id, or undefined when the text is not base64 of exactly `length` bytes. */
export function fromBase64Id(text: unknown, length: number): Buffer | undefined {
  const re = BASE64_ID[length];
  if (typeof text !== 'string' || re === undefined || !re.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

function id(v: unknown, length: number, form: IdForm): Buffer {
  if (v === undefined || v === '') return Buffer.alloc(0);
  return (form === 'hex' ? fromHexId(v, length) : fromBase64Id(v, length)) ?? Buffer.alloc(0);
}

const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER'];
const STATUS_CODES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];

function span(o: JsonObject, path: string, form: IdForm): Record<string, unknown> {
  const status = object(field(o, 'status', 'status'), `${path}.status`);
  return defined({
    traceId: id(field(o, 'traceId', 'trace_id'), 16, form),
    spanId: id(field(o, 'spanId', 'span_id'), 8, form),
    parentSpanId: id(field(o, 'parentSpanId', 'parent_span_id'), 8, form),
    traceState: string(field(o, 'traceState', 'trace_state'), `${path}.traceState`),
    flags: uint32(field(o, 'flags', 'flags'), `${path}.flags`),
    name: string(field(o, 'name', 'name'), `${path}.name`),
    kind: enumValue(field(o, 'kind', 'kind'), `${path}.kind`, SPAN_KINDS),
    startTimeUnixNano: uint64(field(o, 'startTimeUnixNano', 'start_time_unix_nano'), `${path}.startTimeUnixNano`),
    endTimeUnixNano: uint64(field(o, 'endTimeUnixNano', 'end_time_unix_nano'), `${path}.endTimeUnixNano`),
    attributes: keyValues(field(o, 'attributes', 'attributes'), `${path}.attributes`),
    droppedAttributesCount: uint32(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
    events: array(field(o, 'events', 'events'), `${path}.events`).map((e, i) => {
      const at = `${path}.events[${i}]`;
      const ev = object(e, at) ?? {};
      return defined({
        timeUnixNano: uint64(field(ev, 'timeUnixNano', 'time_unix_nano'), `${at}.timeUnixNano`),
        name: string(field(ev, 'name', 'name'), `${at}.name`),
        attributes: keyValues(field(ev, 'attributes', 'attributes'), `${at}.attributes`),
        droppedAttributesCount: uint32(field(ev, 'droppedAttributesCount', 'dropped_attributes_count'), `${at}.droppedAttributesCount`),
      });
    }),
    droppedEventsCount: uint32(field(o, 'droppedEventsCount', 'dropped_events_count'), `${path}.droppedEventsCount`),
    links: array(field(o, 'links', 'links'), `${path}.links`).map((l, i) => {
      const at = `${path}.links[${i}]`;
      const link = object(l, at) ?? {};
      return defined({
        traceId: id(field(link, 'traceId', 'trace_id'), 16, form),
        spanId: id(field(link, 'spanId', 'span_id'), 8, form),
        traceState: string(field(link, 'traceState', 'trace_state'), `${at}.traceState`),
        attributes: keyValues(field(link, 'attributes', 'attributes'), `${at}.attributes`),
        droppedAttributesCount: uint32(field(link, 'droppedAttributesCount', 'dropped_attributes_count'), `${at}.droppedAttributesCount`),
        flags: uint32(field(link, 'flags', 'flags'), `${at}.flags`),
      });
    }),
    droppedLinksCount: uint32(field(o, 'droppedLinksCount', 'dropped_links_count'), `${path}.droppedLinksCount`),
    status:
      status === undefined
        ? undefined
        : defined({ message: string(field(status, 'message', 'message'), `${path}.status.message`), code: enumValue(field(status, 'code', 'code'), `${path}.status.code`, STATUS_CODES) }),
  });
}

function resource(v: unknown, path: string): Record<string, unknown> | undefined {
  const o = object(v, path);
  if (o === undefined) return undefined;
  return defined({
    attributes: keyValues(field(o, 'attributes', 'attributes'), `${path}.attributes`),
    droppedAttributesCount: uint32(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
    entityRefs: array(field(o, 'entityRefs', 'entity_refs'), `${path}.entityRefs`).map((r, i) => {
      const at = `${path}.entityRefs[${i}]`;
      const ref = object(r, at) ?? {};
      const strings = (name: string, snake: string) => array(field(ref, name, snake), `${at}.${name}`).map((s, k) => string(s, `${at}.${name}[${k}]`) ?? '');
      return defined({
        schemaUrl: string(field(ref, 'schemaUrl', 'schema_url'), `${at}.schemaUrl`),
        type: string(field(ref, 'type', 'type'), `${at}.type`),
        idKeys: strings('idKeys', 'id_keys'),
        descriptionKeys: strings('descriptionKeys', 'description_keys'),
      });
    }),
  });
}

function scope(v: unknown, path: string): Record<string, unknown> | undefined {
  const o = object(v, path);
  if (o === undefined) return undefined;
  return defined({
    name: string(field(o, 'name', 'name'), `${path}.name`),
    version: string(field(o, 'version', 'version'), `${path}.version`),
    attributes: keyValues(field(o, 'attributes', 'attributes'), `${path}.attributes`),
    droppedAttributesCount: uint32(field(o, 'droppedAttributesCount', 'dropped_attributes_count'), `${path}.droppedAttributesCount`),
  });
}

/** An array of objects the request's shape needs: anything else refuses the request. */
function shapeArray(obj: JsonObject, camel: string, snake: string, path: string): JsonObject[] {
  const v = field(obj, camel, snake);
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ShapeError(`${path}.${camel} must be an array`);
  for (let i = 0; i < v.length; i++) if (!isObject(v[i])) throw new ShapeError(`${path}.${camel}[${i}] must be an object`);
  return v as JsonObject[];
}

/** Converts a parsed OTLP/JSON ExportTraceServiceRequest (or TracesData) to protobuf bytes; ids in `idForm` (hex unless said). */
export function jsonValueToProtobuf(value: unknown, idForm: IdForm = 'hex'): JsonResult {
  try {
    if (!isObject(value)) return { ok: false, error: 'request must be a JSON object' };
    let rejected = 0;
    let first = '';
    const reject = (spans: number, err: unknown) => {
      if (!(err instanceof MappingError)) throw err;
      rejected += spans;
      if (first === '') first = err.message;
    };
    const resourceSpans: Record<string, unknown>[] = [];
    shapeArray(value, 'resourceSpans', 'resource_spans', '').forEach((rs, i) => {
      const rsPath = `resourceSpans[${i}]`;
      const scopes = shapeArray(rs, 'scopeSpans', 'scope_spans', rsPath).map((ss, j) => ({
        ss,
        path: `${rsPath}.scopeSpans[${j}]`,
        spans: shapeArray(ss, 'spans', 'spans', `${rsPath}.scopeSpans[${j}]`),
      }));
      let rsOut: Record<string, unknown>;
      try {
        rsOut = defined({ resource: resource(field(rs, 'resource', 'resource'), `${rsPath}.resource`), schemaUrl: string(field(rs, 'schemaUrl', 'schema_url'), `${rsPath}.schemaUrl`) });
      } catch (err) {
        // The resource is every span's of it: its spans go with it.
        reject(scopes.reduce((n, s) => n + s.spans.length, 0), err);
        return;
      }
      const scopeSpans: Record<string, unknown>[] = [];
      for (const { ss, path, spans } of scopes) {
        let ssOut: Record<string, unknown>;
        try {
          ssOut = defined({ scope: scope(field(ss, 'scope', 'scope'), `${path}.scope`), schemaUrl: string(field(ss, 'schemaUrl', 'schema_url'), `${path}.schemaUrl`) });
        } catch (err) {
          reject(spans.length, err);
          continue;
        }
        const out: Record<string, unknown>[] = [];
        spans.forEach((s, k) => {
          try {
            out.push(span(s, `${path}.spans[${k}]`, idForm));
          } catch (err) {
            reject(1, err);
          }
        });
        scopeSpans.push({ ...ssOut, spans: out });
      }
      resourceSpans.push({ ...rsOut, scopeSpans });
    });
    const message = ExportTraceServiceRequest.fromObject({ resourceSpans });
    const errorMessage = rejected > 1 ? `${first} (${rejected} spans rejected as not following the OTLP/JSON mapping)` : first;
    return { ok: true, protobuf: ExportTraceServiceRequest.encode(message).finish(), rejectedSpans: rejected, errorMessage };
  } catch (err) {
    if (err instanceof ShapeError) return { ok: false, error: err.message.replace(/^\./, '') };
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * A number literal whose source may say more than a double holds (an exponent, or
 * long enough to pass 2^53): reparse with source access for those.
 */
const INEXACT_NUMBER = /[:,[]\s*-?\d(?:[\d.]{15}|[\d.]*[eE])/;

/** Parses JSON text, keeping the source of number literals a double may not hold exactly (for jsonValueToProtobuf). */
export function parseJsonText(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    const value: unknown = INEXACT_NUMBER.test(text)
      ? JSON.parse(text, (_key, v: unknown, context?: { source?: string }) =>
          typeof v === 'number' && context?.source !== undefined && (context.source.length > 15 || /[eE]/.test(context.source)) ? new JsonNumber(context.source) : v,
        )
      : JSON.parse(text);
    return { ok: true, value };
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Parses OTLP/JSON text (ids in hex). */
export function jsonTextToProtobuf(text: string): JsonResult {
  const parsed = parseJsonText(text);
  return parsed.ok ? jsonValueToProtobuf(parsed.value) : parsed;
}
