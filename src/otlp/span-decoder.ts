/**
 * ExportTraceServiceRequest protobuf straight to SpanRecords, from the wire:
 * what the schema-driven decoder (decodeSpansWithSchema) gives (same records,
 * same rules: spans whose ids are not 16/8 bytes are left out, attributes as
 * src/otlp/spans.ts maps them), reading only the fields rules use and building
 * no protobufjs objects. Workers and replay decode every evaluated trace with
 * it: this is where their time goes.
 *
 * Differences from the schema decoder only on malformed input: invalid UTF-8 becomes
 * U+FFFD here; a message field repeated on the wire is read field by field.
 * Throws WireError on a malformed message.
 */
import { putAttribute, type AttributeLookup, type AttributeValue, type Attributes, type NumericIds, type SpanRecord, type SplitTimes } from '../rules/span.ts';
import { TraceIdHex, hexWords } from './hex.ts';
import type { Utf8Set } from './utf8-set.ts';
import { WireError } from './wire.ts';

let pos = 0;
let buf: Buffer = Buffer.alloc(0);

function varint(end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError('varint longer than 10 bytes');
}

/** A varint as a signed 64-bit integer, as a number (rounded as Number(bigint) rounds). */
function int64(end: number): number {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    if (shift < 28) lo |= (b & 0x7f) << shift;
    else if (shift === 28) {
      lo |= (b & 0x0f) << 28;
      hi |= (b & 0x7f) >> 4;
    } else hi |= (b & 0x7f) << (shift - 32);
    if (b < 0x80) {
      const u = BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
      return Number(u);
    }
    shift += 7;
  }
  throw new WireError('varint longer than 10 bytes');
}

/**
 * The low and the high unsigned 32 bits of the fixed64 at `pos`, which moves past it.
 * Read inline, not with wire.ts's uint32LE: on this hot path the call measured slower
 * (test/bench/README.md's worker figures).
 */
let fixedLo = 0;
let fixedHi = 0;
function fixed64Split(end: number): void {
  if (end - pos < 8) throw new WireError('truncated fixed64');
  const b = buf;
  const p = pos;
  fixedLo = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  fixedHi = (b[p + 4]! | (b[p + 5]! << 8) | (b[p + 6]! << 16) | (b[p + 7]! << 24)) >>> 0;
  pos = p + 8;
}

