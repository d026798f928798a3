/**
 * Fault, Kafka mode: a quarantine is cluster-wide. A worker that quarantines a rule
 * publishes it through the rules topic (key quarantine:<rule id>); every worker stops
 * evaluating the rule, the API process shows it, a worker started later reads it from
 * the topic; enabling the rule through the API lifts it everywhere.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { getTestKafka, kafkaTestConfig, uniqueName } from '../helpers/kafka.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';
import { STALL_RULE, STALL_SPAN, emitTrace, stallingThreadModule } from '../helpers/stall.ts';

const json = { 'Content-Type': 'application/json' };

describe('quarantine over Kafka', () => {
  it('is published through the rules topic: every worker stops evaluating the rule, the API shows it, enable lifts it', async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('quarantine');
    const config = {
      transport: {
        kind: 'kafka',
        partitions: 4,
        kafka: kafkaTestConfig(brokers, prefix),
      },
      worker: { evaluation_budget: '50ms', evaluation_stall_margin: '300ms', trace_idle_timeout: '200ms', quarantine_after: 2 },
    };
    const all: TestPipeline[] = [];
    const start = async (roles: Array<'receiver' | 'api' | 'worker'>) => {
      const p = await startTestPipeline(config, { roles, evaluatorThreadModule: stallingThreadModule });
      all.push(p);
      return p;
    };
    const front = await start(['receiver', 'api']);
    const workers = [await start(['worker']), await start(['worker'])];
    const app = createTestApp({ service: 'kafka-quarantine', exporters: [otlpExporter('http', front.httpUrl)] });
    const stalls = async () => {
      let n = 0;
      for (const w of workers) n += await metricValue(w.apiUrl, 'betrace_rule_evaluation_stalls_total', { rule_id: STALL_RULE });
      return n;
    };
    const stateOf = (p: TestPipeline) => p.pipeline.rules.get(STALL_RULE)?.state;
    const frontRule = async () => (await (await fetch(`${front.apiUrl}/v1/rules/${STALL_RULE}`)).json()) as { state: string; quarantine?: { reason: string } };
    const violations = async () =>
      ((await (await fetch(`${front.apiUrl}/v1/violations?rule_id=ordinary&limit=1000`)).json()) as { violations: Array<{ trace_id: string }> }).violations.map((v) => v.trace_id);
    try {
      for (const rule of [
        { id: STALL_RULE, severity: 'low', condition: 'true' },
        { id: 'ordinary', severity: 'high', condition: 'not trace.has(bad)' },
      ]) {
        assert.equal((await fetch(`${front.apiUrl}/v1/rules`, { method: 'POST', headers: json, body: JSON.stringify(rule) })).status, 201);
      }
      await waitUntil(() => workers.every((w) => stateOf(w) === 'enabled' && w.pipeline.rules.get('ordinary') !== undefined), 10_000, 'rules on every worker');

      // Stuck traces, one at a time, until some worker has seen the rule stuck twice (counts are per worker).
      let sent = 0;
      while (stateOf(front) !== 'quarantined') {
        assert.ok(sent < 6, 'quarantined after at most 3 stuck traces per worker');
        emitTrace(app, ['bad', STALL_SPAN]);
        await app.flush();
        sent++;
        await waitUntil(async () => (await stalls()) === sent, 20_000, `stall ${sent}`);
        await waitUntil(async () => stateOf(front) === 'quarantined' || (await stalls()) === sent, 2000).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 500));
      }
      await waitUntil(() => workers.every((w) => stateOf(w) === 'quarantined'), 10_000, 'quarantined on every worker');
      assert.equal((await frontRule()).state, 'quarantined');
      assert.match((await frontRule()).quarantine?.reason ?? '', /over the 50 ms evaluation budget 2 times/);
      const ready = (await (await fetch(`${front.apiUrl}/ready`)).json()) as { status: string; reasons?: Record<string, string> };
      assert.equal(ready.status, 'degraded');
      assert.match(ready.reasons?.rules_quarantined ?? '', /quarantined: stall/);

      // The record, as compacted: key quarantine:<rule id>.
      const record = await lastRecord(brokers, `${prefix}.rules`, `quarantine:${STALL_RULE}`);
      assert.equal((JSON.parse(record!) as { kind: string; rule_id: string }).kind, 'quarantine');

      // A worker started now reads it from the topic.
      const later = await start(['worker']);
      assert.equal(stateOf(later), 'quarantined');
      workers.push(later);

      // No worker evaluates it: stuck traces on every partition are evaluated at once by the other rule.
      const stallsBefore = await stalls();
      const traces: string[] = [];
      for (let i = 0; i < 8; i++) traces.push(emitTrace(app, ['bad', STALL_SPAN]));
      await app.flush();
      await waitUntil(async () => {
        const found = new Set(await violations());
        return traces.every((t) => found.has(t));
      }, 20_000, '8 traces evaluated by the ordinary rule');
      assert.equal(await stalls(), stallsBefore, 'no thread stuck in the quarantined rule');

      // Enabled through the API: lifted on every worker, tombstone on the topic.
      assert.equal((await fetch(`${front.apiUrl}/v1/rules/${STALL_RULE}/enable`, { method: 'POST' })).status, 200);
      assert.equal((await frontRule()).state, 'enabled');
      await waitUntil(() => workers.every((w) => stateOf(w) === 'enabled'), 10_000, 'lifted on every worker');
      assert.equal(await lastRecord(brokers, `${prefix}.rules`, `quarantine:${STALL_RULE}`), null);
    } finally {
      await app.shutdown();
      await Promise.all(all.map((p) => p.stop()));
    }
  });
});

/** The value of the last record of `key` in `topic` (null: a tombstone; undefined: none). */
async function lastRecord(brokers: string[], topic: string, key: string): Promise<string | null | undefined> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: uniqueName('quarantine-reader') });
  let value: string | null | undefined;
  const remaining = new Map(ends.filter((e) => Number(e.high) > 0).map((e) => [e.partition, Number(e.high)]));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    if (remaining.size === 0) resolve();
    consumer
      .run({
        eachMessage: ({ partition, message }) => {
          if (message.key?.toString() === key) value = message.value === null ? null : message.value.toString();
          if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
          if (remaining.size === 0) resolve();
          return Promise.resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return value;
}
