/**
 * The OTLP/gRPC receiver's limits on requests still being received, seen by
 * real clients: concurrent large exports within the receive bound all succeed,
 * a call that arrives while the bound is spent gets UNAVAILABLE with a retry
 * delay (and a normal one succeeds once it is free), HTTP/2 offers
 * receiver.grpc.max_concurrent_streams, and connections past
 * receiver.max_connections are closed as they arrive.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';

const MiB = 1 << 20;

function request(traceByte: number, spans: number): Buffer {
  const traceId = traceByte.toString(16).padStart(2, '0').repeat(16);
  return paddedRequest('bounds', Array.from({ length: spans }, (_, i) => [traceId, (i + 1).toString(16).padStart(16, '0')] as const));
}

describe('requests still being received, on the OTLP/gRPC receiver', () => {
  const pipelines: TestPipeline[] = [];
  after(async () => {
    for (const p of pipelines) await p.stop();
  });

  it('takes 32 concurrent 1 MB exports over 4 connections within the receive bound', async () => {
    const p = await startTestPipeline({ receiver: { max_receiving_bytes: '64MiB' } });
    pipelines.push(p);
    const clients = Array.from({ length: 4 }, (_, i) => rawTraceClient(p.grpcUrl.replace('127.0.0.1', i % 2 === 0 ? '127.0.0.1' : 'localhost')));
    try {
      const body = request(1, 3000);
      assert.ok(body.length > 1_000_000);
      const results = await Promise.all(Array.from({ length: 32 }, (_, i) => clients[i % 4]!.export(body)));
      assert.deepEqual(results.map((r) => r.err?.message ?? 'OK'), Array.from({ length: 32 }, () => 'OK'));
      assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total'), 0);
      await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 0, 2000, 'the receive bound released');
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('answers UNAVAILABLE with a retry delay while the receive bound (shared with OTLP/HTTP) is spent, and takes exports again once it is free', async () => {
    const p = await startTestPipeline({ receiver: { max_request_bytes: '4MiB', max_receiving_bytes: '4MiB', read_timeout: '3s' } });
    pipelines.push(p);
    // An OTLP/HTTP body (the bound is shared) declared 4 MiB, all but 30,000 bytes of it sent, then silent:
    // less than a gRPC call's first share (64 KiB) is left.
    const { port } = new URL(p.httpUrl);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${4 * MiB}\r\n\r\n`);
    socket.write(Buffer.alloc(4 * MiB - 30_000, 0x61));
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 4 * MiB - 30_000, 5000, 'the held body counted');
    const client = rawTraceClient(p.grpcUrl);
    try {
      const refused = await client.export(request(2, 10));
      assert.equal(refused.err?.code, 14, 'UNAVAILABLE');
      assert.match(refused.err?.details ?? '', /receiver\.max_receiving_bytes/);
      assert.ok(refused.err?.metadata.get('grpc-status-details-bin').length === 1, 'with google.rpc.RetryInfo');
      await closed; // by the read timeout: 408 and the connection closed
      await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 0, 2000, 'the receive bound released');
      assert.equal((await client.export(request(3, 10))).err, null);
      assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'http', reason: 'read_timeout' }), 1);
      assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'grpc', reason: 'receive_budget' }), 1);
    } finally {
      client.close();
    }
  });

  it('offers receiver.grpc.max_concurrent_streams and closes connections past receiver.max_connections', async () => {
    const p = await startTestPipeline({ receiver: { max_connections: 3, grpc: { max_concurrent_streams: 5 } } });
    pipelines.push(p);
    const session = http2.connect(p.grpcUrl);
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    assert.equal(settings.maxConcurrentStreams, 5);
    const { port } = new URL(p.grpcUrl);
    const sockets = await Promise.all(
      Array.from({ length: 3 }, () => new Promise<Socket>((resolve) => {
        const s = connect(Number(port), '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
      })),
    );
    // The session and two of the sockets fill the three places; the third socket is closed at once.
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_connections_refused_total', { server: 'grpc' })) === 1, 2000, 'one connection refused');
    await waitUntil(() => sockets.filter((s) => s.destroyed || s.readableEnded).length === 1, 2000, 'one socket closed');
    for (const s of sockets) s.destroy();
    session.close();
  });
});
