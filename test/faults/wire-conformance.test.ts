/**
 * Fault: protobuf a conformant decoder refuses is never acknowledged and forwarded.
 * A string that is not UTF-8, a field number 0, a known field of the wrong wire type,
 * a truncated length: refused where they lie — a span alone (partial_success naming
 * the field), a resource or scope with its spans, the request's own framing whole
 * (INVALID_ARGUMENT / 400) — and the other spans still go downstream.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from '../../src/otlp/index.ts';
import { WireCursor, varintBytes } from '../../src/otlp/wire.ts';
import { rawTraceClient, type RawTraceClient } from '../helpers/grpc-client.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue, type TestPipeline } from '../helpers/pipeline.ts';

let next = 1;
function span(name: string, attributes: Array<{ key: string; value: Record<string, unknown> }> = []) {
  const id = next++;
  return {
    traceId: Buffer.from(`c0ffee${id.toString(16).padStart(26, '0')}`, 'hex'),
    spanId: Buffer.from(id.toString(16).padStart(16, '0'), 'hex'),
    name,
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000000100000000',
    attributes,
  };
}

function encode(resourceSpans: object[]): Buffer {
  return Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans })).finish());
}

const resource = (service: string) => ({ attributes: [{ key: 'service.name', value: { stringValue: service } }] });

/** The bytes with the first occurrence of `marker` (ASCII) given an invalid UTF-8 byte (0xff) in place of its first character. */
function poison(bytes: Buffer, marker: string): Buffer {
  const at = bytes.indexOf(marker);
  assert.ok(at >= 0, `marker ${marker} in the request`);
  const out = Buffer.from(bytes);
  out[at] = 0xff;
  return out;
}

/** A request of one ResourceSpans holding `scopeSpans`, then the bytes `extra`. */
function requestWithResourceSpansBytes(scopeSpans: object, extra: Buffer): Buffer {
  const request = encode([{ resource: resource('framing'), scopeSpans: [scopeSpans] }]);
  const reader = new WireCursor(request);
  assert.equal(reader.varint(request.length), 0x0a);
  const start = reader.len(request.length);
  const end = reader.pos;
  return frame(0x0a, Buffer.concat([request.subarray(start, end), extra]));
}

/** A length-delimited field: tag, length, bytes. */
const frame = (tag: number, body: Buffer): Buffer => Buffer.concat([varintBytes(tag), varintBytes(body.length), body]);

function partial(res: Buffer | Uint8Array | undefined): { rejectedSpans: number; errorMessage: string } {
  if (res === undefined || res.length === 0) return { rejectedSpans: 0, errorMessage: '' };
  const o = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res), { longs: Number, defaults: true }) as {
    partialSuccess?: { rejectedSpans: number; errorMessage: string };
  };
  return o.partialSuccess ?? { rejectedSpans: 0, errorMessage: '' };
}

