/**
 * Fault (a): 1,000 malformed and 1,000 partly invalid OTLP payloads, over gRPC
 * and HTTP: exact codes and rejected counts, the process up, memory bounded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { randomBytes } from 'node:crypto';
import { ExportTraceServiceRequest, ExportTraceServiceResponse } from '../../src/otlp/index.ts';
import { prng } from '../helpers/prng.ts';
import { startTestPipeline, metricValue } from '../helpers/pipeline.ts';

function validSpan(i: number) {
  return {
    traceId: randomBytes(16),
    spanId: randomBytes(8),
    name: `op.${i % 7}`,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000000001000',
    attributes: [{ key: 'k', value: { stringValue: 'v'.repeat(i % 50) } }],
  };
}

function invalidSpan(i: number) {
  const kinds = [
    { traceId: Buffer.alloc(16), spanId: randomBytes(8) },
    { traceId: randomBytes(15), spanId: randomBytes(8) },
    { traceId: randomBytes(16), spanId: Buffer.alloc(8) },
    { traceId: randomBytes(16), spanId: randomBytes(9) },
    { spanId: randomBytes(8) },
  ];
  return { ...kinds[i % kinds.length], name: 'bad' };
}

function encode(spans: object[]): Buffer {
  return Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans }] }] })).finish());
}

/** Malformed: truncations, random bytes, flipped bytes and bad lengths of a valid request. */
function malformed(i: number, rnd: () => number): Buffer {
  const base = encode([validSpan(i), validSpan(i + 1)]);
  switch (i % 4) {
    case 0:
      return base.subarray(0, 1 + Math.floor(rnd() * (base.length - 2)));
    case 1: {
      const b = Buffer.from(base);
      b[1] = 0xff; // the first length runs past the end
      return b;
    }
    case 2:
      return Buffer.concat([Buffer.from([0x0a, 0x80, 0x80, 0x80, 0x80, 0x10]), randomBytes(8)]);
    default:
      return Buffer.concat([base, Buffer.from([0x0b])]); // wire type 3 (groups): not OTLP
  }
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap and external memory (array buffers included) held after a full collection. */
function heldAfterGc(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

describe('hostile payloads', () => {
  it('answers 1,000 malformed and 1,000 partly invalid payloads exactly, stays up with bounded memory', async () => {
    const betrace = await startTestPipeline({});
    const rnd = prng(5);
    try {
      const held0 = heldAfterGc();
      let badRequest = 0;
      for (let i = 0; i < 1000; i++) {
        const res = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body: malformed(i, rnd) });
        await res.arrayBuffer();
        if (res.status === 400) badRequest++;
      }
      assert.equal(badRequest, 1000, 'every malformed payload is 400');
      let rejected = 0;
      let expectedRejected = 0;
      for (let i = 0; i < 1000; i++) {
        const invalid = 1 + (i % 4);
        expectedRejected += invalid;
        const spans = [...Array.from({ length: 3 }, (_, k) => validSpan(i * 3 + k)), ...Array.from({ length: invalid }, (_, k) => invalidSpan(i + k))];
        const res = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body: encode(spans) });
        assert.equal(res.status, 200);
        const answer = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(new Uint8Array(await res.arrayBuffer())), { longs: Number }) as {
          partialSuccess: { rejectedSpans: number };
        };
        assert.equal(answer.partialSuccess.rejectedSpans, invalid);
        rejected += answer.partialSuccess.rejectedSpans;
      }
      assert.equal(rejected, expectedRejected);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_spans_rejected_total', { reason: 'invalid_id' }), expectedRejected);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_spans_accepted_total'), 3000);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_requests_total', { code: '400' }), 1000);
      assert.equal((await fetch(`${betrace.apiUrl}/health`)).status, 200);
      // What the process holds after a full collection: RSS also counts garbage not yet
      // collected, which moves with the collector's timing, not with what betrace keeps.
      const grown = heldAfterGc() - held0;
      assert.ok(grown < 200 * 1024 * 1024, `memory bounded (heap and external after a full GC grew ${Math.round(grown / 1e6)} MB)`);
    } finally {
      await betrace.stop();
    }
  });
});
