/**
 * Kafka hung (the broker process frozen with SIGSTOP: connections open, no answer): the
 * receiver answers UNAVAILABLE with a retry delay before the client's own deadline —
 * at half the time its grpc-timeout leaves, at most transport.kafka.ack_timeout — so the
 * client can retry instead of timing out; once the reachability probe has noticed, at
 * once; and /ready says why.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { RetryInfo, RpcStatus } from '../../src/otlp/index.ts';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { kafkaTestConfig, startKafka, uniqueName } from '../helpers/kafka.ts';
import { startTestPipeline } from '../helpers/pipeline.ts';

function request(): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return paddedRequest('frozen-kafka', [[traceId, randomBytes(8).toString('hex')]]);
}

function retryDelayMs(err: grpc.ServiceError): number | undefined {
  const details = err.metadata.get('grpc-status-details-bin')[0];
  if (!(details instanceof Buffer)) return undefined;
  const status = RpcStatus.decode(details) as unknown as { details: Array<{ typeUrl: string; value: Uint8Array }> };
  const info = status.details.find((d) => d.typeUrl.endsWith('google.rpc.RetryInfo'));
  if (info === undefined) return undefined;
  const retry = RetryInfo.toObject(RetryInfo.decode(info.value), { longs: Number }) as { retryDelay?: { seconds?: number; nanos?: number } };
  const delay = retry.retryDelay;
  return delay === undefined ? undefined : (delay.seconds ?? 0) * 1000 + Math.round((delay.nanos ?? 0) / 1e6);
}

describe('a hung Kafka', () => {
  it('is answered UNAVAILABLE with a retry delay before the client gives up, and /ready says why', async (t) => {
    const kafka = await startKafka();
    t.after(() => kafka.destroy());
    const prefix = uniqueName('frozen');
    const betrace = await startTestPipeline({
      receiver: { retry_after: '2s' },
      transport: { kind: 'kafka', partitions: 2, kafka: { ...kafkaTestConfig(kafka.brokers, prefix), ack_timeout: '3s' } },
      worker: { trace_idle_timeout: '500ms' },
    });
    t.after(() => betrace.stop());
    const client = rawTraceClient(betrace.grpcUrl);
    t.after(() => client.close());
    assert.equal((await client.export(request(), { deadlineMs: 10_000 })).err, null, 'accepted while Kafka answers');

    // The broker's JVM (its command line names its server.properties).
    const pids = execFileSync('pgrep', ['-f', `${kafka.dir}/server.properties`], { encoding: 'utf8' }).trim().split('\n').filter((p) => p !== '');
    assert.equal(pids.length, 1, 'the broker process');
    const signal = (sig: string) => execFileSync('kill', [`-${sig}`, ...pids]);
    signal('STOP');
    t.after(() => {
      try {
        signal('CONT');
      } catch {
        // Gone already.
      }
    });

    // Before the probe notices: each answer comes at half the deadline the client sent, well before it.
    const deadlines = [1200, 2000];
    for (const deadlineMs of deadlines) {
      const started = Date.now();
      const { err } = await client.export(request(), { deadlineMs });
      const took = Date.now() - started;
      assert.ok(err !== null, 'refused');
      assert.equal(err.code, grpc.status.UNAVAILABLE, `UNAVAILABLE, not ${grpc.status[err.code]}: ${err.details}`);
      assert.equal(retryDelayMs(err), 2000, 'with the retry delay in RetryInfo');
      assert.ok(took < deadlineMs * 0.8, `answered after ${took} ms of a ${deadlineMs} ms deadline`);
    }
    // A client with a long deadline waits at most ack_timeout.
    {
      const started = Date.now();
      const { err } = await client.export(request(), { deadlineMs: 30_000 });
      const took = Date.now() - started;
      assert.equal(err?.code, grpc.status.UNAVAILABLE);
      assert.ok(took < 9_000, `answered after ${took} ms (ack_timeout 3 s, or at once once the probe noticed)`);
    }

    // The probe notices: /ready is 503 naming Kafka, and exports are refused at once.
    const readyDeadline = Date.now() + 15_000;
    let ready: { status: number; body: string } = { status: 0, body: '' };
    while (Date.now() < readyDeadline) {
      const res = await fetch(`${betrace.apiUrl}/ready`);
      ready = { status: res.status, body: await res.text() };
      if (res.status === 503) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(ready.status, 503, ready.body);
    assert.match(ready.body, /Kafka unreachable/);
    const started = Date.now();
    const { err } = await client.export(request(), { deadlineMs: 10_000 });
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
    assert.ok(Date.now() - started < 1000, `refused at once (${Date.now() - started} ms)`);

    signal('CONT');
    const backDeadline = Date.now() + 30_000;
    let accepted = false;
    while (!accepted && Date.now() < backDeadline) {
      accepted = (await client.export(request(), { deadlineMs: 10_000 })).err === null;
      if (!accepted) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(accepted, 'accepted again once Kafka answers');
    assert.equal((await fetch(`${betrace.apiUrl}/ready`)).status, 200);
  });
});
