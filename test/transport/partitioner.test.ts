import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fnv1a32, murmur2, murmur2Partition, saramaPartition } from '../../src/transport/partitioner.ts';

const require = createRequire(import.meta.url);

describe('partitioners', () => {
  it('fnv1a32 matches the published FNV-1a test vectors', () => {
    assert.equal(fnv1a32(Buffer.from('')), 0x811c9dc5);
    assert.equal(fnv1a32(Buffer.from('a')), 0xe40c292c);
    assert.equal(fnv1a32(Buffer.from('foobar')), 0xbf9cf968);
  });

  it('sarama partition is |int32(fnv1a)| mod n, as Sarama and franz-go compute it', () => {
    for (const key of ['0af7651916cd43dd8448eb211c80319c', 'ffffffffffffffffffffffffffffffff', '00000000000000000000000000000001']) {
      const h = fnv1a32(Buffer.from(key)) | 0;
      const expected = Math.abs(h % 6);
      assert.equal(saramaPartition(key, 6), expected);
    }
  });

  it('murmur2 matches the Java client as kafkajs implements it', () => {
    const kafkaMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: string | Buffer) => number;
    for (let i = 0; i < 200; i++) {
      const key = Buffer.from(`${i.toString(16).padStart(32, '0')}${'x'.repeat(i % 7)}`).toString();
      assert.equal(murmur2(Buffer.from(key)), kafkaMurmur2(key), key);
      assert.equal(murmur2Partition(key, 12), (kafkaMurmur2(key) & 0x7fffffff) % 12);
    }
  });

  it('spreads trace ids over every partition', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(saramaPartition(i.toString(16).padStart(32, '0'), 8));
    assert.equal(seen.size, 8);
  });
});
