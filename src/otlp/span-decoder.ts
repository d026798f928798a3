/**
 * ExportTraceServiceRequest protobuf straight to SpanRecords, from the wire,
 * reading only the fields rules use and building no protobufjs objects. Workers
 * and replay decode every evaluated trace with it: this is where their time goes.
 *
 * The mapping (what a protobuf decoder of the .proto gives, mapped so; the tests'
 * oracle decodes through protobufjs and maps it the same way): spans whose trace id
 * is not 16 bytes or span id not 8 are left out; a parent span id that is not 8
 * bytes is none (''); ids are lowercase hex; times are BigInt nanoseconds. An
 * AnyValue becomes a string, a boolean, a number (an int as Number(int64) rounds it,
 * a double), an array (unset values left out), an object (a kvlist) or the lowercase
 * hex of its bytes; a KeyValue without a value set is left out, a key set twice keeps
 * its last value (putAttribute).
 *
 * Differences from a protobuf decoder only on malformed input: invalid UTF-8 becomes
 * U+FFFD here; a message field repeated on the wire is read field by field.
 * Throws WireError on a malformed message.
 *
 * A SpanDecoder is long-lived (an evaluation thread's, replay's): its string caches
 * pay off across traces, and it counts what the attribute limits cut until asked.
 */
import { putAttribute, type AttributeLookup, type AttributeValue, type Attributes, type NumericIds, type SpanRecord, type SplitTimes } from '../rules/span.ts';
import { TraceIdHex, hexWords } from './hex.ts';
import { KeyValueSchema, REQUEST_TAGS, SpanSchema } from './otlp-schemas.ts';
import type { Utf8Set } from './utf8-set.ts';
import { WIRE_LEN, WireCursor, WireError } from './wire.ts';

// Tags (field number << 3 | wire type), from the .proto.
const SPAN = {
  traceId: SpanSchema.tag('trace_id'),
  spanId: SpanSchema.tag('span_id'),
  parentSpanId: SpanSchema.tag('parent_span_id'),
  name: SpanSchema.tag('name'),
  kind: SpanSchema.tag('kind'),
  start: SpanSchema.tag('start_time_unix_nano'),
  end: SpanSchema.tag('end_time_unix_nano'),
  attributes: SpanSchema.tag('attributes'),
  status: SpanSchema.tag('status'),
} as const;
const STATUS_SCHEMA = SpanSchema.nested[SpanSchema.tag('status') >>> 3]!;
const STATUS = { message: STATUS_SCHEMA.tag('message'), code: STATUS_SCHEMA.tag('code') } as const;
const KEY_VALUE = { key: KeyValueSchema.tag('key'), value: KeyValueSchema.tag('value') } as const;
const ANY_VALUE_SCHEMA = KeyValueSchema.nested[KeyValueSchema.tag('value') >>> 3]!;
const ANY = {
  string: ANY_VALUE_SCHEMA.tag('string_value'),
  bool: ANY_VALUE_SCHEMA.tag('bool_value'),
  int: ANY_VALUE_SCHEMA.tag('int_value'),
  double: ANY_VALUE_SCHEMA.tag('double_value'),
  array: ANY_VALUE_SCHEMA.tag('array_value'),
  kvlist: ANY_VALUE_SCHEMA.tag('kvlist_value'),
  bytes: ANY_VALUE_SCHEMA.tag('bytes_value'),
} as const;
/** ArrayValue.values and KeyValueList.values: field 1 of each. */
const VALUES = (1 << 3) | WIRE_LEN;
const RESOURCE_ATTRIBUTES = (1 << 3) | WIRE_LEN;

/**
 * Short strings decoded once: span names, attribute keys and values repeat
 * across the spans of a trace and across traces, and each Buffer#toString call
 * costs more than hashing the bytes. A direct-mapped table of the last string
 * seen per hash slot; a miss decodes and takes the slot.
 */
class Interner {
  static readonly SLOTS = 4096;
  static readonly MAX_BYTES = 48;
  readonly #bytes = new Uint8Array(Interner.SLOTS * Interner.MAX_BYTES);
  readonly #lengths = new Int32Array(Interner.SLOTS).fill(-1);
  readonly #strings: string[] = new Array<string>(Interner.SLOTS).fill('');

