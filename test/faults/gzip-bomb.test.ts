/**
 * Fault (b): a gzip bomb (about 1 MiB that inflates to 1 GiB) and over-limit
 * bodies: 413, and the process's RSS grows by less than twice the limit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createGzip } from 'node:zlib';
import { connect } from 'node:http2';
import { TRACE_EXPORT_PATH } from '../../src/otlp/index.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rssBytes } from '../bench/pipeline-bench.ts';
import { spawnBetrace } from '../helpers/process.ts';

async function gzipZeros(bytes: number): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((r) => gz.on('end', r));
  const block = Buffer.alloc(1 << 20);
  for (let written = 0; written < bytes; written += block.length) {
    if (!gz.write(block)) await new Promise((r) => gz.once('drain', r));
  }
  gz.end();
  await done;
  return Buffer.concat(chunks);
}

/** Sends one gzip-compressed gRPC message to TraceService/Export; resolves with grpc-status. */
function grpcGzipExport(address: string, compressed: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': TRACE_EXPORT_PATH,
      'content-type': 'application/grpc',
      'grpc-encoding': 'gzip',
      te: 'trailers',
    });
    let status: number | undefined;
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = Number(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => (status = Number(trailers['grpc-status'])));
    stream.on('data', () => undefined);
    stream.on('close', () => {
      session.close();
      if (status === undefined) reject(new Error('no grpc-status'));
      else resolve(status);
    });
    stream.on('error', () => undefined);
    const prefix = Buffer.alloc(5);
    prefix[0] = 1;
    prefix.writeUInt32BE(compressed.length, 1);
    stream.end(Buffer.concat([prefix, compressed]));
  });
}

describe('gzip bomb', () => {
  it('answers 413 / RESOURCE_EXHAUSTED to 1 GiB inflating from about 1 MiB, RSS growth under twice the limit', async () => {
    const bomb = await gzipZeros(1 << 30);
    assert.ok(bomb.length < 2 << 20, `the bomb is small (${bomb.length} bytes)`);
    const dir = mkdtempSync(join(tmpdir(), 'betrace-bomb-'));
    writeFileSync(join(dir, 'betrace.yaml'), 'receiver: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }\napi: { endpoint: "127.0.0.1:0" }\ndata_dir: data\n');
    const b = spawnBetrace('bomb-target', ['run', '--config', join(dir, 'betrace.yaml')]);
    try {
      const http = await b.waitFor(/"address":"([^"]+)","msg":"OTLP\/HTTP receiver listening"/);
      await b.waitFor(/betrace started/);
      /** Peak RSS growth of the betrace process while `send` runs. */
      const growth = async (send: () => Promise<void>): Promise<number> => {
        await new Promise((r) => setTimeout(r, 1000));
        const before = rssBytes(b.child.pid!);
        let peak = before;
        const sampler = setInterval(() => {
          if (b.child.exitCode === null) peak = Math.max(peak, rssBytes(b.child.pid!));
        }, 20);
        try {
          await send();
        } finally {
          clearInterval(sampler);
        }
        return peak - before;
      };
      const limit = 16 << 20;
      const bombGrowth = await growth(async () => {
        const res = await fetch(`http://${http}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' }, body: bomb });
        assert.equal(res.status, 413);
        await res.arrayBuffer();
      });
      assert.ok(bombGrowth < 2 * limit, `gzip bomb: RSS grew ${Math.round(bombGrowth / 1e6)} MB (limit ${limit / 1e6} MB)`);
      // Over the limit without a declared length (chunked): cut off while reading.
      let sentChunks = 0;
      const bodyGrowth = await growth(async () => {
        const chunks = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sentChunks++ < 20) controller.enqueue(new Uint8Array(1 << 20));
            else controller.close();
          },
        });
        // The receiver answers 413 and closes the connection while the client still sends:
        // the client sees the answer or a reset, depending on timing.
        const status = await fetch(`http://${http}/v1/traces`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-protobuf' },
          body: chunks,
          duplex: 'half',
        }).then(
          (r) => r.status,
          (err: Error) => (/EPIPE|ECONNRESET|socket/.test(String((err.cause as Error | undefined)?.message ?? err.message)) ? 'reset' : err.message),
        );
        assert.ok(status === 413 || status === 'reset', `413 or a reset, got ${status}`);
      });
      assert.ok(bodyGrowth < 2 * limit, `over-limit body: RSS grew ${Math.round(bodyGrowth / 1e6)} MB (limit ${limit / 1e6} MB)`);
      assert.equal(b.child.exitCode, null, 'the process is up');
      // The same bomb as a gRPC message (compressed flag set, grpc-encoding gzip), over raw HTTP/2.
      const grpcAddress = await b.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
      const grpcGrowth = await growth(async () => {
        const code = await grpcGzipExport(grpcAddress, bomb);
        assert.equal(code, 8, 'RESOURCE_EXHAUSTED');
      });
      assert.ok(grpcGrowth < 2 * limit, `gRPC gzip bomb: RSS grew ${Math.round(grpcGrowth / 1e6)} MB (limit ${limit / 1e6} MB)`);
      assert.equal(b.child.exitCode, null, 'the process is up');
      const api = await b.waitFor(/"address":"([^"]+)","msg":"admin API listening"/, 5000);
      const metrics = await (await fetch(`http://${api}/metrics`)).text();
      assert.match(metrics, /^betrace_receiver_requests_total\{protocol="http",code="413"\} 2$/m, 'both answered 413');
      assert.equal((await fetch(`http://${api}/health`)).status, 200);
    } finally {
      await b.stop();
    }
  });
});
