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
import { FetchFrames, FetchFrameTracker, FrameAssembler, SHARED_FRAME_BYTES } from '../../src/transport/kafka-socket.ts';
import { createKafkaClient, withAdmin } from '../../src/transport/kafka.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { prng } from '../helpers/prng.ts';

function frame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** A request's first 12 bytes as kafkajs writes them: size, api key, version, correlation id. */
function request(apiKey: number, correlationId: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeInt32BE(36, 0);
  b.writeInt16BE(apiKey, 4);
  b.writeInt16BE(11, 6);
  b.writeInt32BE(correlationId, 8);
  return b;
}

/** A response frame of `total` bytes from `frames`, answering `correlationId`. */
function response(frames: FetchFrames, total: number, correlationId: number): Buffer {
  const f = frames.take(total);
  f.writeInt32BE(total - 4, 0);
  f.writeInt32BE(correlationId, 4);
  return f;
}

/** A fresh 2-partition topic holding `count` random 5000-byte values (key: their index), and a client. */
async function topicOfValues(name: string, count: number, reuseFetchFrames = false): Promise<{ kafka: ReturnType<typeof createKafkaClient>; topic: string; values: Buffer[] }> {
  const { brokers } = await getTestKafka();
  const topic = uniqueName(name);
  const config = parseConfig(stringify({ transport: { kind: 'kafka', kafka: { brokers } } }), { source: 'test', env: {} }).transport.kafka;
  const kafka = createKafkaClient(config, createLogger('error'), '', reuseFetchFrames);
  await withAdmin(kafka, (admin) => admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true }));
  const values = Array.from({ length: count }, () => randomBytes(5000));
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < values.length; i += 100) {
    await producer.send({ topic, acks: -1, messages: values.slice(i, i + 100).map((value, j) => ({ key: String(i + j), value })) });
  }
  await producer.disconnect();
  return { kafka, topic, values };
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

  it('answering a Fetch request are given back for use again only when the next Fetch request is written', () => {
    const frames = new FetchFrames(2);
    const tracker = new FetchFrameTracker(frames);
    tracker.written(request(1, 7)); // Fetch
    tracker.written(request(12, 8)); // Heartbeat
    const fetched = response(frames, 300_000, 7);
    tracker.handedOver(fetched);
    const other = response(frames, 200_000, 8);
    tracker.handedOver(other);
    assert.equal(frames.free, 0, 'nothing given back before the next Fetch request');
    tracker.written(request(3, 9)); // Metadata: not a Fetch
    assert.equal(frames.free, 0);
    tracker.written(request(1, 10));
    assert.equal(frames.free, 1, 'the fetch response is given back; the heartbeat response never is');
    const again = response(frames, 250_000, 10);
    assert.equal(again.buffer, fetched.buffer, 'the next response lies where the last fetch response lay');
    assert.equal(again.length, 250_000);
    assert.notEqual(response(frames, 100_000, 11).buffer, fetched.buffer, 'a buffer is in one frame at a time');
    // A late answer to a Fetch request that was given up on is given back too; an unknown correlation id never.
    tracker.handedOver(response(frames, 100_000, 99));
    tracker.handedOver(again);
    tracker.written(request(1, 12));
    assert.equal(frames.free, 1);
  });

  it('given back keep the largest buffers, and a frame larger than any is fresh memory', () => {
    const frames = new FetchFrames(2);
    const sizes = [1, 3, 2].map((mib) => frames.take(mib * 1024 * 1024));
    for (const f of sizes) frames.give(f);
    assert.equal(frames.free, 2);
    const big = frames.take(2 * 1024 * 1024 + 1);
    assert.equal(big.buffer, sizes[1]!.buffer, 'the 3 MiB buffer was kept (the 1 MiB one dropped)');
    const small = frames.take(100_000);
    assert.equal(small.buffer, sizes[2]!.buffer);
    assert.ok(frames.take(5 * 1024 * 1024).buffer.byteLength >= 5 * 1024 * 1024);
  });

  it('from a real broker are decoded where they lie, none joined from chunks, large ones in shared memory', async () => {
    const { kafka, topic, values } = await topicOfValues('whole-responses', 600);

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

  it('from a real broker into memory used again reach a consumer that copies them intact, in fewer buffers than responses', async () => {
    assert.equal(process.env.BETRACE_POISON_REUSED_FRAMES, '1', 'frames given back are overwritten (test/helpers/test-env.ts)');
    const { kafka, topic, values } = await topicOfValues('reused-frames', 1200, true);

    // Small fetches (about 100 kB a partition): many responses, each a frame.
    const consumer = kafka.consumer({ groupId: uniqueName('reused-frames-group'), maxWaitTimeInMs: 100, maxBytesPerPartition: 100_000, maxBytes: 200_000 });
    const got = new Map<string, Buffer>();
    const buffers = new Set<ArrayBufferLike>();
    let batches = 0;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let done!: () => void;
      const all = new Promise<void>((resolve, reject) => {
        done = resolve;
        // Records damaged in a frame reused too early fail to decode: kafkajs retries them forever.
        setTimeout(() => reject(new Error(`${got.size} of ${values.length} records consumed in 60 s`)), 60_000).unref();
      });
      await consumer.run({
        partitionsConsumedConcurrently: 2,
        eachBatch: async ({ batch }) => {
          batches++;
          for (const m of batch.messages) {
            buffers.add(m.value!.buffer);
            got.set(m.key!.toString(), Buffer.from(m.value!)); // copied before the handler returns, as the worker does
          }
          // Awaiting in the handler: the next Fetch request waits for it, and then the frame may be reused.
          await new Promise((resolve) => setImmediate(resolve));
          if (got.size === values.length) done();
        },
      });
      await all;
    } finally {
      await consumer.disconnect();
    }
    assert.equal(got.size, values.length);
    for (const [key, value] of got) assert.deepEqual(value, values[Number(key)], `record ${key} intact`);
    assert.ok(batches >= 20, `${batches} batches`);
    assert.ok(buffers.size < batches / 2, `${batches} batches in ${buffers.size} buffers: fetch responses' memory was used again`);
  });
});
