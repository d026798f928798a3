import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { compileFunction } from 'node:vm';
import type { Message } from 'kafkajs';
import { prng } from '../helpers/prng.ts';
import { groupMessagesPerPartition, linearGrouping } from '../../src/transport/kafkajs.ts';

const require = createRequire(import.meta.url);

test("kafkajs's producers group messages by partition in linear time, as kafkajs's own grouping does", () => {
  assert.equal(linearGrouping, true, 'the grouping was not installed (kafkajs loaded first)');
  const file = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  assert.equal(require(file), groupMessagesPerPartition, 'kafkajs loads ours');
  // kafkajs's own module, evaluated from its file (the module cache holds ours).
  const module = { exports: undefined as unknown };
  compileFunction(readFileSync(file, 'utf8'), ['module', 'exports'])(module, module.exports);
  const kafkajsOwn = module.exports as typeof groupMessagesPerPartition;
  const rnd = prng(9);
  const partitioner = ({ message }: { message: Message }) => Number(message.key) % 7;
  for (const count of [0, 1, 2, 50, 2000]) {
    const messages = Array.from({ length: count }, (_, i) => ({ key: String(Math.floor(rnd() * 1000)), value: `v${i}` }));
    const args = { topic: 't', partitionMetadata: Array.from({ length: 7 }, (_, i) => ({ partitionId: i })), messages, partitioner };
    assert.deepEqual(groupMessagesPerPartition(args), kafkajsOwn(args), `${count} messages`);
  }
  const none = { topic: 't', partitionMetadata: [], messages: [{ key: '1', value: 'v' }], partitioner };
  assert.deepEqual(groupMessagesPerPartition(none), {});
  assert.deepEqual(kafkajsOwn(none), {});
});
