/**
 * Acceptance (API, Kafka half): a rule created through the API while the
 * pipeline runs yields violations within seconds with 2 worker processes; an
 * API process restarted in Kafka mode serves the same violations as before.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { spawnBetrace, type BetraceProcess } from '../helpers/process.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const TOKEN = 'kafka-api-token';

describe('rules and violations API over Kafka', () => {
  it('distributes an API rule to 2 workers and serves the same violations after an API restart', async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('api');
    const sink = await startOtlpSink();
    const dir = mkdtempSync(join(tmpdir(), 'betrace-kafka-api-'));
    const config = join(dir, 'betrace.yaml');
    writeFileSync(
      config,
      stringify({
        receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
        api: { endpoint: '127.0.0.1:0', token: TOKEN },
        transport: {
          kind: 'kafka',
          partitions: 4,
          kafka: kafkaTestConfig(brokers, prefix),
        },
        downstream: { endpoint: sink.url, batch_timeout: '20ms' },
        worker: { trace_idle_timeout: '500ms' },
        data_dir: join(dir, 'data'),
      }),
    );
    const procs: BetraceProcess[] = [];
    const start = async (name: string, roles: string) => {
      const p = spawnBetrace(name, ['run', '--config', config, '--roles', roles]);
      procs.push(p);
      await p.waitFor(/betrace started/);
      return p;
    };
    try {
      const front = await start('front', 'receiver,forwarder');
      const grpc = await front.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
      await start('worker-0', 'worker');
      await start('worker-1', 'worker');
      let api = await start('api', 'api');
      let apiUrl = `http://${await api.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;

      const created = await fetch(`${apiUrl}/v1/rules`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ id: 'no-fraud', severity: 'critical', condition: 'not trace.has(fraud.detected)' }),
      });
      assert.equal(created.status, 201);
      const createdAt = Date.now();
      // Within 2 s every worker holds it: send traces to every partition right away.
      await new Promise((r) => setTimeout(r, 2000));
      const app = createTestApp({ service: 'kafka-api', exporters: [otlpExporter('grpc', `http://${grpc}`)] });
      const traces: string[] = [];
      for (let i = 0; i < 8; i++) {
        const s = app.tracer().startSpan('fraud.detected');
        s.end();
        traces.push(s.spanContext().traceId);
      }
      await app.flush();
      await app.shutdown();
      await waitUntil(
        async () => ((await (await fetch(`${apiUrl}/v1/violations?rule_id=no-fraud`)).json()) as { violations: unknown[] }).violations.length === 8,
        30_000,
        '8 violations through the API',
      );
      const seconds = (Date.now() - createdAt) / 1000;
      assert.ok(seconds < 20, `violations within seconds (${seconds.toFixed(1)} s)`);
      const before = (await (await fetch(`${apiUrl}/v1/violations?limit=100`)).json()) as { violations: Array<{ violation_id: string; trace_id: string }> };
      assert.deepEqual(before.violations.map((v) => v.trace_id).sort(), [...traces].sort());
      await sink.waitFor((s) => s.filter((x) => x.name === 'betrace.violation').length >= 8, 20_000, 'violation spans');

      await api.stop();
      api = await start('api-again', 'api');
      apiUrl = `http://${await api.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;
      const after = (await (await fetch(`${apiUrl}/v1/violations?limit=100`)).json()) as { violations: Array<{ violation_id: string }> };
      assert.deepEqual(after.violations.map((v) => v.violation_id).sort(), before.violations.map((v) => v.violation_id).sort());
      const rule = (await (await fetch(`${apiUrl}/v1/rules/no-fraud`)).json()) as { source: string; version: number };
      assert.equal(rule.source, 'api');
      assert.equal(rule.version, 1);
    } finally {
      for (const p of procs) await p.stop();
      await sink.close();
    }
  });
});
