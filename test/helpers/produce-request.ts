// Encodes one kafkajs produce request (v3: record batches of varint records with
// headers and a CRC) holding records of many sizes, framed as kafkajs sends it
// (size, header, body); resolves with its bytes.
// Loaded in a process where kafkajs is patched (src/transport/kafkajs.ts) and in
// one where it is not, to compare the two (test/transport/kafkajs-pooled-encoders.test.ts).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface ProduceRequest {
  encode(): Promise<{ buffer: Buffer }>;
}

export async function encodeProduceRequest(): Promise<Buffer> {
  const request = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: Record<string, unknown>) => ProduceRequest;
  const messages = [];
  for (let i = 0; i < 200; i++) {
    messages.push({
      key: `k${i}`,
      value: Buffer.alloc((i * 977) % 9000, i % 251),
      timestamp: String(1700000000000 + i),
      headers: i % 3 ? { h: `v${i}` } : {},
    });
  }
  // As violations are written (string key and value, no headers), and the edges of
  // the direct record encoder (src/transport/kafkajs.ts): multibyte strings, null and
  // Buffer keys, null values, deltas past 32 bits, headers undefined.
  for (let i = 0; i < 300; i++) {
    messages.push({
      key: i % 7 === 0 ? null : i % 5 === 0 ? Buffer.from(`b${i}`) : `violation-${i}-ü€`,
      value: i % 11 === 0 ? null : JSON.stringify({ i, message: 'é'.repeat(i % 90), pad: 'x'.repeat((i * 131) % 20_000) }),
      timestamp: String(1700000000000 + (i % 13 === 0 ? 3_000_000_000 : i * 1000)),
      ...(i % 2 ? { headers: {} } : {}),
    });
  }
  const topicData = [{ topic: 'spans', partitions: [{ partition: 0, firstSequence: 0, messages }] }];
  const frame = require('kafkajs/src/protocol/request.js') as (args: Record<string, unknown>) => Promise<{ buffer: Buffer }>;
  const framed = await frame({ correlationId: 7, clientId: 'betrace-test', request: request({ acks: -1, timeout: 1000, compression: 0, topicData }) });
  return framed.buffer;
}
