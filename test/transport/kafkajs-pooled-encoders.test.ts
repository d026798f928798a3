/**
 * kafkajs encodes requests into unzeroed buffers from Node's pool
 * (src/transport/kafkajs.ts): byte for byte the requests kafkajs encodes on its
 * own (checked against a process that loads kafkajs untouched), without a new
 * ArrayBuffer for each small encoder.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { pooledEncoders } from '../../src/transport/kafkajs.ts';
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
  assert.ok(ours.length > 800_000, `the request holds about 900 kB (${ours.length})`);
  assert.equal(ours.toString('hex'), plain);
});
