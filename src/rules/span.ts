/**
 * The rule language's view of a span: what the evaluator reads. It depends on
 * nothing else in the pipeline; src/otlp builds these from OTLP protobuf or JSON.
 *
 * Ownership: a SpanRecord is immutable once built; the evaluator never mutates it
 * and may keep references to it only for the duration of one evaluation.
 */

/** An OTLP AnyValue as rules see it. int64 values are numbers (exact up to 2^53);
 * bytes are lowercase hex; a kvlist is a plain object. */
export type AttributeValue =
  | string
  | number
  | boolean
  | readonly AttributeValue[]
  | { readonly [key: string]: AttributeValue };

export type Attributes = Readonly<Record<string, AttributeValue>>;

/**
 * Attributes are plain objects (fast property access for compiled rules, which
 * read own properties only); this sets one, `__proto__` included, as an own
 * property.
 */
export function putAttribute(target: Record<string, AttributeValue>, key: string, value: AttributeValue): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** OTLP Span.SpanKind numbering. */
export const SpanKind = {
  unspecified: 0,
  internal: 1,
  server: 2,
  client: 3,
  producer: 4,
  consumer: 5,
} as const;

/** OTLP Status.StatusCode numbering. */
export const StatusCode = { unset: 0, ok: 1, error: 2 } as const;

/**
 * A span's times as unsigned 32-bit halves of the nanoseconds (high, low), for
 * spans that have them without BigInts (the wire decoder's): the trace index
 * reads these when present, two BigInts fewer per span.
 */
export interface SplitTimes {
  readonly startHi: number;
  readonly startLo: number;
  readonly endHi: number;
  readonly endLo: number;
}

/**
 * A span's id and parent id as the little-endian signed 32-bit words of their 8
 * bytes (low: bytes 0–3, high: bytes 4–7), for spans that have them without
 * parsing hex (the wire decoder's, whose id strings are made only when read).
 * The parent's words are meaningful only when hasParent (parentSpanId is not '').
 * The trace index finds spans by these numbers.
 */
export interface NumericIds {
  readonly idLo: number;
  readonly idHi: number;
  readonly parentLo: number;
  readonly parentHi: number;
  readonly hasParent: boolean;
}

/**
 * A span that finds one attribute without building its attributes object (the wire
 * decoder's spans: rules read one or two attributes, of about a quarter of the spans).
 */
export interface AttributeLookup {
  /** What `attributes[key]` holds as an own property; `utf8`: key's UTF-8 bytes. */
  attribute(key: string, utf8: Uint8Array): AttributeValue | undefined;
}

export interface SpanRecord {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
  /** 16 lowercase hex characters, or '' for a span without a parent. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind number, see SpanKind. */
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  /** OTLP StatusCode number, see StatusCode. */
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly attributes: Attributes;
  /** The attributes of the span's resource (shared by every span of that resource). */
  readonly resource: Attributes;
}
