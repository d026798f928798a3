/**
 * Protobuf wire-format framing, for reading and writing OTLP requests without
 * decoding them into objects: the receiver splits a request by trace id by moving
 * byte ranges, so every field it does not look at (including ones it does not know)
 * passes through unchanged.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

/** A malformed message: the receiver answers INVALID_ARGUMENT. */
export class WireError extends Error {
  override name = 'WireError';
}

/** Sequential reader over one message's bytes. */
export class WireReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint of at most 64 bits, as a number (exact below 2^53; callers use it for tags and lengths). */
  varint(): number {
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * shift;
      if (b < 0x80) return result;
      shift *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** The content range of a length-delimited field, advancing past it. */
  lenRange(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new WireError('length-delimited field runs past the end of its message');
    this.pos = start + len;
    return [start, start + len];
  }

  fixed64BigInt(): bigint {
    if (this.end - this.pos < 8) throw new WireError('truncated fixed64');
    const view = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8);
    this.pos += 8;
    return view.getBigUint64(0, true);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lenRange();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw new WireError('truncated fixed-size field');
    this.pos += n;
  }
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

/** What a known field holds: a scalar wire type or a nested message's schema. */
export type FieldKind = number | MessageSchema;
export interface MessageSchema {
  readonly name: string;
  readonly fields: Readonly<Record<number, FieldKind>>;
}

/** A schema as checkMessage reads it: per field number, the wire type expected or a nested schema. */
interface CompiledSchema {
  readonly name: string;
  /** Per field number below its length: the wire type expected, NESTED, or UNKNOWN. */
  readonly kinds: Int8Array;
  /** Per field number: the nested schema where kinds says NESTED. */
  readonly nested: (CompiledSchema | undefined)[];
  /** A KeyValue's shape: field 1 bytes, field 2 an AnyValue (1 and 7 bytes, 2 and 3 varints, 4 a fixed64). */
  keyValue: boolean;
}

const UNKNOWN = -1;
const NESTED = -2;

const compiledSchemas = new WeakMap<MessageSchema, CompiledSchema>();

/** Dense per-field tables (schemas refer to each other in cycles: AnyValue holds an ArrayValue of AnyValues). */
function compileSchema(schema: MessageSchema): CompiledSchema {
  const known = compiledSchemas.get(schema);
  if (known !== undefined) return known;
  const numbers = Object.keys(schema.fields).map(Number);
  const size = numbers.length === 0 ? 0 : Math.max(...numbers) + 1;
  const compiled: CompiledSchema = {
    name: schema.name,
    kinds: new Int8Array(size).fill(UNKNOWN),
    nested: new Array<CompiledSchema | undefined>(size).fill(undefined),
    keyValue: false,
  };
  compiledSchemas.set(schema, compiled);
  for (const f of numbers) {
    const kind = schema.fields[f] as FieldKind;
    if (typeof kind === 'number') compiled.kinds[f] = kind;
    else {
      compiled.kinds[f] = NESTED;
      compiled.nested[f] = compileSchema(kind);
    }
  }
  const value = schema.fields[2];
  compiled.keyValue =
    schema.fields[1] === WIRE_LEN &&
    typeof value === 'object' &&
    value.fields[1] === WIRE_LEN &&
    value.fields[2] === WIRE_VARINT &&
    value.fields[3] === WIRE_VARINT &&
    value.fields[4] === WIRE_FIXED64 &&
    value.fields[7] === WIRE_LEN;
  return compiled;
}

/** For tests: checkMessage with and without the KeyValue fast path must agree. */
export const checkFastPaths = { keyValue: true };

/**
 * Whether [s, e) is a KeyValue of the commonest shape, well-formed: a short key and a
 * short AnyValue of one scalar field (string, bool, int, double, bytes), each tag and
 * length one byte. Checked in place, without the field loop; false for anything else
 * (which the field loop then checks, or rejects with its own message).
 */
function simpleKeyValue(buf: Uint8Array, s: number, e: number): boolean {
  if (e - s < 4 || buf[s] !== ((1 << 3) | WIRE_LEN)) return false;
  const keyLength = buf[s + 1] as number;
  if (keyLength >= 0x80) return false;
  let p = s + 2 + keyLength;
  if (p + 2 > e || buf[p] !== ((2 << 3) | WIRE_LEN)) return false;
  const n = buf[p + 1] as number;
  if (n >= 0x80 || p + 2 + n !== e) return false;
  p += 2;
  if (n === 0) return true;
  switch (buf[p]) {
    case (1 << 3) | WIRE_LEN:
    case (7 << 3) | WIRE_LEN:
      return n >= 2 && (buf[p + 1] as number) + 2 === n;
    case (2 << 3) | WIRE_VARINT:
    case (3 << 3) | WIRE_VARINT: {
      // One varint filling the value: continuation bits on all but its last byte, at most 10 bytes.
      if (n < 2 || n > 11) return false;
      for (let k = 1; k < n - 1; k++) if ((buf[p + k] as number) < 0x80) return false;
      return (buf[p + n - 1] as number) < 0x80;
    }
    case (4 << 3) | WIRE_FIXED64:
      return n === 9;
    default:
      return false;
  }
}

