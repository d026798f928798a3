/**
 * The receiver's spool in the real pipeline (Kafka mode, a broker of its own): with
 * receiver.spool on, a Kafka outage under load adds latency instead of refusals. Every
 * export is answered OK while the broker is stopped, the spool's depth and age show the
 * backlog and /ready reports it (200, degraded), and once the broker is back every span
 * acknowledged reaches downstream and the spool is empty again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { kafkaTestConfig, startKafka, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';

describe('receiver spool in front of Kafka', () => {
  it('acknowledges every export through a broker outage and delivers every acknowledged span afterwards', async (t) => {
    // Hooks run in reverse order of registration, also when a start below fails.
    const kafka = await startKafka();
    t.after(() => kafka.destroy());
    const sink = await startOtlpSink();
    t.after(() => sink.close());
    const betrace = await startTestPipeline({
      receiver: { spool: { enabled: true, max_bytes: '64MiB', segment_bytes: '1MiB', degraded_after: '2s' } },
      transport: { kind: 'kafka', partitions: 3, kafka: { ...kafkaTestConfig(kafka.brokers, uniqueName('spool')), request_timeout: '2s' } },
      downstream: { endpoint: sink.url, batch_timeout: '20ms', max_retry_time: '5m' },
      worker: { trace_idle_timeout: '500ms' },
    });
    t.after(() => betrace.stop());
    const spoolDir = join(betrace.dataDir, 'spool');
    const c = rawTraceClient(betrace.grpcUrl);
    t.after(() => c.close());
    const acked = new Set<string>();
    const refusals: string[] = [];
    let stopLoad = false;
    // Load: 4 concurrent senders, 10 spans of one trace per request.
    const senders = Array.from({ length: 4 }, async () => {
      while (!stopLoad) {
        const traceId = randomBytes(16).toString('hex');
        const ids = Array.from({ length: 10 }, () => randomBytes(8).toString('hex'));
        const { err } = await c.export(paddedRequest('spool-client', ids.map((id) => [traceId, id] as const)));
        if (err === null) for (const id of ids) acked.add(id);
        else refusals.push(`${err.code} ${err.details}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    try {
      await waitUntil(() => acked.size >= 400, 15_000, 'load flows before the outage');
      assert.ok(existsSync(spoolDir) && readdirSync(spoolDir).some((f) => f.endsWith('.seg')), `spool files in ${spoolDir}`);
      await kafka.stop();
      const before = acked.size;
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_receiver_spool_pending_records')) >= 50, 15_000, 'records pile up in the spool');
      const ready = await waitUntil(async () => {
        const r = await fetch(`${betrace.apiUrl}/ready`);
        const body = (await r.json()) as { reasons?: Record<string, string> };
        return r.status === 200 && /Kafka is behind/.test(body.reasons?.spool ?? '');
      }, 20_000, '/ready 200 with the spool degraded (Kafka behind)').then(() => true);
      assert.ok(ready);
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_spool_oldest_age_seconds')) >= 1, 'the backlog ages');
      await new Promise((r) => setTimeout(r, 1000));
      const during = acked.size - before;
      assert.ok(during >= 200, `exports acknowledged while the broker is down (${during} spans)`);
      await kafka.start();
      // Traffic after the outage goes through the spool behind the backlog.
      await new Promise((r) => setTimeout(r, 1000));
      stopLoad = true;
      await Promise.all(senders);
      assert.deepEqual(refusals, [], 'no export refused: the outage added latency, not refusals');
      await sink.waitFor(
        (spans) => {
          const got = new Set(spans.map((s) => s.spanId));
          for (const id of acked) if (!got.has(id)) return false;
          return true;
        },
        60_000,
        `all ${acked.size} acknowledged spans downstream`,
      );
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_receiver_spool_pending_records')) === 0, 20_000, 'the spool drained');
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_receiver_spool_delivered_records_total')) >= acked.size / 10);
      console.log(`spool through a broker outage: ${acked.size} spans acknowledged (${during} while the broker was down), 0 refused, all downstream`);
    } finally {
      stopLoad = true;
      await Promise.all(senders);
    }
  });
});
