import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnyValueSchema, KeyValueSchema, SpanSchema } from '../../src/otlp/otlp-schemas.ts';
import { WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, WireCursor, WireError, checkMessage, varintBytes } from '../../src/otlp/wire.ts';

const tag = (field: number, wire: number): Uint8Array => varintBytes(field * 8 + wire);
const len = (field: number, body: Uint8Array): Buffer => Buffer.concat([tag(field, WIRE_LEN), varintBytes(body.length), body]);
const check = (b: Uint8Array, schema = AnyValueSchema, seen?: Int32Array): void => checkMessage(new WireCursor(b), 0, b.length, schema, 0, seen);
const fails = (b: Uint8Array, message: RegExp, schema = AnyValueSchema): void => assert.throws(() => check(b, schema), (e: unknown) => e instanceof WireError && message.test(e.message));

test('checkMessage walks nested messages, cycles included (AnyValue → ArrayValue → AnyValue)', () => {
  const inner = len(1, Buffer.from('deep'));
  let value: Buffer = inner;
  for (let i = 0; i < 10; i++) value = len(5, len(1, value)); // array_value { values: AnyValue }
  check(value);
  const kv = Buffer.concat([len(1, Buffer.from('k')), len(2, len(6, len(1, Buffer.concat([len(1, Buffer.from('n')), len(2, inner)]))))]);
  check(kv, KeyValueSchema);
  // A nested field's wrong wire type is found however deep it lies.
  const bad = len(5, len(1, len(5, len(1, Buffer.concat([tag(2, WIRE_FIXED64), Buffer.alloc(8)])))));
  fails(bad, /^wire type 1 \(fixed64\), expected 0 \(varint\)$/);
});

test('checkMessage: multi-byte tags, unknown fields skipped, bad tags refused', () => {
  // Field 100 (a two-byte tag), unknown to AnyValue: skipped whatever its wire type.
  check(Buffer.concat([tag(100, WIRE_VARINT), varintBytes(300), len(101, Buffer.from('x')), tag(102, WIRE_FIXED64), Buffer.alloc(8), len(1, Buffer.from('s'))]));
  fails(Buffer.from([0x00, 0x01]), /field number 0/);
  fails(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00]), /field number above 2\^29 - 1/);
  fails(Buffer.from([0x80, 0x80]), /truncated varint/);
  fails(Buffer.concat([tag(5, WIRE_VARINT), Buffer.from([1])]), /wire type 0 \(varint\), expected 2 \(length-delimited\)/);
  fails(Buffer.concat([tag(1, WIRE_LEN), Buffer.from([5, 0x61])]), /runs past the end/);
  fails(Buffer.from([(10 << 3) | 3]), /unsupported wire type 3/); // an unknown field of wire type 3 (groups)
  let deep: Buffer = len(1, Buffer.from('x'));
  for (let i = 0; i < 20; i++) deep = len(5, len(1, deep));
  fails(deep, /nested deeper than 32/);
});

test('checkMessage reports where the scalar fields of the message itself lie', () => {
  const name = Buffer.from('GET /');
  const span = Buffer.concat([len(1, Buffer.alloc(16, 1)), len(5, name), tag(7, WIRE_FIXED64), Buffer.alloc(8, 2), len(9, len(1, Buffer.from('k')))]);
  const seen = new Int32Array(32).fill(-1);
  check(span, SpanSchema, seen);
  assert.deepEqual([seen[2], seen[3]], [2, 18], 'trace id bytes');
  assert.deepEqual(Buffer.from(span.subarray(seen[10], seen[11])).toString(), 'GET /');
  assert.equal((seen[15] as number) - (seen[14] as number), 8, 'fixed64 content');
  assert.deepEqual([seen[18], seen[19]], [-1, -1], 'a nested message is not a scalar field');
});
