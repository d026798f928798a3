import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { prng } from '../helpers/prng.ts';
import { nativeCrc32c } from '../../src/transport/kafkajs.ts';

const require = createRequire(import.meta.url);

test('kafkajs checksums record batches with the native CRC-32C, equal to its own', () => {
  assert.equal(nativeCrc32c, true, 'the native CRC-32C was not installed (no @node-rs/crc32 build, or kafkajs loaded first)');
  const inUse = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
  const kafkajsOwn = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;
  const rnd = prng(5);
  for (const size of [0, 1, 7, 64, 1000, 65_537]) {
    const b = Buffer.alloc(size);
    for (let i = 0; i < size; i++) b[i] = Math.floor(rnd() * 256);
    assert.equal(inUse(b), kafkajsOwn(b) >>> 0, `${size} bytes`);
  }
  // The check value of CRC-32C (RFC 3720 B.4): "123456789" → 0xE3069283.
  assert.equal(inUse(Buffer.from('123456789')), 0xe3069283);
});