  get(b: Buffer, s: number, e: number): string {
    const n = e - s;
    if (n > Interner.MAX_BYTES) return b.toString('utf8', s, e);
    let h = 0x811c9dc5 ^ n;
    for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
    const slot = h >>> 20; // the top 12 bits: SLOTS = 4096
    const base = slot * Interner.MAX_BYTES;
    const bytes = this.#bytes;
    if (this.#lengths[slot] === n) {
      let i = 0;
      while (i < n && bytes[base + i] === b[s + i]) i++;
      if (i === n) return this.#strings[slot]!;
    }
    const str = b.toString('utf8', s, e);
    for (let i = 0; i < n; i++) bytes[base + i] = b[s + i]!;
    this.#lengths[slot] = n;
    this.#strings[slot] = str;
    return str;
  }
}

/** The little-endian signed 32-bit word at b[s, s + 4). */
function int32LE(b: Buffer, s: number): number {
  return b[s]! | (b[s + 1]! << 8) | (b[s + 2]! << 16) | (b[s + 3]! << 24);
}

/**
 * Hex of 8-byte span ids for the eager decoder: each is read once as a span's id and
 * again as its children's parent id, and made once. Direct-mapped on the id's two
 * 32-bit words.
 */
class SpanIdHex {
  static readonly SLOTS = 4096;
  readonly #lo = new Int32Array(SpanIdHex.SLOTS);
  readonly #hi = new Int32Array(SpanIdHex.SLOTS);
  readonly #strings: string[] = new Array<string>(SpanIdHex.SLOTS).fill('');

