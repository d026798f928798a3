/**
 * Acceptance: while the downstream is unreachable (the forwarder's sends failing in a row, not
 * one failed attempt), /ready names the downstream and the last error among its reasons: 200
 * "degraded" in the all-in-one process, whose receiver must stay in service; once a send
 * succeeds again, "ready". (A forwarder of its own is unready instead: Kafka mode.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';

const spanIds = (n: number) => Array.from({ length: n }, () => [randomBytes(16).toString('hex'), randomBytes(8).toString('hex')] as const);

async function ready(apiUrl: string): Promise<{ status: number; body: { status: string; reasons?: Record<string, string> } }> {
  const res = await fetch(`${apiUrl}/ready`);
  return { status: res.status, body: (await res.json()) as { status: string; reasons?: Record<string, string> } };
}

describe('/ready and the downstream', () => {
  let sink: OtlpSink;
  let betrace: TestPipeline;
  before(async () => {
    sink = await startOtlpSink();
    betrace = await startTestPipeline({ downstream: { endpoint: sink.url }, shutdown_timeout: '1s' });
  });
  after(async () => {
    await betrace.stop();
    await sink.close();
  });

  it('is degraded naming the downstream and its error while it is unreachable, ready again once a send succeeds', async () => {
    const client = rawTraceClient(betrace.grpcUrl);
    assert.equal((await client.export(paddedRequest('ready', spanIds(5)))).err, null);
    await sink.waitFor((s) => s.length === 5, 10_000, 'the first spans');
    assert.equal((await ready(betrace.apiUrl)).status, 200);

    await sink.stop();
    assert.equal((await client.export(paddedRequest('ready', spanIds(5)))).err, null, 'accepted: the forwarder retries');
    let last = await ready(betrace.apiUrl);
    await waitUntil(async () => (last = await ready(betrace.apiUrl)).body.status === 'degraded', 15_000, '/ready degraded while the downstream is down');
    assert.equal(last.status, 200, 'the receiver stays in service');
    assert.match(last.body.reasons?.downstream_forwarder ?? '', new RegExp(`^downstream ${sink.url} unreachable \\(forwarder exports failing since \\S+\\): UNAVAILABLE: .+`));

    await sink.start();
    await waitUntil(async () => (last = await ready(betrace.apiUrl)).body.status === 'ready', 15_000, '/ready ready once the downstream takes exports again');
    assert.equal(last.body.status, 'ready');
    await sink.waitFor((s) => s.length === 10, 10_000, 'the spans held while it was down');
    client.close();
  });
});