let lastSchema: MessageSchema | undefined;
let lastCompiled: CompiledSchema | undefined;

/**
 * Checks that bytes [start, end) are a well-formed message of the schema: every
 * tag and length consistent, known fields of the right wire type, nesting bounded.
 * Unknown fields are skipped (they pass through unchanged). `seen`: where each
 * scalar field of the message itself was (the last occurrence): seen[2f] and
 * seen[2f + 1] bound field f's content (a fixed64's 8 bytes, a string's bytes),
 * for fields below seen.length / 2; untouched for absent fields.
 */
export function checkMessage(buf: Uint8Array, start: number, end: number, schema: MessageSchema, depth = 0, seen?: Int32Array): void {
  if (schema !== lastSchema) {
    lastCompiled = compileSchema(schema);
    lastSchema = schema;
  }
  check(buf, start, end, lastCompiled as CompiledSchema, depth, seen);
}

function check(buf: Uint8Array, start: number, end: number, schema: CompiledSchema, depth: number, seen: Int32Array | undefined): void {
  // A module-level cursor, no reader objects and dense per-field tables: this walks
  // every attribute of every received span (a quarter of the receiver's time).
  if (depth > 32) throw new WireError(`${schema.name}: nesting deeper than 32`);
  const kinds = schema.kinds;
  checkPos = start;
  while (checkPos < end) {
    const first = buf[checkPos] as number;
    let tag: number;
    if (first < 0x80) {
      tag = first;
      checkPos++;
    } else {
      tag = checkVarint(buf, end);
      // Field numbers end at 2^29 - 1: larger tags are not protobuf.
      if (tag > 0xffffffff) throw new WireError(`${schema.name}: field number above 2^29 - 1`);
    }
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new WireError(`${schema.name}: field number 0`);
    const kind = field < kinds.length ? (kinds[field] as number) : UNKNOWN;
    if (kind === NESTED) {
      if (wireType !== WIRE_LEN) throw new WireError(`${schema.name}: field ${field} is not length-delimited`);
      const n = checkVarint(buf, end);
      const s = checkPos;
      if (n > end - s) throw new WireError('length-delimited field runs past the end of its message');
      const nested = schema.nested[field] as CompiledSchema;
      // Attributes are most of a span: the common ones without two nested field loops.
      if (!(nested.keyValue && depth + 2 <= 32 && checkFastPaths.keyValue && simpleKeyValue(buf, s, s + n))) check(buf, s, s + n, nested, depth + 1, undefined);
      checkPos = s + n;
      continue;
    }
    if (kind !== UNKNOWN && wireType !== kind) {
      // Packed repeated scalars are not used by these messages.
      throw new WireError(`${schema.name}: field ${field} has wire type ${wireType}, expected ${kind}`);
    }
    const valueStart = checkPos;
    switch (wireType) {
      case WIRE_VARINT:
        checkVarint(buf, end);
        break;
      case WIRE_FIXED64:
        if (end - checkPos < 8) throw new WireError('truncated fixed-size field');
        checkPos += 8;
        break;
      case WIRE_LEN: {
        const n = checkVarint(buf, end);
        if (n > end - checkPos) throw new WireError('length-delimited field runs past the end of its message');
        if (seen !== undefined && field * 2 + 1 < seen.length) {
          seen[field * 2] = checkPos;
          seen[field * 2 + 1] = checkPos + n;
        }
        checkPos += n;
        break;
      }
      case WIRE_FIXED32:
        if (end - checkPos < 4) throw new WireError('truncated fixed-size field');
        checkPos += 4;
        break;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
    if (seen !== undefined && wireType !== WIRE_LEN && field * 2 + 1 < seen.length) {
      seen[field * 2] = valueStart;
      seen[field * 2 + 1] = checkPos;
    }
  }
}

let checkPos = 0;

function checkVarint(buf: Uint8Array, end: number): number {
  if (checkPos < end && (buf[checkPos] as number) < 0x80) return buf[checkPos++] as number;
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (checkPos >= end) throw new WireError('truncated varint');
    const b = buf[checkPos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError('varint longer than 10 bytes');
}
