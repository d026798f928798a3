/**
 * How the OTLP/gRPC sender classifies what a real gRPC downstream answers, per the
 * OTLP specification: retryable only for CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED with RetryInfo (whose
 * delay is honoured); every other status is not retryable, and refusals that may
 * concern the payload are told apart from those that refuse every request alike.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createOtlpGrpcSender, type PayloadSender } from '../../src/exporter/otlp-grpc-sender.ts';
import { TRACE_SERVICE_DEFINITION } from '../../src/otlp/index.ts';
import { statusProtobuf } from '../../src/receiver/status.ts';

interface Answer {
  readonly code: grpc.status;
  readonly details: string;
  readonly retryAfterMs?: number;
}

describe('the OTLP/gRPC sender', () => {
  let server: grpc.Server;
  let sender: PayloadSender;
  let answer: Answer = { code: grpc.status.OK, details: '' };

  before(async () => {
    server = new grpc.Server();
    server.addService(TRACE_SERVICE_DEFINITION, {
      Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        if (answer.code === grpc.status.OK) return cb(null, Buffer.alloc(0));
        const metadata = new grpc.Metadata();
        if (answer.retryAfterMs !== undefined) {
          metadata.set('grpc-status-details-bin', Buffer.from(statusProtobuf(answer.code, answer.details, answer.retryAfterMs)));
        }
        cb({ code: answer.code, details: answer.details, metadata }, null);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    sender = createOtlpGrpcSender({
      endpoint: `http://127.0.0.1:${port}`,
      headers: {},
      timeoutMs: 5000,
      compression: 'none',
      maxQueueSpans: 1000,
      maxBatchSpans: 100,
      batchTimeoutMs: 10,
      maxRetryTimeMs: 1000,
    });
  });

  after(async () => {
    await sender.shutdown();
    server.forceShutdown();
  });

  const send = async (a: Answer) => {
    answer = a;
    return sender.send(new Uint8Array(0), 1);
  };

  it('retries what the specification says is retryable', async () => {
    for (const code of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.ABORTED, grpc.status.OUT_OF_RANGE, grpc.status.DATA_LOSS, grpc.status.CANCELLED]) {
      const r = await send({ code, details: 'transient' });
      assert.equal(r.status, 'retryable', grpc.status[code]);
      assert.equal(r.status === 'retryable' && r.code, grpc.status[code]);
    }
  });

  it('retries RESOURCE_EXHAUSTED only with RetryInfo, after its delay', async () => {
    assert.deepEqual(await send({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'message too large' }), {
      status: 'failure',
      code: 'RESOURCE_EXHAUSTED',
      error: 'message too large',
      payloadSpecific: true,
    });
    assert.deepEqual(await send({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'throttled', retryAfterMs: 1500 }), {
      status: 'retryable',
      code: 'RESOURCE_EXHAUSTED',
      error: 'throttled',
      retryAfterMs: 1500,
    });
    const unavailable = await send({ code: grpc.status.UNAVAILABLE, details: 'busy', retryAfterMs: 250 });
    assert.equal(unavailable.status === 'retryable' && unavailable.retryAfterMs, 250);
  });

  it('does not retry a refusal, and tells payload refusals from refusals of every request', async () => {
    for (const code of [grpc.status.INVALID_ARGUMENT, grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.FAILED_PRECONDITION]) {
      const r = await send({ code, details: 'proto: illegal field=0' });
      assert.deepEqual(r, { status: 'failure', code: grpc.status[code], error: 'proto: illegal field=0', payloadSpecific: true });
    }
    for (const code of [grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.UNIMPLEMENTED, grpc.status.NOT_FOUND]) {
      const r = await send({ code, details: 'go away' });
      assert.deepEqual(r, { status: 'failure', code: grpc.status[code], error: 'go away', payloadSpecific: false });
    }
  });

  it('retries when downstream cannot be reached', async () => {
    const gone = createOtlpGrpcSender({
      endpoint: 'http://127.0.0.1:1',
      headers: {},
      timeoutMs: 2000,
      compression: 'none',
      maxQueueSpans: 1000,
      maxBatchSpans: 100,
      batchTimeoutMs: 10,
      maxRetryTimeMs: 1000,
    });
    try {
      const r = await gone.send(new Uint8Array(0), 1);
      assert.equal(r.status, 'retryable');
      assert.equal(r.status === 'retryable' && r.code, 'UNAVAILABLE');
    } finally {
      await gone.shutdown();
    }
  });
});