describe('refusing protobuf a conformant decoder refuses', () => {
  let sink: OtlpSink;
  let betrace: TestPipeline;
  let client: RawTraceClient;
  before(async () => {
    sink = await startOtlpSink();
    betrace = await startTestPipeline({ downstream: { endpoint: sink.url, batch_timeout: '10ms' } });
    client = rawTraceClient(betrace.grpcUrl);
  });
  after(async () => {
    client.close();
    await betrace.stop();
    await sink.close();
  });

  const names = () => new Set(sink.spans.map((s) => s.name));

  it('a span name that is not UTF-8: that span rejected (partial_success naming the field), the others forwarded', async () => {
    const body = poison(encode([{ resource: resource('utf8'), scopeSpans: [{ spans: [span('utf8.ok.1'), span('XBAD.name'), span('utf8.ok.2')] }] }]), 'XBAD');
    const { err, res } = await client.export(body);
    assert.equal(err, null);
    const answer = partial(res);
    assert.equal(answer.rejectedSpans, 1);
    assert.equal(answer.errorMessage, 'resource_spans[0].scope_spans[0].spans[1].name: invalid UTF-8');
    await sink.waitFor(() => names().has('utf8.ok.1') && names().has('utf8.ok.2'), 10_000, 'the two valid spans');
  });

  it('an attribute string value or key that is not UTF-8: that span rejected, named down to the value', async () => {
    const body = poison(
      encode([
        {
          resource: resource('utf8-attr'),
          scopeSpans: [{ spans: [span('attr.bad', [{ key: 'a', value: { stringValue: 'fine' } }, { key: 'b', value: { stringValue: 'XBAD' } }]), span('attr.ok')] }],
        },
      ]),
      'XBAD',
    );
    const { err, res } = await client.export(body);
    assert.equal(err, null);
    assert.deepEqual(partial(res), { rejectedSpans: 1, errorMessage: 'resource_spans[0].scope_spans[0].spans[0].attributes[1].value.string_value: invalid UTF-8' });
    const key = poison(encode([{ scopeSpans: [{ spans: [span('key.bad', [{ key: 'XBADkey', value: { intValue: 1 } }])] }] }]), 'XBAD');
    const answer = await client.export(key);
    assert.equal(answer.err, null);
    assert.deepEqual(partial(answer.res), { rejectedSpans: 1, errorMessage: 'resource_spans[0].scope_spans[0].spans[0].attributes[0].key: invalid UTF-8' });
    await sink.waitFor(() => names().has('attr.ok'), 10_000, 'attr.ok');
    assert.ok(!names().has('attr.bad') && ![...names()].some((n) => n.includes('key.bad')));
  });

  it('a resource attribute that is not UTF-8: every span of that resource rejected, another resource of the request forwarded', async () => {
    const body = poison(
      encode([
        { resource: resource('XBADservice'), scopeSpans: [{ spans: [span('res.bad.1'), span('res.bad.2')] }] },
        { resource: resource('good-service'), scopeSpans: [{ spans: [span('res.ok')] }] },
      ]),
      'XBAD',
    );
    const { err, res } = await client.export(body);
    assert.equal(err, null);
    const answer = partial(res);
    assert.equal(answer.rejectedSpans, 2);
    assert.match(answer.errorMessage, /^resource_spans\[0\]\.resource\.attributes\[0\]\.value\.string_value: invalid UTF-8/);
    await sink.waitFor(() => names().has('res.ok'), 10_000, 'res.ok');
    assert.ok(!names().has('res.bad.1') && !names().has('res.bad.2'));
  });

  it('field number 0 inside a ResourceSpans: INVALID_ARGUMENT (gRPC) and 400 (HTTP), naming where', async () => {
    const body = requestWithResourceSpansBytes({ spans: [span('field0.span')] }, Buffer.from([0x02, 0x01, 0x41])); // field 0, length-delimited, 1 byte
    const { err } = await client.export(body);
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(err.details, 'malformed ExportTraceServiceRequest: resource_spans[0]: field number 0');
    const http = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body });
    assert.equal(http.status, 400);
    const status = RpcStatus.decode(new Uint8Array(await http.arrayBuffer())) as unknown as { code: number; message: string };
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.message, /resource_spans\[0\]: field number 0/);
  });

  it('spans in the deprecated field 1000 of a ResourceSpans: the request refused, not acknowledged and lost', async () => {
    // A ScopeSpans message's bytes, taken from an encoded request, framed as field 1000.
    const reader = new WireCursor(encode([{ scopeSpans: [{ spans: [span('field1000.span')] }] }]));
    assert.equal(reader.varint(reader.buf.length), 0x0a);
    const rsStart = reader.len(reader.buf.length);
    const rsEnd = reader.pos;
    reader.pos = rsStart;
    assert.equal(reader.varint(rsEnd), 0x12);
    const ssStart = reader.len(rsEnd);
    const ssEnd = reader.pos;
    const old = frame((1000 << 3) | 2, Buffer.from(reader.buf.subarray(ssStart, ssEnd)));
    const body = requestWithResourceSpansBytes({ spans: [span('field1000.sibling')] }, old);
    const { err } = await client.export(body);
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /resource_spans\[0\]: field 1000 \(the deprecated instrumentation_library_spans\) is not accepted/);
  });

  it('a known field of the wrong wire type: in a ScopeSpans the request refused, in a span that span rejected', async () => {
    // ScopeSpans field 1 (scope) sent as a varint.
    const { err } = await client.export(frame(0x0a, frame(0x12, Buffer.from([0x08, 0x01]))));
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(err.details, 'malformed ExportTraceServiceRequest: resource_spans[0].scope_spans[0].scope: wire type 0 (varint), expected 2 (length-delimited)');

    // A span whose name (field 5) is a varint, after a valid span: that span alone.
    const badSpan = Buffer.concat([frame(0x0a, Buffer.alloc(16, 7)), frame(0x12, Buffer.alloc(8, 7)), Buffer.from([5 << 3, 0x01])]);
    const Span = ExportTraceServiceRequest.lookupType('.opentelemetry.proto.trace.v1.Span');
    const goodSpan = Buffer.from(Span.encode(Span.fromObject(span('wiretype.ok'))).finish());
    const request = frame(0x0a, frame(0x12, Buffer.concat([frame(0x12, goodSpan), frame(0x12, badSpan)])));
    const answer = await client.export(request);
    assert.equal(answer.err, null);
    assert.deepEqual(partial(answer.res), { rejectedSpans: 1, errorMessage: 'resource_spans[0].scope_spans[0].spans[1].name: wire type 0 (varint), expected 2 (length-delimited)' });
    await sink.waitFor(() => names().has('wiretype.ok'), 10_000, 'wiretype.ok');
  });

  it('truncated: a length past the end is INVALID_ARGUMENT; a span cut inside is rejected alone', async () => {
    const body = encode([{ scopeSpans: [{ spans: [span('cut.1')] }] }]);
    const { err } = await client.export(body.subarray(0, body.length - 3));
    assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /^malformed ExportTraceServiceRequest: length-delimited field runs past the end of its message$/);
    // A span whose last attribute claims more bytes than the span holds (the span's own length intact).
    const attr = Buffer.from([0x4a, 0x05, 0x0a, 0x09, 0x61, 0x62, 0x63]);
    const spanBytes = Buffer.concat([frame(0x0a, Buffer.alloc(16, 9)), frame(0x12, Buffer.alloc(8, 9)), attr]);
    const request = frame(0x0a, frame(0x12, frame(0x12, spanBytes)));
    const answer = await client.export(request);
    assert.equal(answer.err, null);
    assert.deepEqual(partial(answer.res), {
      rejectedSpans: 1,
      errorMessage: 'resource_spans[0].scope_spans[0].spans[0].attributes[0].key: length-delimited field runs past the end of its message',
    });
  });

  it('unknown fields of valid wire types are accepted and forwarded', async () => {
    const body = encode([{ scopeSpans: [{ spans: [span('unknown.ok')] }] }]);
    // An unknown field 99 (length-delimited) at the end of the request: skipped, like any decoder.
    const withUnknown = Buffer.concat([body, varintBytes((99 << 3) | 2), Buffer.from([2, 0xff, 0xfe])]);
    const { err, res } = await client.export(withUnknown);
    assert.equal(err, null);
    assert.equal(partial(res).rejectedSpans, 0);
    await sink.waitFor(() => names().has('unknown.ok'), 10_000, 'unknown.ok');
  });

  it('counts the malformed spans and stays healthy', async () => {
    assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_spans_rejected_total', { protocol: 'grpc', reason: 'malformed' })) >= 6);
    assert.equal((await fetch(`${betrace.apiUrl}/health`)).status, 200);
    assert.ok(![...names()].some((n) => n.includes('BAD')), 'nothing poisoned forwarded');
  });
});
