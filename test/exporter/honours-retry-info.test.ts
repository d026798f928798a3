/**
 * The exporter against a real gRPC downstream (a @grpc/grpc-js server implementing the OTLP
 * TraceService): a throttling answer's google.rpc.RetryInfo, sent in the
 * `grpc-status-details-bin` trailer as the OTLP specification says, sets when the request is
 * sent again; what is not retryable by its gRPC status (UNKNOWN included: an error downstream
 * did not classify) is sent once and dropped, counted with its reason and code; an error of the
 * exporter's own sender is dropped the same way and the exporter goes on.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { QueuedExporter, createOtlpGrpcSender, type ExportItem, type PayloadSender } from '../../src/exporter/index.ts';
import { TRACE_SERVICE_DEFINITION } from '../../src/otlp/index.ts';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { capturedLogger, registryValue } from '../helpers/telemetry.ts';

// Protobuf written out by hand, independent of betrace's own encoder.
const varint = (n: number): number[] => {
  const out: number[] = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
};
const field = (tag: number, bytes: Uint8Array): Buffer => Buffer.from([...varint((tag << 3) | 2), ...varint(bytes.length), ...bytes]);
const varintField = (tag: number, n: number): Buffer => Buffer.from([...varint(tag << 3), ...varint(n)]);

/** google.rpc.Status{code, message, details: [Any{type_url, value}]}. */
function rpcStatus(code: grpc.status, message: string, details: ReadonlyArray<readonly [typeUrl: string, value: Uint8Array]>): Buffer {
  return Buffer.concat([
    varintField(1, code),
    field(2, Buffer.from(message)),
    ...details.map(([typeUrl, value]) => field(3, Buffer.concat([field(1, Buffer.from(typeUrl)), field(2, value)]))),
  ]);
}

/** google.rpc.RetryInfo{retry_delay: google.protobuf.Duration{seconds, nanos}}. */
const retryInfo = (ms: number): [string, Buffer] => [
  'type.googleapis.com/google.rpc.RetryInfo',
  field(1, Buffer.concat([varintField(1, Math.floor(ms / 1000)), varintField(2, (ms % 1000) * 1_000_000)])),
];

type Answer = (call: number) => { code: grpc.status; details?: string; statusDetails?: Buffer } | 'ok' | 'throw';

