/**
 * The protobuf wire reader: one cursor (WireCursor) over a message's bytes that
 * the splitter, the scanner, the checker and the span decoder all read with, so
 * varints, lengths, skips and their faults are read and named one way. A cursor
 * is an object its user owns (a call's own, or a long-lived reader's): nothing
 * here is module state, so any number of readers, nested or in turn, share none.
 *
 * Also the schema checker (checkMessage): whether bytes are a message a
 * conformant protobuf decoder accepts, with the field at fault named.
 */
import { isUtf8 } from 'node:buffer';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/**
 * A malformed message, or a string field that is not UTF-8 (both refused by a
 * conformant protobuf decoder). `path` names the field from the message checked
 * down to the fault (`attributes[2].value.string_value`); the message is
 * `path: reason`, or the reason alone at the message itself.
 */
export class WireError extends Error {
  override name = 'WireError';
  readonly reason: string;
  readonly path: string[] = [];
  /** True when the bytes are well-formed and a string field holds invalid UTF-8. */
  readonly utf8: boolean;

  constructor(reason: string, utf8 = false) {
    super(reason);
    this.reason = reason;
    this.utf8 = utf8;
  }

  /** Puts `segment` (a field name, `name[i]` for repeated fields) in front of the path. */
  within(segment: string): this {
    if (segment !== '') this.path.unshift(segment);
    this.message = this.path.length === 0 ? this.reason : `${this.path.join('.')}: ${this.reason}`;
    return this;
  }
}

const EMPTY = new Uint8Array(0);
const NO_VIEW = new DataView(new ArrayBuffer(0));

/**
 * A position in a buffer of protobuf bytes. Every read takes the end of the
 * message it is in (the cursor walks nested messages without a reader per
 * message) and throws WireError when a field runs past it. `lo` and `hi` hold
 * the words of the last fixed64 read (no BigInt per time stamp).
 */
export class WireCursor {
  buf: Uint8Array;
  pos: number;
  /** The low and the high unsigned 32 bits of the last fixed64Words read. */
  lo = 0;
  hi = 0;
  /** A view of buf for isUtf8 (made once per buffer, when first needed), and the buffer it views. */
  #view: DataView = NO_VIEW;
  #viewOf: Uint8Array | undefined;

  constructor(buf: Uint8Array = EMPTY, pos = 0) {
    this.buf = buf;
    this.pos = pos;
  }

  /** Points the cursor at `buf`, at `pos`. */
  reset(buf: Uint8Array, pos = 0): void {
    this.buf = buf;
    this.pos = pos;
    this.#view = NO_VIEW;
    this.#viewOf = undefined;
  }

  /** A varint of at most 64 bits, as a number (exact below 2^53: tags, lengths, counts). */
  varint(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos < end && (buf[pos] as number) < 0x80) {
      this.pos = pos + 1;
      return buf[pos] as number;
    }
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new WireError('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
      mul *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** A varint as a signed 64-bit integer, as a number (rounded as Number(bigint) rounds). */
  int64(end: number): number {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new WireError('truncated varint');
      const b = buf[this.pos++]!;
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (shift - 32);
      if (b < 0x80) return Number(BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)));
      shift += 7;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** The content start of a length-delimited field; the cursor moves to its content's end. */
  len(end: number): number {
    const n = this.varint(end);
    const start = this.pos;
    if (n > end - start) throw new WireError('length-delimited field runs past the end of its message');
    this.pos = start + n;
    return start;
  }

  /** The fixed64 at the cursor into lo and hi; the cursor moves past it. */
  fixed64Words(end: number): void {
    const b = this.buf;
    const p = this.pos;
    if (end - p < 8) throw new WireError('truncated fixed-size field');
    this.lo = (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
    this.hi = (b[p + 4]! | (b[p + 5]! << 8) | (b[p + 6]! << 16) | (b[p + 7]! << 24)) >>> 0;
    this.pos = p + 8;
  }

  /** Moves past the value of a field of this wire type. */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint(end);
        return;
      case WIRE_FIXED64:
        this.advance(8, end);
        return;
      case WIRE_LEN:
        this.len(end);
        return;
      case WIRE_FIXED32:
        this.advance(4, end);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number, end: number): void {
    if (end - this.pos < n) throw new WireError('truncated fixed-size field');
    this.pos += n;
  }

