/**
 * Acceptance: malformed bodies, bodies over the size limit (also gzip that
 * inflates past it) and requests mixing valid spans with invalid ids get the
 * OTLP codes; the valid spans still arrive downstream; the process stays healthy.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RetryInfo, RpcStatus } from '../../src/otlp/index.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue, type TestPipeline } from '../helpers/pipeline.ts';

const MAX = 64 * 1024;

function span(traceHex: string, spanHex: string, name: string) {
  return {
    traceId: Buffer.from(traceHex, 'hex'),
    spanId: Buffer.from(spanHex, 'hex'),
    name,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
  };
}

function request(spans: ReturnType<typeof span>[]): Buffer {
  const msg = ExportTraceServiceRequest.fromObject({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-client' } }] }, scopeSpans: [{ scope: { name: 't' }, spans }] }],
  });
  return Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
}

const T1 = '0af7651916cd43dd8448eb211c80319c';
const T2 = '1af7651916cd43dd8448eb211c80319c';
const mixed = () =>
  request([
    span(T1, 'b7ad6b7169203331', 'good.one'),
    span('00000000000000000000000000000000', 'b7ad6b7169203332', 'zero.trace'),
    span('0af7651916cd43dd', 'b7ad6b7169203333', 'short.trace'),
    span(T2, '0000000000000000', 'zero.span'),
    span(T2, 'b7ad6b7169203335', 'good.two'),
  ]);

async function grpcExport(url: string, body: Buffer): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }> {
  const client = rawTraceClient(url);
  try {
    return await client.export(body);
  } finally {
    client.close();
  }
}

describe('answering bad requests', () => {
  let sink: OtlpSink;
  let betrace: TestPipeline;
  before(async () => {
    sink = await startOtlpSink();
    betrace = await startTestPipeline({
      receiver: { max_request_bytes: MAX },
      downstream: { endpoint: sink.url, batch_timeout: '10ms' },
    });
  });
  after(async () => {
    await betrace.stop();
    await sink.close();
  });

  it('gRPC: malformed protobuf is INVALID_ARGUMENT', async () => {
    const { err } = await grpcExport(betrace.grpcUrl, Buffer.from([0x0a, 0xff, 0x01, 0x02]));
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /malformed/);
  });

  it('gRPC: a request over the limit is RESOURCE_EXHAUSTED', async () => {
    const big = request([{ ...span(T1, 'c7ad6b7169203331', 'x'.repeat(MAX + 10)) }]);
    const { err } = await grpcExport(betrace.grpcUrl, big);
    assert.equal(err?.code, grpc.status.RESOURCE_EXHAUSTED);
  });

  it('gRPC: invalid ids are rejected in partial_success, valid spans go downstream', async () => {
    const { err, res } = await grpcExport(betrace.grpcUrl, mixed());
    assert.equal(err, null);
    const response = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res!), { longs: Number }) as {
      partialSuccess: { rejectedSpans: number; errorMessage: string };
    };
    assert.equal(response.partialSuccess.rejectedSpans, 3);
    assert.match(response.partialSuccess.errorMessage, /trace id must not be all zero/);
    assert.match(response.partialSuccess.errorMessage, /span id must not be all zero/);
    await sink.waitFor((s) => s.filter((x) => x.name.startsWith('good.')).length >= 2, 10_000, 'valid spans');
    assert.deepEqual(
      sink.spans.filter((x) => x.name.startsWith('good.')).map((x) => x.name).sort(),
      ['good.one', 'good.two'],
    );
    assert.equal(sink.spans.filter((x) => !x.name.startsWith('good.')).length, 0, 'no invalid span forwarded');
  });

  it('gRPC: an empty request succeeds', async () => {
    const { err } = await grpcExport(betrace.grpcUrl, Buffer.alloc(0));
    assert.equal(err, null);
  });

  it('HTTP: malformed protobuf and JSON are 400 with a google.rpc.Status body', async () => {
    const pb = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf' },
      body: new Uint8Array([0x0a, 0xff, 0x01]),
    });
    assert.equal(pb.status, 400);
    const status = RpcStatus.decode(new Uint8Array(await pb.arrayBuffer())) as unknown as { code: number; message: string };
    assert.equal(status.code, 3);
    const json = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"resourceSpans": [',
    });
    assert.equal(json.status, 400);
    const body = (await json.json()) as { code: number; message: string };
    assert.equal(body.code, 3);
    assert.match(body.message, /JSON/);
  });

  it('HTTP: over the limit is 413, plain and as gzip that inflates past it', async () => {
    const plain = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf' },
      body: new Uint8Array(MAX + 1),
    });
    assert.equal(plain.status, 413);
    const bomb = gzipSync(Buffer.alloc(MAX * 64));
    assert.ok(bomb.length < MAX, 'the compressed body itself is under the limit');
    const gz = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' },
      body: bomb,
    });
    assert.equal(gz.status, 413);
    assert.equal((RpcStatus.decode(new Uint8Array(await gz.arrayBuffer())) as unknown as { code: number }).code, 8);
  });

  it('HTTP: invalid ids in JSON are rejected in partialSuccess; gzip JSON accepted', async () => {
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'json-client' } }] },
          scopeSpans: [
            {
              spans: [
                { traceId: '2af7651916cd43dd8448eb211c80319c', spanId: 'a7ad6b7169203331', name: 'json.good', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001' },
                { traceId: 'not-hex', spanId: 'a7ad6b7169203332', name: 'json.bad' },
              ],
            },
          ],
        },
      ],
    };
    const res = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: gzipSync(JSON.stringify(body)),
    });
    assert.equal(res.status, 200);
    const answer = (await res.json()) as { partialSuccess: { rejectedSpans: number } };
    assert.equal(answer.partialSuccess.rejectedSpans, 1);
    await sink.waitFor((s) => s.some((x) => x.name === 'json.good'), 10_000, 'json.good');
  });

  it('HTTP: unsupported content type or encoding is 415; wrong path 404', async () => {
    const ct = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' });
    assert.equal(ct.status, 415);
    const enc = await fetch(`${betrace.httpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'br' },
      body: 'x',
    });
    assert.equal(enc.status, 415);
    const path = await fetch(`${betrace.httpUrl}/v1/logs`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    assert.equal(path.status, 404);
  });

  it('stays healthy and counts what it rejected', async () => {
    const health = await fetch(`${betrace.apiUrl}/health`);
    assert.equal(health.status, 200);
    assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_spans_rejected_total', { reason: 'invalid_id' })) >= 4);
    assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_requests_total', { protocol: 'grpc', code: 'INVALID_ARGUMENT' })) >= 1);
    assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_requests_total', { protocol: 'http', code: '413' })) >= 2);
  });
});

describe('refusing when the transport is full', () => {
  it('answers UNAVAILABLE with RetryInfo (gRPC) and 503 with Retry-After (HTTP)', async () => {
    // No downstream, and a transport too small to hold two requests while nothing consumes:
    // the forwarder is off and the worker role is given no rules, so the queue is the bound.
    const betrace = await startTestPipeline({ transport: { partitions: 1, max_queued_bytes: 1024 }, receiver: { retry_after: '2s' } });
    try {
      betrace.pipeline.transport.createConsumer('stalled', { onBatch: () => new Promise(() => undefined) }).start().catch(() => undefined);
      const body = request(Array.from({ length: 20 }, (_, i) => span(T1, `b7ad6b71692033${(i + 16).toString(16)}`, 'fill')));
      let grpcRefusal: grpc.ServiceError | null = null;
      for (let i = 0; i < 20 && grpcRefusal === null; i++) grpcRefusal = (await grpcExport(betrace.grpcUrl, body)).err;
      assert.equal(grpcRefusal?.code, grpc.status.UNAVAILABLE);
      const details = grpcRefusal.metadata.get('grpc-status-details-bin')[0] as Buffer;
      const status = RpcStatus.decode(details) as unknown as { details: Array<{ typeUrl: string; value: Uint8Array }> };
      assert.equal(status.details[0]!.typeUrl, 'type.googleapis.com/google.rpc.RetryInfo');
      const retry = RetryInfo.toObject(RetryInfo.decode(status.details[0]!.value), { longs: Number }) as { retryDelay: { seconds: number } };
      assert.equal(retry.retryDelay.seconds, 2);
      const res = await fetch(`${betrace.httpUrl}/v1/traces`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-protobuf' },
        body,
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '2');
    } finally {
      await betrace.stop();
    }
  });
});