  /** Hex of the id whose words are lo, hi. */
  get(lo: number, hi: number): string {
    const slot = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> 20; // the top 12 bits: SLOTS = 4096
    const known = this.#strings[slot]!;
    if (known !== '' && this.#lo[slot] === lo && this.#hi[slot] === hi) return known;
    const hex = hexWords(lo, hi);
    this.#lo[slot] = lo;
    this.#hi[slot] = hi;
    this.#strings[slot] = hex;
    return hex;
  }
}

function joinTime(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * The attribute keys to decode (see rules' attributeKeys): every other
 * attribute is skipped without decoding its key or value.
 */
export { Utf8Set as AttributeKeyFilter } from './utf8-set.ts';

/**
 * Limits on what rules see (the OpenTelemetry SDK's attribute limits): past
 * them, attributes are dropped from the decoded copy and string values cut;
 * both are counted. Forwarded spans are never touched.
 */
export interface DecodeLimits {
  readonly maxAttributesPerSpan: number;
  readonly maxAttributeValueLength: number;
}

const NO_LIMITS: DecodeLimits = { maxAttributesPerSpan: Infinity, maxAttributeValueLength: Infinity };
const EMPTY = Buffer.alloc(0);

/** What wireAttribute gives when the value found is for the attributes object to give. */
const USE_OBJECT = Symbol('use the object');

/**
 * A cursor that reads KeyValue lists and AnyValues as the mapping above says,
 * under the decoder's limits, counting what they cut.
 */
class AttributeReader extends WireCursor {
  declare buf: Buffer;
  readonly #strings: Interner;
  readonly #filter: Utf8Set | undefined;
  readonly maxAttributes: number;
  readonly maxValueLength: number;
  /** Attributes in the object being filled (a kvlist value inside an attribute counts its own). */
  inTarget = 0;
  dropped = 0;
  truncated = 0;
  /** Where the key and the value of the KeyValue being read are (-1: absent); set by kvBounds. */
  keyStart = -1;
  keyEnd = -1;
  valueStart = -1;
  valueEnd = -1;

  constructor(strings: Interner, filter: Utf8Set | undefined, limits: DecodeLimits) {
    super(EMPTY);
    this.#strings = strings;
    this.#filter = filter;
    this.maxAttributes = limits.maxAttributesPerSpan;
    this.maxValueLength = limits.maxAttributeValueLength;
  }

  string(s: number, e: number): string {
    return this.#strings.get(this.buf, s, e);
  }

  /** AnyValue [start, end), mapped (undefined when none is set); the cursor ends at `end`. */
  anyValue(start: number, end: number): AttributeValue | undefined {
    // Nearly always one field: a short string, a bool or a one-byte int, read without the field loop.
    const b = this.buf;
    const first = b[start];
    if (end - start >= 2) {
      if (first === ANY.string && b[start + 1]! < 0x80 && start + 2 + b[start + 1]! === end) {
        this.pos = end;
        return this.#strings.get(b, start + 2, end);
      }
      if (end - start === 2 && b[start + 1]! < 0x80) {
        if (first === ANY.bool) {
          this.pos = end;
          return b[start + 1] !== 0;
        }
        if (first === ANY.int) {
          this.pos = end;
          return b[start + 1]!;
        }
      }
    }
    let out: AttributeValue | undefined;
    this.pos = start;
    while (this.pos < end) {
      const tag = this.varint(end);
      switch (tag) {
        case ANY.string: {
          const s = this.len(end);
          out = this.#strings.get(b, s, this.pos);
          break;
        }
        case ANY.bool:
          out = this.varint(end) !== 0;
          break;
        case ANY.int:
          out = this.int64(end);
          break;
        case ANY.double:
          if (end - this.pos < 8) throw new WireError('truncated fixed-size field');
          out = b.readDoubleLE(this.pos);
          this.pos += 8;
          break;
        case ANY.array: {
          const s = this.len(end);
          const after = this.pos;
          out = this.arrayValue(s, after);
          this.pos = after;
          break;
        }
        case ANY.kvlist: {
          const s = this.len(end);
          const after = this.pos;
          out = this.keyValues(s, after, VALUES, false);
          this.pos = after;
          break;
        }
        case ANY.bytes: {
          const s = this.len(end);
          out = b.toString('hex', s, this.pos);
          break;
        }
        default:
          this.skip(tag & 7, end);
      }
    }
    return out;
  }

  arrayValue(start: number, end: number): AttributeValue[] {
    const out: AttributeValue[] = [];
    this.pos = start;
    while (this.pos < end) {
      const tag = this.varint(end);
      if (tag !== VALUES) {
        this.skip(tag & 7, end);
        continue;
      }
      const s = this.len(end);
      const after = this.pos;
      const v = this.anyValue(s, after);
      this.pos = after;
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  limitValue(v: AttributeValue): AttributeValue {
    if (typeof v === 'string' && v.length > this.maxValueLength) {
      this.truncated++;
      return v.slice(0, this.maxValueLength);
    }
    return v;
  }

  /**
   * KeyValue list: the repeated field of tag `want` of the message [start, end), into
   * `out`; `filtered`: top-level attributes, which the key filter applies to.
   */
  keyValues(start: number, end: number, want: number, filtered: boolean, out: Record<string, AttributeValue> = {}): Record<string, AttributeValue> {
    const outer = this.inTarget; // a kvlist value inside a span's attribute: its own count
    this.inTarget = 0;
    this.pos = start;
    const b = this.buf;
    while (this.pos < end) {
      let kvStart: number;
      let kvEnd: number;
      const pos = this.pos;
      const n = b[pos + 1]!;
      if (b[pos] === want && n < 0x80 && pos + 2 + n <= end) {
        // A one-byte tag and length, as nearly always: read inline.
        kvStart = pos + 2;
        kvEnd = kvStart + n;
      } else {
        const tag = this.varint(end);
        if (tag !== want) {
          this.skip(tag & 7, end);
          continue;
        }
        kvStart = this.len(end);
        kvEnd = this.pos;
      }
      this.keyValue(kvStart, kvEnd, out, filtered);
      this.pos = kvEnd;
    }
    this.inTarget = outer;
    return out;
  }

  /** Reads the framing of the KeyValue [start, end) into keyStart … valueEnd; the cursor ends at `end`. */
  kvBounds(start: number, end: number): void {
    this.keyStart = -1;
    this.keyEnd = -1;
    this.valueStart = -1;
    this.valueEnd = -1;
    this.pos = start;
    // Nearly always a key then a value, each with a one-byte length: read without the field loop.
    const b = this.buf;
    if (end - start >= 4 && b[start] === KEY_VALUE.key && b[start + 1]! < 0x80) {
      const ke = start + 2 + b[start + 1]!;
      if (ke + 2 <= end && b[ke] === KEY_VALUE.value && b[ke + 1]! < 0x80 && ke + 2 + b[ke + 1]! === end) {
        this.keyStart = start + 2;
        this.keyEnd = ke;
        this.valueStart = ke + 2;
        this.valueEnd = end;
        this.pos = end;
        return;
      }
    }
    while (this.pos < end) {
      const t = this.varint(end);
      if (t === KEY_VALUE.key) {
        this.keyStart = this.len(end);
        this.keyEnd = this.pos;
      } else if (t === KEY_VALUE.value) {
        this.valueStart = this.len(end);
        this.valueEnd = this.pos;
      } else this.skip(t & 7, end);
    }
  }

  /** One KeyValue [start, end) into `target` (left out when its value is not set, or the filter skips its key). */
  keyValue(start: number, end: number, target: Record<string, AttributeValue>, filtered: boolean): void {
    this.kvBounds(start, end);
    const filter = this.#filter;
    let key: string;
    if (filtered && filter !== undefined) {
      const kept = this.keyStart < 0 ? filter.find(this.buf, 0, 0) : filter.find(this.buf, this.keyStart, this.keyEnd);
      if (kept === undefined) {
        // Not read by any rule: not decoded, but it still takes its place under the attribute limit.
        if (this.valueEnd > this.valueStart) {
          if (this.inTarget >= this.maxAttributes) this.dropped++;
          else this.inTarget++;
        }
        return;
      }
      key = kept;
    } else key = this.keyStart < 0 ? '' : this.#strings.get(this.buf, this.keyStart, this.keyEnd);
    if (this.valueStart < 0) return;
    const value = this.anyValue(this.valueStart, this.valueEnd);
    if (value === undefined) return;
    if (!Object.hasOwn(target, key)) {
      if (this.inTarget >= this.maxAttributes) {
        this.dropped++;
        return;
      }
      this.inTarget++;
    }
    putAttribute(target, key, this.limitValue(value));
  }

  /** The attributes (field 9) of the span [start, end) of `b`, under the limits; drops are not counted again (they were at decode time). */
  spanAttributes(b: Buffer, start: number, end: number): Record<string, AttributeValue> {
    const out: Record<string, AttributeValue> = {};
    const dropped = this.dropped;
    this.buf = b;
    this.inTarget = 0;
    try {
      this.keyValues(start, end, SPAN.attributes, true, out);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
    } finally {
      this.dropped = dropped;
      this.buf = EMPTY;
    }
    return out;
  }

  /**
   * The value of the attribute `key` (its UTF-8 bytes) of the span [start, end) of `b`:
   * that of its last KeyValue with a value set, as the attributes object would hold it
   * when the span has no more attributes than the limit; read on the wire, nothing else
   * decoded. A damaged list is read up to the damage. USE_OBJECT: a string past the
   * value-length limit, or an array or kvlist (whose strings the limits cut too): the
   * caller decodes them all, which counts what the limits cut once.
   */
  spanAttribute(b: Buffer, start: number, end: number, key: Uint8Array): AttributeValue | undefined | typeof USE_OBJECT {
    const dropped = this.dropped; // what a kvlist value counts here, the object counts
    const truncated = this.truncated;
    this.buf = b;
    let found: AttributeValue | undefined;
    try {
      this.pos = start;
      while (this.pos < end) {
        const tag = this.varint(end);
        if (tag !== SPAN.attributes) {
          this.skip(tag & 7, end);
          continue;
        }
        const kvStart = this.len(end);
        const kvEnd = this.pos;
        this.kvBounds(kvStart, kvEnd);
        this.pos = kvEnd;
        const n = this.keyStart < 0 ? 0 : this.keyEnd - this.keyStart;
        if (n !== key.length || this.valueStart < 0) continue;
        let i = 0;
        while (i < n && b[this.keyStart + i] === key[i]) i++;
        if (i < n) continue;
        const value = this.anyValue(this.valueStart, this.valueEnd);
        this.pos = kvEnd;
        if (value === undefined) continue;
        if (typeof value === 'object' || (typeof value === 'string' && value.length > this.maxValueLength)) return USE_OBJECT;
        found = value;
      }
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
    } finally {
      this.dropped = dropped;
      this.truncated = truncated;
      this.buf = EMPTY;
    }
    return found;
  }
}

export interface DecodeOptions {
  /** Decode only these attributes (span and resource); the others are left out. Default: all. */
  readonly attributes?: Utf8Set;
  /**
   * Decode a span's attributes when they are first read (rules read those of
   * about a quarter of the spans), or one of them found by its key on the wire
   * (`attribute`, what compiled rules call). The spans keep `payload` alive
   * meanwhile; an attribute list damaged on the wire is read up to the damage.
   */
  readonly lazyAttributes?: boolean;
  /** Attribute limits (default: none). */
  readonly limits?: DecodeLimits;
}

/** ExportTraceServiceRequest bytes to SpanRecords; see the top of this file. */
export class SpanDecoder {
  /** The cursor decode walks with. */
  readonly #reader: AttributeReader;
  /** The cursor a lazy span's attributes are read with, after decode (spans read in any order). */
  readonly #late: AttributeReader;
  readonly #lazy: boolean;
  readonly #filter: Utf8Set | undefined;
  readonly #traceIds = new TraceIdHex();
  readonly #spanIds = new SpanIdHex();
  readonly maxAttributes: number;

  constructor(options: DecodeOptions = {}) {
    const strings = new Interner();
    const limits = options.limits ?? NO_LIMITS;
    this.#filter = options.attributes;
    this.#lazy = options.lazyAttributes === true;
    this.#reader = new AttributeReader(strings, this.#filter, limits);
    this.#late = new AttributeReader(strings, this.#filter, limits);
    this.maxAttributes = limits.maxAttributesPerSpan;
  }

  /** Attributes dropped and values truncated since the last call. */
  takeLimitCounts(): { droppedAttributes: number; truncatedValues: number } {
    const r = this.#reader;
    const l = this.#late;
    const counts = { droppedAttributes: r.dropped + l.dropped, truncatedValues: r.truncated + l.truncated };
    r.dropped = r.truncated = l.dropped = l.truncated = 0;
    return counts;
  }

  /** A lazy span's attributes. */
  attributesOf(b: Buffer, start: number, end: number): Record<string, AttributeValue> {
    return this.#late.spanAttributes(b, start, end);
  }

  /** A lazy span's attribute `key` (its UTF-8 bytes), undefined when its filter leaves it out; USE_OBJECT: read attributesOf. */
  attributeOf(b: Buffer, start: number, end: number, key: Uint8Array): AttributeValue | undefined | typeof USE_OBJECT {
    const filter = this.#filter;
    if (filter !== undefined && filter.find(key, 0, key.length) === undefined) return undefined;
    return this.#late.spanAttribute(b, start, end, key);
  }

  /** Spans of an ExportTraceServiceRequest, as decodeSpans gives them. Throws WireError when malformed. */
  decode(payload: Uint8Array): SpanRecord[] {
    const r = this.#reader;
    const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    r.reset(buf);
    const out: SpanRecord[] = [];
    const end = buf.length;
    try {
      while (r.pos < end) {
        const tag = r.varint(end);
        if (tag !== REQUEST_TAGS.resourceSpans) {
          r.skip(tag & 7, end);
          continue;
        }
        const rsStart = r.len(end);
        const rsEnd = r.pos;
        // The resource first (wherever it is in the message): every span shares it.
        let resource: Attributes = {};
        r.pos = rsStart;
        while (r.pos < rsEnd) {
          const t = r.varint(rsEnd);
          if (t === REQUEST_TAGS.resource) {
            const s = r.len(rsEnd);
            const after = r.pos;
            resource = r.keyValues(s, after, RESOURCE_ATTRIBUTES, true);
            r.pos = after;
          } else r.skip(t & 7, rsEnd);
        }
        r.pos = rsStart;
        while (r.pos < rsEnd) {
          const t = r.varint(rsEnd);
          if (t !== REQUEST_TAGS.scopeSpans) {
            r.skip(t & 7, rsEnd);
            continue;
          }
          const ssStart = r.len(rsEnd);
          const ssEnd = r.pos;
          r.pos = ssStart;
          while (r.pos < ssEnd) {
            const st = r.varint(ssEnd);
            if (st !== REQUEST_TAGS.spans) {
              r.skip(st & 7, ssEnd);
              continue;
            }
            const spStart = r.len(ssEnd);
            const spEnd = r.pos;
            this.#span(spStart, spEnd, resource, out);
            r.pos = spEnd;
          }
          r.pos = ssEnd;
        }
        r.pos = rsEnd;
      }
    } finally {
      r.reset(EMPTY); // the payload is the spans' to keep alive, not the decoder's
    }
    return out;
  }

  #span(start: number, end: number, resource: Attributes, out: SpanRecord[]): void {
    const r = this.#reader;
    const lazy = this.#lazy;
    let traceId = '';
    let spanIdBytes = 0;
    let idLo = 0;
    let idHi = 0;
    let hasParent = false;
    let parentLo = 0;
    let parentHi = 0;
    let name = '';
    let kind = 0;
    let startHi = 0;
    let startLo = 0;
    let endHi = 0;
    let endLo = 0;
    let statusCode = 0;
    let statusMessage = '';
    let attributes: Record<string, AttributeValue> | undefined;
    let attributeEntries = 0;
    r.inTarget = 0;
    r.pos = start;
    const b = r.buf;
    while (r.pos < end) {
      const tag = r.varint(end);
      if ((tag & 7) === WIRE_LEN) {
        const s = r.len(end);
        const n = r.pos - s;
        switch (tag) {
          case SPAN.traceId:
            traceId = n === 16 ? this.#traceIds.get(b, s) : b.toString('hex', s, r.pos);
            break;
          case SPAN.spanId:
            spanIdBytes = n;
            if (n === 8) {
              idLo = int32LE(b, s);
              idHi = int32LE(b, s + 4);
            }
            break;
          case SPAN.parentSpanId:
            hasParent = n === 8;
            if (hasParent) {
              parentLo = int32LE(b, s);
              parentHi = int32LE(b, s + 4);
            }
            break;
          case SPAN.name:
            name = r.string(s, r.pos);
            break;
          case SPAN.attributes:
            if (lazy) attributeEntries++;
            else {
              const after = r.pos;
              r.keyValue(s, after, (attributes ??= {} as Record<string, AttributeValue>), true);
              r.pos = after;
            }
            break;
          case SPAN.status: {
            const after = r.pos;
            r.pos = s;
            while (r.pos < after) {
              const t = r.varint(after);
              if (t === STATUS.message) {
                const m = r.len(after);
                statusMessage = b.toString('utf8', m, r.pos);
              } else if (t === STATUS.code) statusCode = r.varint(after) | 0;
              else r.skip(t & 7, after);
            }
            r.pos = after;
            break;
          }
        }
        continue;
      }
      switch (tag) {
        case SPAN.kind:
          kind = r.varint(end) | 0;
          break;
        case SPAN.start:
          r.fixed64Words(end);
          startHi = r.hi;
          startLo = r.lo;
          break;
        case SPAN.end:
          r.fixed64Words(end);
          endHi = r.hi;
          endLo = r.lo;
          break;
        default:
          r.skip(tag & 7, end);
      }
    }
    if (traceId.length !== 32 || spanIdBytes !== 8) return;
    if (lazy) {
      // Past the limit now, as the eager decoder counts them; their keys and values when read.
      if (attributeEntries > r.maxAttributes) r.dropped += attributeEntries - r.maxAttributes;
      out.push(new WireSpan(this, traceId, idLo, idHi, parentLo, parentHi, hasParent, name, kind, startHi, startLo, endHi, endLo, statusCode, statusMessage, resource, b, start, end, attributeEntries));
      return;
    }
    out.push({
      traceId,
      spanId: this.#spanIds.get(idLo, idHi),
      parentSpanId: hasParent ? this.#spanIds.get(parentLo, parentHi) : '',
      name,
      kind,
      startTimeUnixNano: joinTime(startHi, startLo),
      endTimeUnixNano: joinTime(endHi, endLo),
      statusCode,
      statusMessage,
      attributes: attributes ?? {},
      resource,
    });
  }
}

/**
 * A span whose attributes are decoded from its bytes when first read, its times made
 * BigInts and its ids hex when first read (the trace index reads their words).
 */
class WireSpan implements SpanRecord, SplitTimes, NumericIds, AttributeLookup {
  readonly traceId: string;
  readonly idLo: number;
  readonly idHi: number;
  readonly parentLo: number;
  readonly parentHi: number;
  readonly hasParent: boolean;
  #spanId: string | undefined;
  #parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  readonly startHi: number;
  readonly startLo: number;
  readonly endHi: number;
  readonly endLo: number;
  #startNs: bigint | undefined;
  #endNs: bigint | undefined;
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly resource: Attributes;
  readonly #decoder: SpanDecoder;
  readonly #buf: Buffer;
  readonly #start: number;
  readonly #end: number;
  /** KeyValues in its attributes field (under the limit, attributes are found one at a time on the wire). */
  readonly #entries: number;
  #attributes: Record<string, AttributeValue> | undefined;

  constructor(
    decoder: SpanDecoder,
    traceId: string,
    idLo: number,
    idHi: number,
    parentLo: number,
    parentHi: number,
    hasParent: boolean,
    name: string,
    kind: number,
    startHi: number,
    startLo: number,
    endHi: number,
    endLo: number,
    statusCode: number,
    statusMessage: string,
    resource: Attributes,
    buffer: Buffer,
    start: number,
    end: number,
    entries: number,
  ) {
    this.#decoder = decoder;
    this.traceId = traceId;
    this.idLo = idLo;
    this.idHi = idHi;
    this.parentLo = parentLo;
    this.parentHi = parentHi;
    this.hasParent = hasParent;
    this.name = name;
    this.kind = kind;
    this.startHi = startHi;
    this.startLo = startLo;
    this.endHi = endHi;
    this.endLo = endLo;
    this.statusCode = statusCode;
    this.statusMessage = statusMessage;
    this.resource = resource;
    this.#buf = buffer;
    this.#start = start;
    this.#end = end;
    this.#entries = entries;
  }

  get spanId(): string {
    return (this.#spanId ??= hexWords(this.idLo, this.idHi));
  }

  get parentSpanId(): string {
    return this.hasParent ? (this.#parentSpanId ??= hexWords(this.parentLo, this.parentHi)) : '';
  }

  get startTimeUnixNano(): bigint {
    return (this.#startNs ??= joinTime(this.startHi, this.startLo));
  }

  get endTimeUnixNano(): bigint {
    return (this.#endNs ??= joinTime(this.endHi, this.endLo));
  }

  get attributes(): Attributes {
    return (this.#attributes ??= this.#decoder.attributesOf(this.#buf, this.#start, this.#end));
  }

  /**
   * Rules read one or two of a span's attributes, on about a quarter of the spans:
   * found on the wire, without the object of all of them, unless it is made already
   * or limits apply (more attributes than the limit, a value past its length, an
   * array or kvlist value).
   */
  attribute(key: string, utf8: Uint8Array): AttributeValue | undefined {
    if (this.#attributes === undefined && this.#entries <= this.#decoder.maxAttributes) {
      const value = this.#decoder.attributeOf(this.#buf, this.#start, this.#end, utf8);
      if (value !== USE_OBJECT) return value;
    }
    const attributes = this.attributes;
    const value = attributes[key]; // own, or (for toString and the like) Object.prototype's
    return value === undefined || Object.hasOwn(attributes, key) ? value : undefined;
  }

  toJSON(): SpanRecord {
    const { traceId, spanId, parentSpanId, name, kind, startTimeUnixNano, endTimeUnixNano, statusCode, statusMessage, attributes, resource } = this;
    return { traceId, spanId, parentSpanId, name, kind, startTimeUnixNano, endTimeUnixNano, statusCode, statusMessage, attributes, resource };
  }
}

/** Spans of an ExportTraceServiceRequest, by a decoder of these options made for the call (a long-lived SpanDecoder keeps its caches). */
export function decodeSpans(payload: Uint8Array, options?: DecodeOptions): SpanRecord[] {
  return new SpanDecoder(options).decode(payload);
}
