/**
 * Acceptance (Kafka transport), on a real broker with real processes:
 * - the workers' e-commerce scenario through Kafka with 6 partitions and 3 worker
 *   processes gives exactly the violations of embedded mode;
 * - kill -9 of a worker mid-run, with traces open: every injected violation still
 *   arrives, duplicates only with identical ids, every span at least once;
 * - a worker added to a running group rebalances with the same guarantees.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_NODE_FLAGS, WORKER_NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink, type OtlpSink, type FlatSpan } from '../helpers/otlp-sink.ts';
import { spawnBetrace, type BetraceProcess } from '../helpers/process.ts';
import { otlpExporter } from '../helpers/sdk.ts';
import { Shop, runScenario, type ShopOrder } from '../helpers/shop.ts';

const rulesFile = join(import.meta.dirname, '..', '..', 'config', 'rules', 'seed-invariants.yaml');

function kafkaConfig(brokers: string[], sinkUrl: string, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-kafka-'));
  const file = join(dir, 'betrace.yaml');
  writeFileSync(
    file,
    stringify({
      receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
      api: { endpoint: '127.0.0.1:0' },
      transport: {
        kind: 'kafka',
        partitions: 6,
        kafka: {
          brokers,
          spans_topic: `${prefix}.spans`,
          rules_topic: `${prefix}.rules`,
          violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`,
          worker_group: `${prefix}-workers`,
          forwarder_group: `${prefix}-forwarder`,
          session_timeout: '6s',
        },
      },
      downstream: { endpoint: sinkUrl, batch_timeout: '20ms' },
      worker: { trace_idle_timeout: '1500ms', late_span_grace: '5s' },
      rules: { paths: [rulesFile] },
      data_dir: join(dir, 'data'),
      log: { level: 'info' },
    }),
  );
  return file;
}

async function startWorker(config: string, n: number): Promise<BetraceProcess> {
  const w = spawnBetrace(`worker-${n}`, ['run', '--config', config, '--roles', 'worker']);
  await w.waitFor(/betrace started/);
  return w;
}

function violationSpans(sink: OtlpSink): FlatSpan[] {
  return sink.spans.filter((s) => s.name === 'betrace.violation');
}

function assertViolations(sink: OtlpSink, orders: readonly ShopOrder[], exactlyOnce: boolean): void {
  const injected = orders.filter((o) => o.violates !== undefined);
  const spans = violationSpans(sink);
  const byTrace = new Map<string, FlatSpan[]>();
  for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  assert.equal(byTrace.size, injected.length, 'violations in exactly the violating traces');
  for (const order of injected) {
    const found = byTrace.get(order.traceId);
    assert.ok(found, `violation of ${order.violates} in ${order.traceId}`);
    const ids = new Set(found.map((s) => s.attributes['betrace.violation.id']));
    assert.equal(ids.size, 1, 'repeats carry the same violation id');
    if (exactlyOnce) assert.equal(found.length, 1, 'exactly once');
    const v = found[0]!;
    assert.equal(v.attributes['betrace.rule.id'], order.violates);
    assert.equal(Buffer.from(v.span.parentSpanId as string, 'base64').toString('hex'), order.rootSpanId);
    const witnesses = (v.attributes['betrace.violation.span_ids'] as { values: Array<{ stringValue: string }> }).values.map((x) => x.stringValue).sort();
    assert.deepEqual(witnesses, order.witnesses);
  }
}

function assertEverySpanForwarded(sink: OtlpSink, reference: OtlpSink): void {
  const got = new Set(sink.spans.filter((s) => s.name !== 'betrace.violation').map((s) => s.key));
  for (const s of reference.spans) assert.ok(got.has(s.key), `span ${s.key} forwarded`);
}

describe('Kafka transport end to end', () => {
  let brokers: string[];
  before(async () => {
    brokers = (await getTestKafka()).brokers;
  });

  describe('6 partitions, 3 worker processes', () => {
    let sink: OtlpSink;
    let reference: OtlpSink;
    const procs: BetraceProcess[] = [];
    let orders: ShopOrder[];
    before(async () => {
      sink = await startOtlpSink();
      reference = await startOtlpSink();
      const config = kafkaConfig(brokers, sink.url, uniqueName('e2e'));
      const front = spawnBetrace('front', ['run', '--config', config, '--roles', 'receiver,forwarder,api']);
      procs.push(front);
      const grpc = await front.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
      const http = await front.waitFor(/"address":"([^"]+)","msg":"OTLP\/HTTP receiver listening"/);
      await front.waitFor(/betrace started/);
      for (let i = 0; i < 3; i++) procs.push(await startWorker(config, i));
      // Let the group settle on its three members.
      await new Promise((r) => setTimeout(r, 3000));
      const shop = new Shop((service) => [
        otlpExporter(service === 'payments' ? 'http' : 'grpc', service === 'payments' ? `http://${http}` : `http://${grpc}`),
        otlpExporter('grpc', reference.url),
      ]);
      orders = runScenario(shop, 60);
      await shop.flush(200);
      await shop.shutdown();
    });
    after(async () => {
      for (const p of procs) await p.stop();
      await sink.close();
      await reference.close();
    });

    it('runs the worker processes with the worker heap settings, the receiver process with the default', () => {
      const flags = (p: BetraceProcess) => readFileSync(`/proc/${p.child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--max-semi-space-size'));
      assert.deepEqual(flags(procs[0]!), DEFAULT_NODE_FLAGS.filter((f) => f.startsWith('--max-semi-space-size')));
      for (const w of procs.slice(1)) assert.deepEqual(flags(w), WORKER_NODE_FLAGS.filter((f) => f.startsWith('--max-semi-space-size')));
    });

    it('gives exactly the violations of embedded mode, once each', async () => {
      await sink.waitFor(() => violationSpans(sink).length >= 12, 60_000, '12 violation spans');
      await new Promise((r) => setTimeout(r, 3000));
      assertViolations(sink, orders, true);
      assert.equal(violationSpans(sink).length, 12);
    });

    it('forwards every original span exactly once', async () => {
      await sink.waitFor((s) => s.filter((x) => x.name !== 'betrace.violation').length >= reference.spans.length, 30_000, 'all spans');
      assertEverySpanForwarded(sink, reference);
      const originals = sink.spans.filter((s) => s.name !== 'betrace.violation');
      assert.equal(originals.length, reference.spans.length);
    });

    it('spreads the partitions over the three workers', () => {
      const assigned = procs.slice(1).map((p) => {
        const all = [...p.output().matchAll(/"partitions":\[([\d,]*)\],"msg":"Kafka partitions assigned"/g)];
        return all.length === 0 ? [] : all[all.length - 1]![1]!.split(',').filter((x) => x !== '').map(Number);
      });
      assert.deepEqual(assigned.flat().sort(), [0, 1, 2, 3, 4, 5]);
      for (const a of assigned) assert.equal(a.length, 2);
    });
  });

  describe('worker failures and new workers', () => {
    it('kill -9 of a worker with traces open, then a new worker: every violation arrives, repeats carry the same id', async () => {
      const sink = await startOtlpSink();
      const reference = await startOtlpSink();
      const config = kafkaConfig(brokers, sink.url, uniqueName('kill'));
      const front = spawnBetrace('front', ['run', '--config', config, '--roles', 'receiver,forwarder,api']);
      const procs: BetraceProcess[] = [front];
      try {
        const grpc = await front.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
        await front.waitFor(/betrace started/);
        const workers = [await startWorker(config, 0), await startWorker(config, 1)];
        procs.push(...workers);
        await new Promise((r) => setTimeout(r, 3000));
        const shop = new Shop(() => [otlpExporter('grpc', `http://${grpc}`), otlpExporter('grpc', reference.url)]);
        const first = runScenario(shop, 40);
        await shop.flush(50);
        // Traces are open in the workers' windows (idle timeout 1.5 s): kill one now.
        await new Promise((r) => setTimeout(r, 400));
        await workers[0]!.kill();
        // A new worker joins while the group recovers.
        procs.push(await startWorker(config, 2));
        const second: ShopOrder[] = [];
        for (let i = 100; i < 140; i++) second.push(shop.order(i, i % 5 === 4 ? (['payment-idempotency', 'admin-audit-log'] as const)[i % 2] : undefined));
        await shop.flush(50);
        await shop.shutdown();
        const all = [...first, ...second];
        const expected = all.filter((o) => o.violates !== undefined).length;
        await sink.waitFor(() => new Set(violationSpans(sink).map((s) => s.traceId)).size >= expected, 90_000, `${expected} violating traces`);
        await new Promise((r) => setTimeout(r, 3000));
        assertViolations(sink, all, false);
        await sink.waitFor((s) => new Set(s.filter((x) => x.name !== 'betrace.violation').map((x) => x.key)).size >= reference.spans.length, 60_000, 'all spans');
        assertEverySpanForwarded(sink, reference);
      } finally {
        for (const p of procs) await p.stop();
        await sink.close();
        await reference.close();
      }
    });
  });
});
