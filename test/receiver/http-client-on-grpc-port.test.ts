/**
 * Friction: an OTLP/HTTP client (http/protobuf, the OpenTelemetry default) pointed at the gRPC
 * port got grpc-js's HTTP/2 bytes, which it reports as an opaque parse error (BadStatusLine).
 * Now the official OpenTelemetry JS http exporter reports an error that says where OTLP/HTTP is,
 * betrace logs the same, and gRPC clients on that port are served as before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

describe('an OTLP/HTTP client pointed at the OTLP/gRPC port', () => {
  let betrace: TestPipeline;
  before(async () => {
    betrace = await startTestPipeline();
  });
  after(() => betrace.stop());

  it('gets an error naming the OTLP/HTTP endpoint, betrace logs it, and gRPC goes on', async () => {
    const results: ExportResult[] = [];
    const http = otlpExporter('http', betrace.grpcUrl);
    const recording: SpanExporter = {
      export: (spans, done) => http.export(spans, (r) => (results.push(r), done(r))),
      shutdown: () => http.shutdown(),
    };
    const app = createTestApp({ service: 'wrong-port', exporters: [recording] });
    app.tracer().startSpan('misdirected').end();
    await app.flush().catch(() => undefined); // the export's failure, read from `results`
    await app.shutdown().catch(() => undefined);
    assert.equal(results.length, 1);
    assert.equal(results[0]!.code, ExportResultCode.FAILED);
    const hint = `this is betrace's OTLP/gRPC port; OTLP/HTTP is on ${betrace.httpUrl}/v1/traces`;
    const error = results[0]!.error as Error & { code?: number; data?: string };
    assert.equal(error.message, hint, 'the error the SDK reports says it');
    assert.equal(error.code, 400);
    assert.equal(error.data?.trim(), hint);
    await waitUntil(() => betrace.logs.some((l) => l.includes('an HTTP/1.x request arrived on the OTLP/gRPC port') && l.includes(`point it at ${betrace.httpUrl}/v1/traces`)), 5000, 'the log line');

    const grpc = createTestApp({ service: 'right-port', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    grpc.tracer().startSpan('well-directed').end();
    await grpc.flush();
    await grpc.shutdown();
    await waitUntil(
      async () => /betrace_receiver_requests_total\{protocol="grpc",code="OK"\} 1\b/.test(await (await fetch(`${betrace.apiUrl}/metrics`)).text()),
      5000,
      'the gRPC export accepted',
    );
  });

  it('survives clients that reset the connection before sending anything, or while answered 400', async () => {
    const url = new URL(betrace.grpcUrl);
    const reset = (send?: string) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(Number(url.port), url.hostname, () => {
          if (send !== undefined) socket.write(send);
          setTimeout(() => socket.resetAndDestroy(), send === undefined ? 0 : 5);
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
      });
    for (let i = 0; i < 20; i++) await reset(i % 2 === 0 ? undefined : 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n');
    const grpc = createTestApp({ service: 'after-resets', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    grpc.tracer().startSpan('still-served').end();
    await grpc.flush();
    await grpc.shutdown();
    await waitUntil(
      async () => /betrace_receiver_requests_total\{protocol="grpc",code="OK"\} 2\b/.test(await (await fetch(`${betrace.apiUrl}/metrics`)).text()),
      5000,
      'the gRPC export after the resets accepted',
    );
  });
});
