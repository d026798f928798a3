/**
 * The OTLP/gRPC receiver's limits on requests still being received, seen by
 * real clients: concurrent large exports within the receive bound all succeed,
 * a call that arrives while the bound is spent gets UNAVAILABLE with a retry
 * delay (and a normal one succeeds once it is free), a connection on which a
 * call was refused (no token, or the bound spent) goes on serving the calls that
 * follow, a stalled stream holding most of the bound is closed rather than an
 * export making progress, HTTP/2 offers receiver.grpc.max_concurrent_streams, and connections
 * past receiver.max_connections are closed as they arrive.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { TRACE_EXPORT_PATH } from '../../src/otlp/index.ts';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';

const MiB = 1 << 20;

function request(traceByte: number, spans: number): Buffer {
  const traceId = traceByte.toString(16).padStart(2, '0').repeat(16);
  return paddedRequest('bounds', Array.from({ length: spans }, (_, i) => [traceId, (i + 1).toString(16).padStart(16, '0')] as const));
}

/** A raw gRPC Export stream on its own HTTP/2 connection; `status`: its grpc-status, or 'closed' when it ended without one. */
function grpcStream(url: string): { stream: http2.ClientHttp2Stream; status: Promise<number | 'closed'> } {
  const session = http2.connect(url);
  session.on('error', () => undefined);
  const stream = session.request({ ':method': 'POST', ':path': TRACE_EXPORT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  const status = new Promise<number | 'closed'>((resolve) => {
    let code: number | 'closed' = 'closed';
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']);
    });
    stream.on('trailers', (t) => (code = Number(t['grpc-status'])));
    stream.on('close', () => {
      session.destroy();
      resolve(code);
    });
  });
  return { stream, status };
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

  /** Six 3,000-span exports at once on `client` (the channel a call was just refused on): every one acknowledged, each span counted once. */
  async function sixExportsAfterARefusal(p: TestPipeline, client: ReturnType<typeof rawTraceClient>, token?: string): Promise<void> {
    const before = await metricValue(p.apiUrl, 'betrace_receiver_spans_received_total', { protocol: 'grpc' });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => client.export(request(0x10 + i, 3000), token === undefined ? {} : { token })));
    assert.deepEqual(results.map((r) => (r.err === null ? 'OK' : `${r.err.code} ${r.err.details}`)), Array.from({ length: 6 }, () => 'OK'));
    assert.equal(await metricValue(p.apiUrl, 'betrace_receiver_spans_received_total', { protocol: 'grpc' }) - before, 6 * 3000, 'the spans received are the spans acknowledged');
    // The receiver checks its connections every 20 ms: a few checks pass before the connection is found still open.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'grpc', reason: 'refused' }), 0);
    assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'grpc', reason: 'read_timeout' }), 0);
  }

  it('goes on serving a connection after a call without the token was refused on it', async () => {
    const token = 'bounds-token';
    const p = await startTestPipeline({ receiver: { auth_token: token, read_timeout: '1s' } });
    pipelines.push(p);
    const client = rawTraceClient(p.grpcUrl);
    try {
      assert.equal((await client.export(request(4, 10))).err?.code, 16, 'UNAUTHENTICATED');
      await sixExportsAfterARefusal(p, client, token);
      // Idle past the read timeout after a refusal and good calls: the connection is kept, the next export succeeds on it.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await client.export(request(5, 10), { token })).err, null);
      assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'grpc' }), 0);
    } finally {
      client.close();
    }
  });

  it('goes on serving a connection after a call was refused on it while the receive bound was spent', async () => {
    const p = await startTestPipeline({ receiver: { max_request_bytes: '16MiB', max_receiving_bytes: '16MiB' } });
    pipelines.push(p);
    // An OTLP/HTTP body holding all but 30,000 bytes of the bound, then given up by its client (which frees it).
    const { port } = new URL(p.httpUrl);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${16 * MiB}\r\n\r\n`);
    socket.write(Buffer.alloc(16 * MiB - 30_000, 0x61));
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 16 * MiB - 30_000, 5000, 'the held body counted');
    const client = rawTraceClient(p.grpcUrl);
    try {
      assert.equal((await client.export(request(6, 10))).err?.code, 14, 'UNAVAILABLE');
      socket.destroy();
      await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 0, 2000, 'the receive bound released');
      await sixExportsAfterARefusal(p, client);
    } finally {
      client.close();
    }
  });

  it('closes the connection holding most when one needs more while the bound is spent: a stalled stream, not an export making progress', async () => {
    const p = await startTestPipeline({ receiver: { max_request_bytes: '8MiB', max_receiving_bytes: '8MiB' } });
    pipelines.push(p);
    // A gRPC stream declaring 7,000,000 bytes, 6 MiB of them sent, then silent.
    const stalled = grpcStream(p.grpcUrl);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(7_000_000, 1);
    stalled.stream.write(Buffer.concat([prefix, Buffer.alloc(6 * MiB, 0x61)]));
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) >= 6 * MiB - 100_000, 5000, 'the stalled stream counted');
    // A valid export of more than the bound has left, sent in 256 KiB pieces 30 ms apart (several of the receiver's checks see it grow).
    const body = request(7, 9000);
    assert.ok(body.length > 2.5 * MiB, 'more than the bound has left');
    const exporter = grpcStream(p.grpcUrl);
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    framed.writeUInt32BE(body.length, 1);
    for (let sent = 0; sent < framed.length && !exporter.stream.destroyed; sent += 256 * 1024) {
      exporter.stream.write(framed.subarray(sent, sent + 256 * 1024));
      await new Promise((r) => setTimeout(r, 30));
    }
    exporter.stream.end();
    assert.equal(await exporter.status, 0, 'the export making progress succeeds');
    assert.equal(await stalled.status, 'closed', 'the stalled stream was closed');
    assert.equal(await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'grpc', reason: 'receive_budget' }), 1);
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes')) === 0, 2000, 'the receive bound released');
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
