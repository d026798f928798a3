/**
 * kafkajs encodes requests into unzeroed buffers from Node's pool
 * (src/transport/kafkajs.ts): byte for byte the requests kafkajs encodes on its
 * own (checked against a process that loads kafkajs untouched), without a new
 * ArrayBuffer for each small encoder, and large nested encoders kept by
 * reference until the bytes are read.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { directRecords, NESTED_BY_REFERENCE_BYTES, pooledEncoders } from '../../src/transport/kafkajs.ts';
import { encodeProduceRequest } from '../helpers/produce-request.ts';

const require = createRequire(import.meta.url);
const helper = new URL('../helpers/produce-request.ts', import.meta.url).href;

test('kafkajs encodes requests into pooled buffers, byte for byte as it does on its own', async () => {
  assert.equal(pooledEncoders, true, 'the pooled encoders were not installed (kafkajs loaded first)');
  const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => { buf: Buffer; writeInt32(v: number): unknown };
  const small = new Encoder();
  small.writeInt32(7);
  assert.ok(small.buf.buffer.byteLength > small.buf.length, 'a small encoder is a slice of a shared pool, not an ArrayBuffer of its own');

  const ours = await encodeProduceRequest();
  const script = `const { encodeProduceRequest } = await import(${JSON.stringify(helper)}); process.stdout.write((await encodeProduceRequest()).toString('hex'));`;
  const plain = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(directRecords, true, "the direct record encoder was not installed (kafkajs loaded first)");
  assert.ok(ours.length > 3_000_000, `the request holds about 3.7 MB (${ours.length})`);
  assert.equal(ours.toString('hex'), plain);
});

test('kafkajs keeps large nested encoders by reference and joins the bytes once, when they are read', () => {
  interface Enc {
    buf: Buffer;
    parts: Buffer[] | undefined;
    readonly buffer: Buffer;
    size(): number;
    writeInt8(v: number): Enc;
    writeInt32(v: number): Enc;
    writeBuffer(b: Buffer): Enc;
    writeEncoder(e: Enc): Enc;
    writeEncoderArray(es: Enc[]): Enc;
  }
  const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => Enc;
  const big = new Encoder().writeBuffer(Buffer.alloc(NESTED_BY_REFERENCE_BYTES, 0xab));
  const small = new Encoder().writeInt32(0x01020304);
  const inner = new Encoder().writeInt8(1).writeEncoder(big).writeInt8(2);
  assert.ok(inner.parts?.some((p) => p.buffer === big.buf.buffer), 'the large encoder is referenced, not copied');
  const outer = new Encoder().writeInt32(9).writeEncoderArray([small, inner, small]).writeEncoder(inner);
  const expected = Buffer.concat([
    Buffer.from([0, 0, 0, 9, 1, 2, 3, 4]),
    ...[0, 1].flatMap((i) => [Buffer.from([1]), Buffer.alloc(NESTED_BY_REFERENCE_BYTES, 0xab), Buffer.from(i === 0 ? [2, 1, 2, 3, 4] : [2])]),
  ]);
  assert.equal(outer.size(), expected.length);
  assert.deepEqual(outer.buffer, expected);
  assert.equal(outer.parts, undefined, 'joined once: the encoder holds the joined bytes');
  assert.equal(outer.buffer.buffer, outer.buf.buffer, 'read again without joining');
  outer.writeInt8(5);
  assert.deepEqual(outer.buffer, Buffer.concat([expected, Buffer.from([5])]));
  assert.throws(() => outer.writeEncoder({} as Enc), /instance of Encoder/);
});
