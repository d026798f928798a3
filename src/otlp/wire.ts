/**
 * Protobuf wire-format framing, for reading and writing OTLP requests without
 * decoding them into objects: the receiver splits a request by trace id by moving
 * byte ranges, so every field it does not look at (including ones it does not know)
 * passes through unchanged.
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

/** A view of the buffer isUtf8Range last read, for reading it eight bytes at a time. */
let asciiBuf: Uint8Array | undefined;
const NO_VIEW = new DataView(new ArrayBuffer(0));
let asciiView: DataView = NO_VIEW;

/** Lets go of the buffer isUtf8Range last read (a whole request), once a walk of it is done. */
export function releaseUtf8View(): void {
  asciiBuf = undefined;
  asciiView = NO_VIEW;
}

/**
 * Whether buf[start, end) is valid UTF-8: ASCII checked here eight bytes at a
 * time (nearly every OTLP string is ASCII, and a call into Node per string costs
 * more than reading it), the rest, from the first byte that is not ASCII, by
 * Node's validator.
 */
export function isUtf8Range(buf: Uint8Array, start: number, end: number): boolean {
  if (buf !== asciiBuf) {
    asciiBuf = buf;
    asciiView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  const view = asciiView;
  let k = start;
  while (k + 8 <= end && ((view.getInt32(k) | view.getInt32(k + 4)) & 0x80808080) === 0) k += 8;
  if (k + 4 <= end && (view.getInt32(k) & 0x80808080) === 0) k += 4;
  while (k < end) {
    if ((buf[k] as number) >= 0x80) return isUtf8(buf.subarray(k, end));
    k++;
  }
  return true;
}

const WIRE_TYPE_NAMES = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32', '6', '7'];

/** The reason for a known field of the wrong wire type. */
export function wrongWireType(got: number, expected: number): string {
  return `wire type ${got} (${WIRE_TYPE_NAMES[got]}), expected ${expected} (${WIRE_TYPE_NAMES[expected]})`;
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

/** A proto3 `string`: length-delimited, and UTF-8 (a field kind of its own; on the wire it is WIRE_LEN). */
export const WIRE_STRING = 8;
/** An OTLP span id / trace id: length-delimited, empty or 8 / 16 bytes (what the Collector decodes). */
export const WIRE_ID8 = 9;
export const WIRE_ID16 = 10;

/** What a known field holds: a scalar wire type (or WIRE_STRING) or a nested message's schema. */
export type FieldKind = number | MessageSchema;
export interface MessageSchema {
  readonly name: string;
  readonly fields: Readonly<Record<number, FieldKind>>;
  /** Field names as in the .proto, for error messages; a repeated field's ends with `[]`. */
  readonly names: Readonly<Record<number, string>>;
}

/** A schema as checkMessage reads it: per field number, the wire type expected or a nested schema. */
interface CompiledSchema {
  readonly name: string;
  /** Per field number below its length: the wire type expected, NESTED, or UNKNOWN. */
  readonly kinds: Int8Array;
  /** Per field number below its length: 1 for a string field (UTF-8 checked), 8 or 16 for an id of that many bytes (or none). */
  readonly strings: Uint8Array;
  /** Per field number: the nested schema where kinds says NESTED. */
  readonly nested: (CompiledSchema | undefined)[];
  readonly names: Readonly<Record<number, string>>;
  /** A KeyValue's shape: field 1 a string, field 2 an AnyValue (1 a string and 7 bytes, 2 and 3 varints, 4 a fixed64). */
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
    strings: new Uint8Array(size),
    nested: new Array<CompiledSchema | undefined>(size).fill(undefined),
    names: schema.names,
    keyValue: false,
  };
  compiledSchemas.set(schema, compiled);
  for (const f of numbers) {
    const kind = schema.fields[f] as FieldKind;
    if (kind === WIRE_STRING || kind === WIRE_ID8 || kind === WIRE_ID16) {
      compiled.kinds[f] = WIRE_LEN;
      compiled.strings[f] = kind === WIRE_STRING ? 1 : kind === WIRE_ID8 ? 8 : 16;
    } else if (typeof kind === 'number') compiled.kinds[f] = kind;
    else {
      compiled.kinds[f] = NESTED;
      compiled.nested[f] = compileSchema(kind);
    }
  }
  const value = schema.fields[2];
  compiled.keyValue =
    schema.fields[1] === WIRE_STRING &&
    typeof value === 'object' &&
    value.fields[1] === WIRE_STRING &&
    value.fields[2] === WIRE_VARINT &&
    value.fields[3] === WIRE_VARINT &&
    value.fields[4] === WIRE_FIXED64 &&
    value.fields[7] === WIRE_LEN;
  return compiled;
}

/** For tests: checkMessage with and without the KeyValue fast path must agree. */
export const checkFastPaths = { keyValue: true };

/**
 * Whether [s, e) is a KeyValue of the commonest shape, well-formed: a short UTF-8 key
 * and a short AnyValue of one scalar field (string, bool, int, double, bytes), each tag
 * and length one byte. Checked in place, without the field loop; false for anything else
 * (which the field loop then checks, or rejects with its own message and path).
 */
function simpleKeyValue(buf: Uint8Array, s: number, e: number): boolean {
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
  return isUtf8Range(buf, s + 2, textEnd);
}

let lastSchema: MessageSchema | undefined;
let lastCompiled: CompiledSchema | undefined;

/**
 * Checks that bytes [start, end) are a message of the schema as a conformant
 * protobuf decoder reads it: every tag and length consistent, no field number 0,
 * known fields of the right wire type, string fields UTF-8, nesting bounded.
 * Unknown fields are skipped (they pass through unchanged). Throws WireError
 * (locateFault then names the field at fault). `seen`: where each scalar field of the message
 * itself was (the last occurrence): seen[2f] and seen[2f + 1] bound field f's
 * content (a fixed64's 8 bytes, a string's bytes), for fields below
 * seen.length / 2; untouched for absent fields.
 */
export function checkMessage(buf: Uint8Array, start: number, end: number, schema: MessageSchema, depth = 0, seen?: Int32Array): void {
  if (schema !== lastSchema) {
    lastCompiled = compileSchema(schema);
    lastSchema = schema;
  }
  check(buf, start, end, lastCompiled as CompiledSchema, depth, seen);
}

/**
 * checkMessage's fault with its path: call it on what checkMessage refused (the
 * walk that finds the path is only done then). Returns `err` when it finds none.
 */
export function locateFault(buf: Uint8Array, start: number, end: number, schema: MessageSchema, err: WireError, depth = 0): WireError {
  return locate(buf, start, end, compileSchema(schema), depth) ?? err;
}

/**
 * A field's name in a path: its .proto name, with the occurrence's index for a
 * repeated field (counted from the message's start).
 */
function segment(buf: Uint8Array, start: number, at: number, schema: CompiledSchema, field: number): string {
  const name = schema.names[field];
  if (name === undefined) return `field ${field}`;
  if (!name.endsWith('[]')) return name;
  let index = 0;
  const reader = new WireReader(buf, start, at);
  while (!reader.done()) {
    const tag = reader.varint();
    if (tag >>> 3 === field) index++;
    reader.skip(tag & 7);
  }
  return `${name.slice(0, -2)}[${index}]`;
}

/**
 * The first fault check finds in [start, end), its path naming the field: the
 * message walked again field by field, check run on each nested message to find
 * the one at fault. Only run once check failed, so it can take its time.
 */
function locate(buf: Uint8Array, start: number, end: number, schema: CompiledSchema, depth: number): WireError | undefined {
  if (depth > 32) return new WireError(`${schema.name} nested deeper than 32`);
  const reader = new WireReader(buf, start, end);
  while (!reader.done()) {
    const fieldStart = reader.pos;
    let tag: number;
    try {
      tag = reader.varint();
    } catch (err) {
      return err as WireError;
    }
    if (tag > 0xffffffff) return new WireError('field number above 2^29 - 1');
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) return new WireError('field number 0');
    const at = () => segment(buf, start, fieldStart, schema, field);
    const kind = field < schema.kinds.length ? (schema.kinds[field] as number) : UNKNOWN;
    const expected = kind === NESTED ? WIRE_LEN : kind;
    if (expected !== UNKNOWN && wireType !== expected) return new WireError(wrongWireType(wireType, expected)).within(at());
    if (wireType !== WIRE_LEN) {
      try {
        reader.skip(wireType);
      } catch (err) {
        return (err as WireError).within(at());
      }
      continue;
    }
    let s: number;
    let e: number;
    try {
      [s, e] = reader.lenRange();
    } catch (err) {
      return (err as WireError).within(at());
    }
    if (kind === NESTED) {
      const nested = schema.nested[field] as CompiledSchema;
      try {
        check(buf, s, e, nested, depth + 1, undefined);
      } catch (err) {
        if (!(err instanceof WireError)) throw err;
        return (locate(buf, s, e, nested, depth + 1) ?? err).within(at());
      }
    } else if (field < schema.strings.length && schema.strings[field] !== 0) {
      const fault = lengthFault(buf, s, e, schema.strings[field] as number);
      if (fault !== '') return new WireError(fault, fault === 'invalid UTF-8').within(at());
    }
  }
  return undefined;
}