  /**
   * Whether buf[start, end) is valid UTF-8: ASCII checked here eight bytes at a
   * time (nearly every OTLP string is ASCII, and a call into Node per string costs
   * more than reading it), the rest, from the first byte that is not ASCII, by
   * Node's validator.
   */
  isUtf8(start: number, end: number): boolean {
    const buf = this.buf;
    if (this.#viewOf !== buf) {
      this.#viewOf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const view = this.#view;
    let k = start;
    while (k + 8 <= end && ((view.getInt32(k) | view.getInt32(k + 4)) & 0x80808080) === 0) k += 8;
    if (k + 4 <= end && (view.getInt32(k) & 0x80808080) === 0) k += 4;
    while (k < end) {
      if ((buf[k] as number) >= 0x80) return isUtf8(buf.subarray(k, end));
      k++;
    }
    return true;
  }
}

const WIRE_TYPE_NAMES = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32', '6', '7'];

/** The reason for a known field of the wrong wire type. */
export function wrongWireType(got: number, expected: number): string {
  return `wire type ${got} (${WIRE_TYPE_NAMES[got]}), expected ${expected} (${WIRE_TYPE_NAMES[expected]})`;
}

/** The unsigned 32-bit little-endian integer at buf[at, at + 4) (the halves of a fixed64, low first). */
export function uint32LE(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0;
}

/** Bytes of a varint. */
export function varintBytes(value: number): Uint8Array {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** What a length-delimited field's content must be, beyond fitting its message (MessageSchema.define). */
export const CONTENT_ANY = 0;
/** A proto3 `string`: UTF-8 (a conformant decoder refuses one that is not). */
export const CONTENT_UTF8 = 1;
/** An OTLP span id or trace id: empty or of this many bytes (what the Collector decodes). */
export const CONTENT_ID8 = 8;
export const CONTENT_ID16 = 16;

const UNKNOWN = -1;
const NESTED = -2;

/**
 * A message's fields as checkMessage reads them: per field number, the wire type
 * expected or a nested message's schema, in dense tables (this walks every
 * attribute of every received span). Built once, from the .proto (otlp-schemas.ts).
 */
export class MessageSchema {
  readonly name: string;
  /** Per field number below its length: the wire type expected, NESTED, or UNKNOWN. */
  kinds = new Int8Array(0);
  /** Per field number below its length: a CONTENT_* rule for a length-delimited field. */
  contents = new Uint8Array(0);
  /** Per field number: the nested schema where kinds says NESTED. */
  nested: (MessageSchema | undefined)[] = [];
  /** Field names as in the .proto, for error messages; a repeated field's ends with `[]`. */
  readonly names: Record<number, string> = {};
  /** A KeyValue's shape (key a string, value an AnyValue of the usual scalars): checked by simpleKeyValue. */
  keyValue = false;

  constructor(name: string) {
    this.name = name;
  }

  /** Field `number` holds a value of this wire type (or a nested message), and its content is `content`. */
  define(number: number, name: string, kind: number | MessageSchema, content = CONTENT_ANY): void {
    if (number >= this.kinds.length) {
      const kinds = new Int8Array(number + 1).fill(UNKNOWN);
      kinds.set(this.kinds);
      const contents = new Uint8Array(number + 1);
      contents.set(this.contents);
      this.kinds = kinds;
      this.contents = contents;
      while (this.nested.length <= number) this.nested.push(undefined);
    }
    this.names[number] = name;
    this.contents[number] = content;
    if (typeof kind === 'number') this.kinds[number] = kind;
    else {
      this.kinds[number] = NESTED;
      this.nested[number] = kind;
    }
  }

  /** The wire type field `number` expects (WIRE_LEN for a nested message); -1 when unknown. */
  wireType(number: number): number {
    const kind = number < this.kinds.length ? (this.kinds[number] as number) : UNKNOWN;
    return kind === NESTED ? WIRE_LEN : kind;
  }

  /** The tag (number << 3 | wire type) of the field named `name` (without `[]`). */
  tag(name: string): number {
    for (const [number, n] of Object.entries(this.names)) if (n === name || n === `${name}[]`) return (Number(number) << 3) | this.wireType(Number(number));
    throw new Error(`${this.name} has no field ${name}`);
  }
}

/** Whether the schema is a KeyValue as simpleKeyValue reads one: a string key, an AnyValue of its usual scalar fields. */
export function hasKeyValueShape(schema: MessageSchema): boolean {
  const value = schema.nested[2];
  return (
    schema.wireType(1) === WIRE_LEN &&
    schema.contents[1] === CONTENT_UTF8 &&
    value !== undefined &&
    value.wireType(1) === WIRE_LEN &&
    value.contents[1] === CONTENT_UTF8 &&
    value.wireType(2) === WIRE_VARINT &&
    value.wireType(3) === WIRE_VARINT &&
    value.wireType(4) === WIRE_FIXED64 &&
    value.wireType(7) === WIRE_LEN &&
    value.contents[7] === CONTENT_ANY
  );
}

/**
 * Whether [s, e) is a KeyValue of the commonest shape, well-formed: a short UTF-8 key
 * and a short AnyValue of one scalar field (string, bool, int, double, bytes), each tag
 * and length one byte. Checked in place, without the field loop; false for anything else
 * (which the field loop then checks, or rejects with its own message and path).
 */
function simpleKeyValue(c: WireCursor, s: number, e: number): boolean {
  const buf = c.buf;
  if (e - s < 4 || buf[s] !== ((1 << 3) | WIRE_LEN)) return false;
  const keyLength = buf[s + 1] as number;
  if (keyLength >= 0x80) return false;
  let p = s + 2 + keyLength;
  if (p + 2 > e || buf[p] !== ((2 << 3) | WIRE_LEN)) return false;
  const n = buf[p + 1] as number;
  if (n >= 0x80 || p + 2 + n !== e) return false;
  // The strings to check: the key, and a string value with it (the value's tags and
  // lengths between them are one byte each, so ASCII): one range.
  let textEnd = p;
  p += 2;
  if (n !== 0) {
    switch (buf[p]) {
      case (1 << 3) | WIRE_LEN:
        if (n < 2 || (buf[p + 1] as number) + 2 !== n) return false;
        textEnd = e;
        break;
      case (7 << 3) | WIRE_LEN:
        if (n < 2 || (buf[p + 1] as number) + 2 !== n) return false;
        break;
      case (2 << 3) | WIRE_VARINT:
      case (3 << 3) | WIRE_VARINT: {
        // One varint filling the value: continuation bits on all but its last byte, at most 10 bytes.
        if (n < 2 || n > 11) return false;
        for (let k = 1; k < n - 1; k++) if ((buf[p + k] as number) < 0x80) return false;
        if ((buf[p + n - 1] as number) >= 0x80) return false;
        break;
      }
      case (4 << 3) | WIRE_FIXED64:
        if (n !== 9) return false;
        break;
      default:
        return false;
    }
  }
  return c.isUtf8(s + 2, textEnd);
}

/**
 * Checks that c.buf[start, end) is a message of the schema as a conformant
 * protobuf decoder reads it: every tag and length consistent, no field number 0,
 * known fields of the right wire type, string fields UTF-8, nesting bounded.
 * Unknown fields are skipped (they pass through unchanged). Throws WireError
 * (locateFault then names the field at fault); the cursor ends anywhere. `seen`: where each scalar field of the message
 * itself was (the last occurrence): seen[2f] and seen[2f + 1] bound field f's
 * content (a fixed64's 8 bytes, a string's bytes), for fields below
 * seen.length / 2; untouched for absent fields.
 */
export function checkMessage(c: WireCursor, start: number, end: number, schema: MessageSchema, depth = 0, seen?: Int32Array): void {
  // A fault throws a WireError without a path (locateFault finds it).
  if (depth > 32) throw new WireError(`${schema.name} nested deeper than 32`);
  const kinds = schema.kinds;
  c.pos = start;
  while (c.pos < end) {
    const tag = c.varint(end);
    // Field numbers end at 2^29 - 1: larger tags are not protobuf.
    if (tag > 0xffffffff) throw new WireError('field number above 2^29 - 1');
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new WireError('field number 0');
    const kind = field < kinds.length ? (kinds[field] as number) : UNKNOWN;
    if (kind === NESTED) {
      if (wireType !== WIRE_LEN) throw new WireError(wrongWireType(wireType, WIRE_LEN));
      const s = c.len(end);
      const e = c.pos;
      const nested = schema.nested[field] as MessageSchema;
      // Attributes are most of a span: the common ones without two nested field loops.
      if (!(nested.keyValue && depth + 2 <= 32 && simpleKeyValue(c, s, e))) checkMessage(c, s, e, nested, depth + 1, undefined);
      c.pos = e;
      continue;
    }
    if (kind !== UNKNOWN && wireType !== kind) {
      // Packed repeated scalars are not used by these messages.
      throw new WireError(wrongWireType(wireType, kind));
    }
    let valueStart = c.pos;
    if (wireType === WIRE_LEN) {
      valueStart = c.len(end);
      const rule = field < kinds.length ? (schema.contents[field] as number) : CONTENT_ANY;
      if (rule !== CONTENT_ANY) {
        const fault = contentFault(c, valueStart, c.pos, rule);
        if (fault !== '') throw new WireError(fault, rule === CONTENT_UTF8);
      }
    } else c.skip(wireType, end);
    if (seen !== undefined && field * 2 + 1 < seen.length) {
      seen[field * 2] = valueStart;
      seen[field * 2 + 1] = c.pos;
    }
  }
}

/** What is wrong with a string (CONTENT_UTF8) or an id (CONTENT_ID8, CONTENT_ID16) at [s, e); '' when nothing. */
function contentFault(c: WireCursor, s: number, e: number, rule: number): string {
  if (rule === CONTENT_UTF8) return c.isUtf8(s, e) ? '' : 'invalid UTF-8';
  return e - s === 0 || e - s === rule ? '' : `must be empty or ${rule} bytes, not ${e - s}`;
}

/**
 * checkMessage's fault with its path: call it on what checkMessage refused (the
 * walk that finds the path is only done then). Returns `err` when it finds none.
 */
export function locateFault(buf: Uint8Array, start: number, end: number, schema: MessageSchema, err: WireError, depth = 0): WireError {
  return locate(new WireCursor(buf), start, end, schema, depth) ?? err;
}

/**
 * A field's name in a path: its .proto name, with the occurrence's index for a
 * repeated field (counted from the message's start).
 */
function segment(buf: Uint8Array, start: number, at: number, schema: MessageSchema, field: number): string {
  const name = schema.names[field];
  if (name === undefined) return `field ${field}`;
  if (!name.endsWith('[]')) return name;
  let index = 0;
  const c = new WireCursor(buf, start);
  while (c.pos < at) {
    const tag = c.varint(at);
    if (tag >>> 3 === field) index++;
    c.skip(tag & 7, at);
  }
  return `${name.slice(0, -2)}[${index}]`;
}

/**
 * The first fault checkMessage finds in [start, end), its path naming the field: the
 * message walked again field by field, checkMessage run on each nested message to find
 * the one at fault. Only run once checkMessage failed, so it can take its time.
 */
function locate(c: WireCursor, start: number, end: number, schema: MessageSchema, depth: number): WireError | undefined {
  if (depth > 32) return new WireError(`${schema.name} nested deeper than 32`);
  const buf = c.buf;
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    c.pos = pos;
    let tag: number;
    try {
      tag = c.varint(end);
    } catch (err) {
      return err as WireError;
    }
    if (tag > 0xffffffff) return new WireError('field number above 2^29 - 1');
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) return new WireError('field number 0');
    const at = () => segment(buf, start, fieldStart, schema, field);
    const expected = schema.wireType(field);
    if (expected !== UNKNOWN && wireType !== expected) return new WireError(wrongWireType(wireType, expected)).within(at());
    if (wireType !== WIRE_LEN) {
      try {
        c.skip(wireType, end);
      } catch (err) {
        return (err as WireError).within(at());
      }
      pos = c.pos;
      continue;
    }
    let s: number;
    try {
      s = c.len(end);
    } catch (err) {
      return (err as WireError).within(at());
    }
    const e = c.pos;
    pos = e;
    const nested = field < schema.nested.length ? schema.nested[field] : undefined;
    if (nested !== undefined) {
      try {
        checkMessage(c, s, e, nested, depth + 1, undefined);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        return (locate(c, s, e, nested, depth + 1) ?? err).within(at());
      }
    } else if (field < schema.contents.length && schema.contents[field] !== CONTENT_ANY) {
      const rule = schema.contents[field] as number;
      const fault = contentFault(c, s, e, rule);
      if (fault !== '') return new WireError(fault, rule === CONTENT_UTF8).within(at());
    }
  }
  return undefined;
}