describe('the exporter against a real gRPC downstream', () => {
  let server: grpc.Server;
  let port: number;
  let answer: Answer = () => 'ok';
  /** When each Export call arrived, and its size. */
  let arrivals: Array<{ at: number; bytes: number }> = [];

  before(async () => {
    server = new grpc.Server();
    server.addService(TRACE_SERVICE_DEFINITION, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        arrivals.push({ at: performance.now(), bytes: call.request.length });
        const a = answer(arrivals.length - 1);
        if (a === 'ok') return cb(null, Buffer.alloc(0));
        // A handler failing with a plain error: grpc-js answers UNKNOWN with its message.
        if (a === 'throw') return cb(new Error('downstream broke in an unforeseen way'), null);
        const metadata = new grpc.Metadata();
        if (a.statusDetails !== undefined) metadata.set('grpc-status-details-bin', a.statusDetails);
        cb({ code: a.code, details: a.details ?? '', metadata }, null);
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  });

  after(() => server.forceShutdown());

  const downstream = () => ({
    endpoint: `http://127.0.0.1:${port}`,
    headers: {},
    timeoutMs: 5000,
    compression: 'none' as const,
    maxQueueSpans: 1000,
    maxBatchSpans: 100,
    batchTimeoutMs: 1,
    maxRetryTimeMs: 10_000,
  });

  function setup(backoffMs: number, sender: PayloadSender = createOtlpGrpcSender(downstream())) {
    const metrics = createMetrics();
    const { logger, lines } = capturedLogger();
    const exporter = new QueuedExporter({
      name: 'violations',
      sender,
      config: downstream(),
      metrics,
      logger,
      initialBackoffMs: backoffMs,
      maxBackoffMs: backoffMs,
    });
    return { exporter, metrics, lines };
  }

  /** Exports one entry of two spans; resolves with whether it was delivered. */
  async function exportOne(exporter: QueuedExporter): Promise<boolean[]> {
    const done: boolean[] = [];
    const item: ExportItem = {
      payload: paddedRequest('retry-info', [
        ['0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331'],
        ['0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203332'],
      ]),
      spanCount: 2,
      onDone: (delivered) => done.push(delivered),
    };
    await exporter.start();
    assert.equal(exporter.enqueue(item), true);
    await exporter.flush();
    await exporter.shutdown();
    return done;
  }

  const reset = (a: Answer) => {
    answer = a;
    arrivals = [];
  };
  const dropped = (metrics: Metrics, labels: Record<string, string>) => registryValue(metrics, 'betrace_exporter_spans_dropped_total', labels);

  it('sends a throttled request again no sooner than the RetryInfo delay', async () => {
    reset((call) => (call === 0 ? { code: grpc.status.RESOURCE_EXHAUSTED, details: 'slow down', statusDetails: rpcStatus(grpc.status.RESOURCE_EXHAUSTED, 'slow down', [retryInfo(400)]) } : 'ok'));
    const { exporter, metrics } = setup(1); // the backoff alone would send it again after about 1 ms
    assert.deepEqual(await exportOne(exporter), [true]);
    assert.equal(arrivals.length, 2, 'sent twice');
    assert.equal(arrivals[1]!.bytes, arrivals[0]!.bytes, 'the same request');
    const waited = arrivals[1]!.at - arrivals[0]!.at;
    assert.ok(waited >= 400, `sent again after ${waited.toFixed(0)} ms, not after the 400 ms downstream asked for`);
    assert.equal(await registryValue(metrics, 'betrace_exporter_retries_total'), 1);
    assert.equal(await registryValue(metrics, 'betrace_exporter_spans_sent_total'), 2);
    assert.equal(await dropped(metrics, {}), 0);
  });

  it('does not retry sooner than its own backoff when the RetryInfo delay is shorter', async () => {
    reset((call) => (call === 0 ? { code: grpc.status.UNAVAILABLE, statusDetails: rpcStatus(grpc.status.UNAVAILABLE, 'busy', [retryInfo(1)]) } : 'ok'));
    const { exporter } = setup(400); // jittered ±20 %: at least 320 ms
    assert.deepEqual(await exportOne(exporter), [true]);
    assert.equal(arrivals.length, 2);
    const waited = arrivals[1]!.at - arrivals[0]!.at;
    assert.ok(waited >= 320, `sent again after ${waited.toFixed(0)} ms: the 1 ms RetryInfo delay is a floor, not the wait`);
  });

  it('sends an UNKNOWN error, and RESOURCE_EXHAUSTED without RetryInfo, once: dropped as rejected, by code', async () => {
    reset(() => 'throw');
    const unknown = setup(1);
    assert.deepEqual(await exportOne(unknown.exporter), [false]);
    assert.equal(arrivals.length, 1, 'not retried');
    assert.equal(await dropped(unknown.metrics, { exporter: 'violations', reason: 'rejected', code: 'UNKNOWN' }), 2);
    assert.equal(await registryValue(unknown.metrics, 'betrace_exporter_retries_total'), 0);
    const line = unknown.lines.find((l) => /refused/.test(String(l.msg)));
    assert.equal(line?.code, 'UNKNOWN');
    assert.match(String(line.error), /unforeseen/);

    // Details of another kind than RetryInfo: downstream did not say it will recover.
    const errorInfo = field(1, Buffer.from('QUOTA'));
    reset(() => ({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota', statusDetails: rpcStatus(grpc.status.RESOURCE_EXHAUSTED, 'quota', [['type.googleapis.com/google.rpc.ErrorInfo', errorInfo]]) }));
    const exhausted = setup(1);
    assert.deepEqual(await exportOne(exhausted.exporter), [false]);
    assert.equal(arrivals.length, 1, 'not retried');
    assert.equal(await dropped(exhausted.metrics, { reason: 'rejected', code: 'RESOURCE_EXHAUSTED' }), 2);
  });

  it('drops what its own sender fails on (not an answer from downstream), counted, and goes on', async () => {
    reset(() => 'ok');
    const real = createOtlpGrpcSender(downstream());
    let calls = 0;
    const failingOnce: PayloadSender = {
      send: (payload, spans) => (calls++ === 0 ? Promise.reject(new Error('sender fault')) : real.send(payload, spans)),
      shutdown: () => real.shutdown(),
    };
    const { exporter, metrics, lines } = setup(1, failingOnce);
    const first: boolean[] = [];
    await exporter.start();
    exporter.enqueue({ payload: paddedRequest('fault', [['0af7651916cd43dd8448eb211c80319d', 'b7ad6b7169203333']]), spanCount: 1, onDone: (d) => first.push(d) });
    await exporter.flush();
    assert.deepEqual(first, [false], 'settled once, dropped');
    assert.equal(calls, 1, 'not retried');
    assert.equal(await dropped(metrics, { exporter: 'violations', reason: 'rejected' }), 1);
    assert.ok(lines.some((l) => /refused/.test(String(l.msg)) && l.error === 'sender fault'), JSON.stringify(lines));
    assert.deepEqual(await exportOne(exporter), [true], 'the next entry is delivered');
    assert.equal(arrivals.length, 1);
  });
});