function joinTime(hi: number, lo: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function skip(wireType: number, end: number): void {
  switch (wireType) {
    case 0:
      varint(end);
      return;
    case 1:
      pos += 8;
      break;
    case 2: {
      const n = varint(end); // before `pos +=`: varint moves pos
      pos += n;
      break;
    }
    case 5:
      pos += 4;
      break;
    default:
      throw new WireError(`unsupported wire type ${wireType}`);
  }
  if (pos > end) throw new WireError('field runs past the end of its message');
}

/** Content start of a length-delimited field; the cursor moves past it. */
function len(end: number): number {
  const n = varint(end);
  const start = pos;
  if (n > end - start) throw new WireError('length-delimited field runs past the end of its message');
  pos = start + n;
  return start;
}

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
  readonly #encoding: 'utf8' | 'hex';

  constructor(encoding: 'utf8' | 'hex') {
    this.#encoding = encoding;
  }

  get(b: Buffer, s: number, e: number): string {
    const n = e - s;
    if (n > Interner.MAX_BYTES) return b.toString(this.#encoding, s, e);
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
    const str = b.toString(this.#encoding, s, e);
    for (let i = 0; i < n; i++) bytes[base + i] = b[s + i]!;
    this.#lengths[slot] = n;
    this.#strings[slot] = str;
    return str;
  }
}

const utf8 = new Interner('utf8');

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

const spanIds = new SpanIdHex();

/**
 * The attribute keys to decode (see rules' attributeKeys): every other
 * attribute is skipped without decoding its key or value.
 */
export { Utf8Set as AttributeKeyFilter } from './utf8-set.ts';

/** The filter of the decodeSpansFast call in progress. */
let keyFilter: Utf8Set | undefined;

/** AnyValue [start, end): as src/otlp/spans.ts maps it (undefined when none is set). */
function anyValue(start: number, end: number): AttributeValue | undefined {
  // Nearly always one field: a short string, a bool or a one-byte int, read without the field loop.
  const b = buf;
  const first = b[start];
  if (end - start >= 2) {
    if (first === ((1 << 3) | 2) && b[start + 1]! < 0x80 && start + 2 + b[start + 1]! === end) {
      pos = end;
      return utf8.get(b, start + 2, end);
    }
    if (end - start === 2 && b[start + 1]! < 0x80) {
      if (first === ((2 << 3) | 0)) {
        pos = end;
        return b[start + 1] !== 0;
      }
      if (first === ((3 << 3) | 0)) {
        pos = end;
        return b[start + 1]!;
      }
    }
  }
  let out: AttributeValue | undefined;
  pos = start;
  while (pos < end) {
    const tag = varint(end);
    switch (tag) {
      case (1 << 3) | 2: {
        const s = len(end);
        out = utf8.get(buf, s, pos);
        break;
      }
      case (2 << 3) | 0:
        out = varint(end) !== 0;
        break;
      case (3 << 3) | 0:
        out = int64(end);
        break;
      case (4 << 3) | 1:
        if (end - pos < 8) throw new WireError('truncated double');
        out = buf.readDoubleLE(pos);
        pos += 8;
        break;
      case (5 << 3) | 2: {
        const s = len(end);
        const after = pos;
        out = arrayValue(s, after);
        pos = after;
        break;
      }
      case (6 << 3) | 2: {
        const s = len(end);
        const after = pos;
        out = keyValues(s, after, 1, false);
        pos = after;
        break;
      }
      case (7 << 3) | 2: {
        const s = len(end);
        out = buf.toString('hex', s, pos);
        break;
      }
      default:
        skip(tag & 7, end);
    }
  }
  return out;
}

function arrayValue(start: number, end: number): AttributeValue[] {
  const out: AttributeValue[] = [];
  pos = start;
  while (pos < end) {
    const tag = varint(end);
    if (tag !== ((1 << 3) | 2)) {
      skip(tag & 7, end);
      continue;
    }
    const s = len(end);
    const after = pos;
    const v = anyValue(s, after);
    pos = after;
    if (v !== undefined) out.push(v);
  }
  return out;
}

/**
 * Limits on what rules see (the OpenTelemetry SDK's attribute limits): past
 * them, attributes are dropped from the decoded copy and string values cut;
 * both are counted. Forwarded spans are never touched.
 */
let maxAttributes = Infinity;
let maxValueLength = Infinity;
let attributesInTarget = 0;
let droppedAttributes = 0;
let truncatedValues = 0;

export function setDecodeLimits(limits: { maxAttributesPerSpan: number; maxAttributeValueLength: number }): void {
  maxAttributes = limits.maxAttributesPerSpan;
  maxValueLength = limits.maxAttributeValueLength;
}

/** Attributes dropped and values truncated since the last call. */
export function takeLimitCounts(): { droppedAttributes: number; truncatedValues: number } {
  const counts = { droppedAttributes, truncatedValues };
  droppedAttributes = 0;
  truncatedValues = 0;
  return counts;
}

function limitValue(v: AttributeValue): AttributeValue {
  if (typeof v === 'string' && v.length > maxValueLength) {
    truncatedValues++;
    return v.slice(0, maxValueLength);
  }
  return v;
}

/**
 * KeyValue list: the repeated field `field` of the message [start, end), into
 * `out`; `filtered`: top-level attributes, which the key filter applies to.
 */
function keyValues(start: number, end: number, field: number, filtered: boolean, out: Record<string, AttributeValue> = {}): Record<string, AttributeValue> {
  const want = (field << 3) | 2;
  const outer = attributesInTarget; // a kvlist value inside a span's attribute: its own count
  attributesInTarget = 0;
  pos = start;
  const b = buf;
  while (pos < end) {
    let kvStart: number;
    let kvEnd: number;
    const n = b[pos + 1]!;
    if (b[pos] === want && n < 0x80 && pos + 2 + n <= end) {
      // A one-byte tag and length, as nearly always: read inline.
      kvStart = pos + 2;
      kvEnd = kvStart + n;
    } else {
      const tag = varint(end);
      if (tag !== want) {
        skip(tag & 7, end);
        continue;
      }
      kvStart = len(end);
      kvEnd = pos;
    }
    keyValue(kvStart, kvEnd, out, filtered);
    pos = kvEnd;
  }
  attributesInTarget = outer;
  return out;
}

/** Where the key and the value of the KeyValue being read are (-1: absent); set by kvBounds. */
let keyStart = -1;
let keyEnd = -1;
let valueStart = -1;
let valueEnd = -1;

/** Reads the framing of the KeyValue [start, end) into keyStart … valueEnd; the cursor ends at `end`. */
function kvBounds(start: number, end: number): void {
  keyStart = -1;
  keyEnd = -1;
  valueStart = -1;
  valueEnd = -1;
  pos = start;
  // Nearly always a key then a value, each with a one-byte length: read without the field loop.
  const b = buf;
  if (end - start >= 4 && b[start] === ((1 << 3) | 2) && b[start + 1]! < 0x80) {
    const ke = start + 2 + b[start + 1]!;
    if (ke + 2 <= end && b[ke] === ((2 << 3) | 2) && b[ke + 1]! < 0x80 && ke + 2 + b[ke + 1]! === end) {
      keyStart = start + 2;
      keyEnd = ke;
      valueStart = ke + 2;
      valueEnd = end;
      pos = end;
      return;
    }
  }
  while (pos < end) {
    const t = varint(end);
    if (t === ((1 << 3) | 2)) {
      keyStart = len(end);
      keyEnd = pos;
    } else if (t === ((2 << 3) | 2)) {
      valueStart = len(end);
      valueEnd = pos;
    } else skip(t & 7, end);
  }
}

/** One KeyValue [start, end) into `target` (left out when its value is not set, or the filter skips its key). */
function keyValue(start: number, end: number, target: Record<string, AttributeValue>, filtered: boolean): void {
  kvBounds(start, end);
  let key: string;
  if (filtered && keyFilter !== undefined) {
    const kept = keyStart < 0 ? keyFilter.find(buf, 0, 0) : keyFilter.find(buf, keyStart, keyEnd);
    if (kept === undefined) {
      // Not read by any rule: not decoded, but it still takes its place under the attribute limit.
      if (valueEnd > valueStart) {
        if (attributesInTarget >= maxAttributes) droppedAttributes++;
        else attributesInTarget++;
      }
      return;
    }
    key = kept;
  } else key = keyStart < 0 ? '' : utf8.get(buf, keyStart, keyEnd);
  if (valueStart < 0) return;
  const value = anyValue(valueStart, valueEnd);
  if (value === undefined) return;
  if (!Object.hasOwn(target, key)) {
    if (attributesInTarget >= maxAttributes) {
      droppedAttributes++;
      return;
    }
    attributesInTarget++;
  }
  putAttribute(target, key, limitValue(value));
}

/** What wireAttribute gives when the value found is for the attributes object to give. */
const USE_OBJECT = Symbol('use the object');

/**
 * The value of the attribute `key` (its UTF-8 bytes) of the span [start, end) of `b`:
 * that of its last KeyValue with a value set, as the attributes object would hold it
 * when the span has no more attributes than the limit; read on the wire, nothing else
 * decoded. A damaged list is read up to the damage. USE_OBJECT: a string past the
 * value-length limit, or an array or kvlist (whose strings the limits cut too): the
 * caller decodes them all, which counts what the limits cut once.
 */
function wireAttribute(b: Buffer, start: number, end: number, key: Uint8Array): AttributeValue | undefined | typeof USE_OBJECT {
  const savedBuf = buf;
  const savedPos = pos;
  const savedDropped = droppedAttributes; // what a kvlist value counts here, the object counts
  const savedTruncated = truncatedValues;
  buf = b;
  let found: AttributeValue | undefined;
  try {
    pos = start;
    while (pos < end) {
      let tag = b[pos]!;
      if (tag < 0x80) pos++;
      else tag = varint(end);
      if (tag !== ((9 << 3) | 2)) {
        skip(tag & 7, end);
        continue;
      }
      const kvStart = len(end);
      const kvEnd = pos;
      kvBounds(kvStart, kvEnd);
      pos = kvEnd;
      const n = keyStart < 0 ? 0 : keyEnd - keyStart;
      if (n !== key.length || valueStart < 0) continue;
      let i = 0;
      while (i < n && b[keyStart + i] === key[i]) i++;
      if (i < n) continue;
      const value = anyValue(valueStart, valueEnd);
      pos = kvEnd;
      if (value === undefined) continue;
      if (typeof value === 'object' || (typeof value === 'string' && value.length > maxValueLength)) return USE_OBJECT;
      found = value;
    }
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
  } finally {
    buf = savedBuf;
    pos = savedPos;
    droppedAttributes = savedDropped;
    truncatedValues = savedTruncated;
  }
  return found;
}

/** Every span of a trace repeats its trace id. */
const traceIds = new TraceIdHex();

function span(start: number, end: number, resource: Attributes, out: SpanRecord[]): void {
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
  attributesInTarget = 0;
  pos = start;
  const b = buf;
  while (pos < end) {
    // Tags and lengths are nearly always one byte: read inline, varint() for the others.
    let tag = b[pos]!;
    if (tag < 0x80) pos++;
    else tag = varint(end);
    if ((tag & 7) === 2) {
      let n = pos < end ? b[pos]! : 0x80;
      if (n < 0x80) pos++;
      else n = varint(end);
      const s = pos;
      if (n > end - s) throw new WireError('length-delimited field runs past the end of its message');
      pos = s + n;
      switch (tag) {
        case (1 << 3) | 2:
          traceId = n === 16 ? traceIds.get(b, s) : b.toString('hex', s, pos);
          break;
        case (2 << 3) | 2:
          spanIdBytes = n;
          if (n === 8) {
            idLo = int32LE(b, s);
            idHi = int32LE(b, s + 4);
          }
          break;
        case (4 << 3) | 2:
          hasParent = n === 8;
          if (hasParent) {
            parentLo = int32LE(b, s);
            parentHi = int32LE(b, s + 4);
          }
          break;
        case (5 << 3) | 2:
          name = utf8.get(b, s, pos);
          break;
        case (9 << 3) | 2:
          if (lazy) attributeEntries++;
          else {
            const after = pos;
            keyValue(s, after, (attributes ??= {} as Record<string, AttributeValue>), true);
            pos = after;
          }
          break;
        case (15 << 3) | 2: {
          const after = pos;
          pos = s;
          while (pos < after) {
            const t = varint(after);
            if (t === ((2 << 3) | 2)) {
              const m = len(after);
              statusMessage = b.toString('utf8', m, pos);
            } else if (t === ((3 << 3) | 0)) statusCode = varint(after) | 0;
            else skip(t & 7, after);
          }
          pos = after;
          break;
        }
      }
      continue;
    }
    switch (tag) {
      case (6 << 3) | 0:
        kind = varint(end) | 0;
        break;
      case (7 << 3) | 1:
        fixed64Split(end);
        startHi = fixedHi;
        startLo = fixedLo;
        break;
      case (8 << 3) | 1:
        fixed64Split(end);
        endHi = fixedHi;
        endLo = fixedLo;
        break;
      default:
        skip(tag & 7, end);
    }
  }
  if (traceId.length !== 32 || spanIdBytes !== 8) return;
  if (lazy) {
    // Past the limit now, as the eager decoder counts them; their keys and values when read.
    if (attributeEntries > maxAttributes) droppedAttributes += attributeEntries - maxAttributes;
    out.push(new WireSpan(traceId, idLo, idHi, parentLo, parentHi, hasParent, name, kind, startHi, startLo, endHi, endLo, statusCode, statusMessage, resource, buf, start, end, keyFilter, attributeEntries));
    return;
  }
  out.push({
    traceId,
    spanId: spanIds.get(idLo, idHi),
    parentSpanId: hasParent ? spanIds.get(parentLo, parentHi) : '',
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
}

/** Whether the decodeSpansFast call in progress defers attributes. */
let lazy = false;

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
  readonly #buf: Buffer;
  readonly #start: number;
  readonly #end: number;
  readonly #filter: Utf8Set | undefined;
  /** KeyValues in its attributes field (under the limit, attributes are found one at a time on the wire). */
  readonly #entries: number;
  #attributes: Record<string, AttributeValue> | undefined;

  constructor(
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
    filter: Utf8Set | undefined,
    entries: number,
  ) {
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
    this.#filter = filter;
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
    return (this.#attributes ??= spanAttributes(this.#buf, this.#start, this.#end, this.#filter));
  }

  /**
   * Rules read one or two of a span's attributes, on about a quarter of the spans:
   * found on the wire, without the object of all of them, unless it is made already
   * or limits apply (more attributes than the limit, a value past its length, an
   * array or kvlist value).
   */
  attribute(key: string, utf8: Uint8Array): AttributeValue | undefined {
    if (this.#attributes === undefined && this.#entries <= maxAttributes) {
      const filter = this.#filter;
      if (filter !== undefined && filter.find(utf8, 0, utf8.length) === undefined) return undefined;
      const value = wireAttribute(this.#buf, this.#start, this.#end, utf8);
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

/** The attributes (field 9) of the span [start, end) of `b`, under the limits; the decoder's state is kept. */
function spanAttributes(b: Buffer, start: number, end: number, filter: Utf8Set | undefined): Record<string, AttributeValue> {
  const saved = { buf, pos, keyFilter, attributesInTarget, droppedAttributes };
  const out: Record<string, AttributeValue> = {};
  buf = b;
  keyFilter = filter;
  try {
    keyValues(start, end, 9, true, out);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
  } finally {
    ({ buf, pos, keyFilter, attributesInTarget, droppedAttributes } = saved); // drops were counted at decode time
  }
  return out;
}

/** Spans of an ExportTraceServiceRequest, as decodeSpans gives them. Throws WireError when malformed. */
export function decodeSpansFast(payload: Uint8Array, options?: DecodeOptions): SpanRecord[] {
  buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  keyFilter = options?.attributes;
  lazy = options?.lazyAttributes === true;
  const out: SpanRecord[] = [];
  const end = buf.length;
  pos = 0;
  while (pos < end) {
    const tag = varint(end);
    if (tag !== ((1 << 3) | 2)) {
      skip(tag & 7, end);
      continue;
    }
    const rsStart = len(end);
    const rsEnd = pos;
    // The resource first (wherever it is in the message): every span shares it.
    let resource: Attributes = {};
    pos = rsStart;
    while (pos < rsEnd) {
      const t = varint(rsEnd);
      if (t === ((1 << 3) | 2)) {
        const s = len(rsEnd);
        const after = pos;
        resource = keyValues(s, after, 1, true);
        pos = after;
      } else skip(t & 7, rsEnd);
    }
    pos = rsStart;
    while (pos < rsEnd) {
      const t = varint(rsEnd);
      if (t !== ((2 << 3) | 2)) {
        skip(t & 7, rsEnd);
        continue;
      }
      const ssStart = len(rsEnd);
      const ssEnd = pos;
      pos = ssStart;
      while (pos < ssEnd) {
        const st = varint(ssEnd);
        if (st !== ((2 << 3) | 2)) {
          skip(st & 7, ssEnd);
          continue;
        }
        const spStart = len(ssEnd);
        const spEnd = pos;
        span(spStart, spEnd, resource, out);
        pos = spEnd;
      }
      pos = ssEnd;
    }
    pos = rsEnd;
  }
  return out;
}
