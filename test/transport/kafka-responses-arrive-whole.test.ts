/**
 * Kafka responses reach kafkajs whole, in one buffer each, copied once from the
 * socket's read buffer (no response is joined from chunks into fresh memory),
 * and a large one in shared memory, which V8 does not count as external memory.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { FrameAssembler, SHARED_FRAME_BYTES } from '../../src/transport/kafka-socket.ts';
import { createKafkaClient, withAdmin } from '../../src/transport/kafka.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { prng } from '../helpers/prng.ts';

function frame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeInt32BE(body.length);
  return Buffer.concat([header, body]);
}

describe('Kafka responses', () => {
  it('are cut from the byte stream whole, however it is split into reads', () => {
    const rnd = prng(11);
    const bodies = [0, 1, 3, 4, 5, 1000, SHARED_FRAME_BYTES - 4, SHARED_FRAME_BYTES, 300_000].map((n) => randomBytes(n));
    const stream = Buffer.concat(bodies.map(frame));
    for (const maxRead of [1, 2, 3, 4, 5, 7, 4096, 65_536, stream.length]) {
      const got: Buffer[] = [];
      const assembler = new FrameAssembler((f) => got.push(f));
      const reused = Buffer.alloc(maxRead);
      for (let at = 0; at < stream.length; ) {
        const n = Math.min(stream.length - at, 1 + Math.floor(rnd() * maxRead));
        stream.copy(reused, 0, at, at + n);
        assembler.push(reused.subarray(0, n));
        reused.fill(0xee); // the reader reuses its buffer: nothing of it may be kept
        at += n;
      }
      assert.equal(got.length, bodies.length, `reads of up to ${maxRead} bytes`);
      got.forEach((f, i) => {
        assert.deepEqual(f, frame(bodies[i]!), `response ${i}, reads of up to ${maxRead} bytes`);
        assert.equal(f.buffer instanceof SharedArrayBuffer, f.length >= SHARED_FRAME_BYTES, `response ${i} of ${f.length} bytes: shared only if large`);
      });
    }
  });

  it('from a real broker are decoded where they lie, none joined from chunks, large ones in shared memory', async () => {
    const { brokers } = await getTestKafka();
    const topic = uniqueName('whole-responses');
    const config = parseConfig(stringify({ transport: { kind: 'kafka', kafka: { brokers } } }), { source: 'test', env: {} }).transport.kafka;
    const kafka = createKafkaClient(config, createLogger('error'));
    await withAdmin(kafka, (admin) => admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }));
    const values = Array.from({ length: 600 }, () => randomBytes(5000));
    const producer = kafka.producer();
    await producer.connect();
    for (let i = 0; i < values.length; i += 100) {
      await producer.send({ topic, acks: -1, messages: values.slice(i, i + 100).map((value, j) => ({ key: String(i + j), value })) });
    }
    await producer.disconnect();

    const joins: number[] = [];
    const saved = Object.getOwnPropertyDescriptor(Buffer, 'concat')!;
    const concat = Buffer.concat.bind(Buffer);
    Buffer.concat = (list: readonly Uint8Array[], length?: number) => {
      const joined = concat(list, length);
      joins.push(joined.length);
      return joined;
    };
    const consumer = kafka.consumer({ groupId: uniqueName('whole-responses-group'), maxWaitTimeInMs: 100 });
    const got = new Map<string, Buffer>();
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      await consumer.run({
        eachMessage: ({ message }) => {
          got.set(message.key!.toString(), message.value!);
          if (got.size === values.length) done();
          return Promise.resolve();
        },
      });
      await all;
    } finally {
      Object.defineProperty(Buffer, 'concat', saved);
      await consumer.disconnect();
    }
    assert.equal(got.size, values.length);
    for (const [key, value] of got) {
      assert.deepEqual(value, values[Number(key)], `record ${key}`);
      assert.ok(value.buffer instanceof SharedArrayBuffer, `record ${key} lies in a response in shared memory`);
    }
    // Each fetch response holds hundreds of kB of records: none of them was joined.
    assert.deepEqual(joins.filter((n) => n >= SHARED_FRAME_BYTES), [], 'no response joined from chunks');
  });
});
