/**
 * Acceptance: Kafka stopped for 30 s under load. The receiver answers
 * UNAVAILABLE (with a retry delay), memory stays bounded; when Kafka returns and
 * the clients retry, nothing that was acknowledged is lost.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { startKafka, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue } from '../helpers/pipeline.ts';

// A full garbage collection on demand: what the pipeline holds, not the garbage its retries leave.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function retainedBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

function request(spanIds: string[]): Buffer {
  const traceId = randomBytes(16).toString('hex');
  return paddedRequest('outage-client', spanIds.map((id) => [traceId, id] as const));
}

describe('Kafka outage', () => {
  it('answers UNAVAILABLE while Kafka is down and loses nothing it acknowledged', async (t) => {
    // Hooks run in reverse order of registration, also when a start below fails.
    const kafka = await startKafka();
    t.after(() => kafka.destroy());
    const sink = await startOtlpSink();
    t.after(() => sink.close());
    const prefix = uniqueName('outage');
    const betrace = await startTestPipeline({
      receiver: { max_in_flight_bytes: '512KiB', retry_after: '1s' },
      transport: {
        kind: 'kafka',
        partitions: 3,
        kafka: {
          brokers: kafka.brokers,
          spans_topic: `${prefix}.spans`,
          rules_topic: `${prefix}.rules`,
          violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`,
          worker_group: `${prefix}-w`,
          forwarder_group: `${prefix}-f`,
          request_timeout: '3s',
          session_timeout: '6s',
        },
      },
      downstream: { endpoint: sink.url, batch_timeout: '20ms', max_retry_time: '5m' },
      worker: { trace_idle_timeout: '500ms' },
    });
    t.after(() => betrace.stop());
    const c = rawTraceClient(betrace.grpcUrl);
    t.after(() => c.close());
    const acked = new Set<string>();
    let unavailable = 0;
    const otherErrors: string[] = [];
    let maxInFlight = 0;
    let stopLoad = false;
    // Load: 4 concurrent senders, each retrying a request until it is acknowledged.
    const senders = Array.from({ length: 4 }, async () => {
      while (!stopLoad) {
        const ids = Array.from({ length: 10 }, () => randomBytes(8).toString('hex'));
        const body = request(ids);
        for (;;) {
          const { err } = await c.export(body);
          if (err === null) {
            for (const id of ids) acked.add(id);
            break;
          }
          if (err.code === grpc.status.UNAVAILABLE) unavailable++;
          else otherErrors.push(`${err.code} ${err.details}`);
          if (stopLoad) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const sampler = setInterval(() => {
      void metricValue(betrace.apiUrl, 'betrace_receiver_in_flight_bytes').then((v) => (maxInFlight = Math.max(maxInFlight, v)));
    }, 200);
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const before = acked.size;
      assert.ok(before > 0, 'load flows before the outage');
      const retainedBefore = retainedBytes();
      await kafka.stop();
      await new Promise((r) => setTimeout(r, 30_000));
      const retainedDuring = retainedBytes();
      assert.ok(unavailable > 0, 'clients were told UNAVAILABLE');
      const during = acked.size - before;
      await kafka.start();
      await new Promise((r) => setTimeout(r, 8000));
      stopLoad = true;
      await Promise.all(senders);
      assert.ok(acked.size > before + during, 'load flows again after the outage');
      assert.deepEqual(otherErrors, [], 'only UNAVAILABLE while Kafka is away');
      assert.ok(maxInFlight <= 512 * 1024 + 64 * 1024, `in-flight bytes bounded (max ${maxInFlight})`);
      // While Kafka is away nothing piles up: requests are refused, not buffered.
      assert.ok(retainedDuring - retainedBefore < 32 * 1024 * 1024, `memory held after 30 s of outage bounded (grew ${Math.round((retainedDuring - retainedBefore) / 1e6)} MB)`);
      await sink.waitFor(
        (spans) => {
          const got = new Set(spans.map((s) => s.spanId));
          for (const id of acked) if (!got.has(id)) return false;
          return true;
        },
        120_000,
        `all ${acked.size} acknowledged spans downstream`,
      );
    } finally {
      stopLoad = true;
      clearInterval(sampler);
      await Promise.all(senders);
    }
  });
});