/** What is wrong with a string (rule 1) or an id (rule 8, 16) at [s, e); '' when nothing. */
function lengthFault(buf: Uint8Array, s: number, e: number, rule: number): string {
  if (rule === 1) return isUtf8Range(buf, s, e) ? '' : 'invalid UTF-8';
  return e - s === 0 || e - s === rule ? '' : `must be empty or ${rule} bytes, not ${e - s}`;
}

function check(buf: Uint8Array, start: number, end: number, schema: CompiledSchema, depth: number, seen: Int32Array | undefined): void {
  // A module-level cursor, no reader objects and dense per-field tables: this walks
  // every attribute of every received span (a quarter of the receiver's time).
  // A fault throws a WireError without a path (locate finds it).
  if (depth > 32) throw new WireError(`${schema.name} nested deeper than 32`);
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
      if (tag > 0xffffffff) throw new WireError('field number above 2^29 - 1');
    }
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === 0) throw new WireError('field number 0');
    const kind = field < kinds.length ? (kinds[field] as number) : UNKNOWN;
    if (kind === NESTED) {
      if (wireType !== WIRE_LEN) throw new WireError(wrongWireType(wireType, WIRE_LEN));
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
      throw new WireError(wrongWireType(wireType, kind));
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
        if (field < kinds.length && schema.strings[field] !== 0) {
          const rule = schema.strings[field] as number;
          if (rule === 1 ? !isUtf8Range(buf, checkPos, checkPos + n) : n !== 0 && n !== rule) throw new WireError(lengthFault(buf, checkPos, checkPos + n, rule));
        }
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
